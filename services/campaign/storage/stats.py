"""Campaign stats kept: one row per campaign, added to in the transaction of each
reservation, redemption, release and return. The row is also the lock that makes a
campaign's budget and limits hold (use_cases/budgets.py says how it is taken)."""

import functools

from sqlalchemy import bindparam, select, update

from huiyuan.database import Transaction, send
from services.campaign.storage.tables import campaign_stats


@functools.cache
def _stats_update(names: tuple[str, ...], returning: bool):
    """UPDATE campaign_stats adding to these counters, built once per set of names."""
    c = campaign_stats.c
    statement = (
        update(campaign_stats)
        .where(c.campaign_id == bindparam("key"))
        .values(**{name: c[name] + bindparam(f"add_{name}") for name in names})
    )
    return statement.returning(campaign_stats) if returning else statement


def _stats_params(campaign_id: str, deltas: dict[str, int]) -> dict:
    return {"key": campaign_id, **{f"add_{name}": delta for name, delta in deltas.items()}}


async def add(tx: Transaction, campaign_id: str, deltas: dict[str, int]):
    """Add to a campaign's stats row, locking it until commit; the row after the change,
    for the checks that run under its lock."""
    return (await tx.execute(_stats_update(tuple(sorted(deltas)), True), _stats_params(campaign_id, deltas))).one()


async def book(tx: Transaction, campaign_id: str, deltas: dict[str, int]) -> None:
    """Add to a campaign's stats row where nothing is checked under its lock: sent, to
    go out with COMMIT (use_cases/budgets.py)."""
    await send(tx, _stats_update(tuple(sorted(deltas)), False), _stats_params(campaign_id, deltas))


async def book_all(tx: Transaction, by_campaign: dict[str, dict[str, int]]) -> None:
    """book() for many campaigns, in id order (two transactions never deadlock)."""
    for campaign_id in sorted(by_campaign):
        await book(tx, campaign_id, by_campaign[campaign_id])


async def of_campaign(tx: Transaction, campaign_id: str):
    """A campaign's stats row (None: it has none)."""
    return (await tx.execute(select(campaign_stats).where(campaign_stats.c.campaign_id == campaign_id))).one_or_none()
