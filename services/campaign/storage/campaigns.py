"""Campaigns kept: a row per campaign with its configuration as a JSON body, and the
active set a quote prices with, read at most once a second."""

import time
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from huiyuan.database import Database, Transaction
from huiyuan.runtime.requests import on_line
from services.campaign.domain.campaigns import Campaign, Kind, Status, Step
from services.campaign.storage.tables import campaign_stats, campaigns

ACTIVE_SET_TTL_S = 1.0


def to_body(c: Campaign) -> dict:
    body = asdict(c)
    for key in ("start_time", "end_time"):
        body[key] = body[key].isoformat() if body[key] else None
    body["new_member_within"] = c.new_member_within.total_seconds() if c.new_member_within else None
    return body


def from_body(body: dict) -> Campaign:
    body = dict(body)
    for key in ("start_time", "end_time"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    within = body.pop("new_member_within")
    steps = [Step(**s) for s in body.pop("steps")]
    return Campaign(
        **{
            **body,
            "kind": Kind(body["kind"]),
            "steps": steps,
            "new_member_within": timedelta(seconds=within) if within is not None else None,
        }
    )


async def exists(tx: Transaction, campaign_id: str) -> bool:
    return (
        await tx.execute(select(campaigns.c.campaign_id).where(campaigns.c.campaign_id == campaign_id))
    ).first() is not None


async def kinds_in_group(tx: Transaction, exclusive_group: str) -> list[Kind]:
    """The kinds of the campaigns of an exclusive group that have not ended."""
    kinds = (
        await tx.execute(
            select(campaigns.c.kind).where(
                campaigns.c.exclusive_group == exclusive_group, campaigns.c.status != Status.ENDED.value
            )
        )
    ).scalars()
    return [Kind(k) for k in kinds]


async def add(tx: Transaction, c: Campaign, status: Status, now: datetime) -> None:
    """A new campaign, with its stats row from the start: a redemption adds to that row
    without waiting for it (use_cases/budgets.py)."""
    await tx.execute(
        insert(campaigns),
        {
            "campaign_id": c.campaign_id,
            "kind": c.kind.value,
            "status": status.value,
            "org_path": c.org_path,
            "exclusive_group": c.exclusive_group,
            "body": to_body(c),
            "create_time": now,
            "update_time": now,
        },
    )
    await tx.execute(
        insert(campaign_stats),
        {
            "campaign_id": c.campaign_id,
            "orders": 0,
            "discount_fen": 0,
            "reserved_fen": 0,
            "coupons_issued": 0,
            "coupons_redeemed": 0,
        },
    )


async def get(tx: Transaction, campaign_id: str, lock: bool = False) -> tuple[Campaign, Status] | None:
    """A campaign and its status (lock: the row locked until commit)."""
    q = select(campaigns.c.body, campaigns.c.status).where(campaigns.c.campaign_id == campaign_id)
    row = (await tx.execute(q.with_for_update() if lock else q)).one_or_none()
    return None if row is None else (from_body(row.body), Status(row.status))


async def set_body(tx: Transaction, campaign: Campaign, now: datetime) -> None:
    """A campaign's terms written again (its schedule changed): the body its quotes read."""
    await tx.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == campaign.campaign_id)
        .values(body=to_body(campaign), update_time=now)
    )


async def set_status(tx: Transaction, campaign_id: str, status: Status, now: datetime) -> None:
    await tx.execute(
        update(campaigns).where(campaigns.c.campaign_id == campaign_id).values(status=status.value, update_time=now)
    )


async def under(
    tx: Transaction, org_path: str, status: Status | None, after: str | None, limit: int
) -> list[tuple[str, Campaign, Status]]:
    """Campaigns whose scope covers or lies under org_path, by id."""
    q = select(campaigns.c.campaign_id, campaigns.c.body, campaigns.c.status)
    if status:
        q = q.where(campaigns.c.status == status.value)
    if after is not None:
        q = q.where(campaigns.c.campaign_id > after)
    rows = (await tx.execute(q.order_by(campaigns.c.campaign_id))).all()
    found = [
        (r.campaign_id, from_body(r.body), Status(r.status))
        for r in rows
        if not org_path or on_line(r.body["org_path"], org_path)
    ]
    return found[:limit]


async def active(tx: Transaction, kind: Kind | None = None) -> list[Campaign]:
    """The active campaigns (of one kind), by id."""
    q = select(campaigns.c.body).where(campaigns.c.status == Status.ACTIVE.value)
    if kind is not None:
        q = q.where(campaigns.c.kind == kind.value)
    return [from_body(body) for body in (await tx.execute(q.order_by(campaigns.c.campaign_id))).scalars()]


async def budget(tx: Transaction, campaign_id: str) -> int | None:
    """A campaign's budget (0: none; None: no such campaign)."""
    body = (await tx.execute(select(campaigns.c.body).where(campaigns.c.campaign_id == campaign_id))).scalar()
    return None if body is None else body["budget_fen"]


class ActiveSet:
    """The active set, read at most once a second: every quote needs it, it changes
    rarely, and a quote is only a price (budgets are taken at reservation, so a
    second-old set can never overspend). A change of status made by this process is
    seen at once (forget())."""

    def __init__(self, database: Database, ttl_s: float = ACTIVE_SET_TTL_S):
        self.database = database
        self.ttl_s = ttl_s
        self._active: tuple[float, list[Campaign]] = (0.0, [])

    async def campaigns(self) -> list[Campaign]:
        expires, found = self._active
        if time.monotonic() >= expires:
            async with self.database.reading() as tx:
                found = await active(tx)
            self._active = (time.monotonic() + self.ttl_s, found)
        return found

    def forget(self) -> None:
        self._active = (0.0, [])
