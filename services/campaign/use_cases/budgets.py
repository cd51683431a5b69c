"""Taking a campaign's budget and limits, and booking its stats.

A reservation holds the order's campaign discounts against each campaign's budget
and limits. Every checkout of a campaign updates the same stats row, so that row is
locked as late as possible: the last statements of the transaction take it (in id
order, so two reservations never deadlock), add the amount, and only then check the
budget, the per-member limit and the per-store daily limit. Under that lock every
earlier reservation has committed and is seen (READ COMMITTED takes a new snapshot
per statement), so concurrent checkouts can never overspend; a check that fails rolls
the whole reservation back. Locked early, the row was held for the whole transaction
and serialised every checkout of the chain (bench/campaign.py). Where nothing is
checked under it (a campaign with no budget or limit, a redemption, a release, a
return), the addition is sent without waiting (storage/stats.book): it goes out with
COMMIT, so the row is locked only while PostgreSQL runs the two, never while the
service gets round to committing. Every campaign has its row from its creation on.
Stats change in the redemption's own transaction. Reservations and redemptions that
arrive together run as one batch (huiyuan.database.Batcher), which adds to each row
once; a reservation whose campaign checks a budget or a limit runs in a transaction of
its own.
"""

from datetime import date

from huiyuan.database import Transaction
from services.campaign.domain import budgets
from services.campaign.domain.budgets import Limits
from services.campaign.storage import reservations, stats


async def take(
    tx: Transaction, member_id: str, store_path: str, discounts: dict[str, int], limits: dict[str, Limits], day: date
) -> None:
    """Hold one reservation's discounts against their campaigns' budgets and limits,
    checked under the stats rows' locks (last in the transaction: see above)."""
    for campaign_id, amount in sorted(discounts.items()):  # id order: no deadlock between two reservations
        campaign = limits[campaign_id]
        if not campaign.limited:
            await stats.book(tx, campaign_id, {"reserved_fen": amount})  # nothing to check under its lock
            continue
        row = await stats.add(tx, campaign_id, {"reserved_fen": amount})
        budgets.check_budget(campaign_id, row, campaign)
        if campaign.per_member_limit:
            budgets.check_member_uses(campaign_id, await reservations.member_uses(tx, campaign_id, member_id), campaign)
        if campaign.per_store_daily_limit:
            budgets.check_store_uses(
                campaign_id, await reservations.store_uses(tx, campaign_id, store_path, day), campaign
            )


async def book_all(tx: Transaction, additions: list[tuple[str, dict[str, int]]]) -> None:
    """Add to the stats rows where nothing is checked under their locks: each
    campaign's row once, in id order, sent to go out with COMMIT."""
    await stats.book_all(tx, budgets.merged(additions))
