"""Campaign use cases: create, read, list, move status, and the active set a quote uses."""

from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from huiyuan.runtime.errors import NotFound
from huiyuan.runtime.requests import on_line
from services.campaign import domain
from services.campaign.domain import Status
from services.campaign.pricing import Campaign, Kind, Step
from services.campaign.storage import campaign_stats, campaigns


def _body(c: Campaign) -> dict:
    body = asdict(c)
    for key in ("start_time", "end_time"):
        body[key] = body[key].isoformat() if body[key] else None
    body["new_member_within"] = c.new_member_within.total_seconds() if c.new_member_within else None
    return body


def _campaign(body: dict) -> Campaign:
    body = dict(body)
    for key in ("start_time", "end_time"):
        body[key] = datetime.fromisoformat(body[key]) if body[key] else None
    within = body.pop("new_member_within")
    steps = [Step(**s) for s in body.pop("steps")]
    return Campaign(**{**body, "kind": Kind(body["kind"]), "steps": steps,
                       "new_member_within": timedelta(seconds=within) if within is not None else None})


def not_found(campaign_id: str) -> NotFound:
    return NotFound("CAMPAIGN_NOT_FOUND", "No such campaign.", "活动不存在。", campaign_id=campaign_id)


async def create(db, c: Campaign, now) -> tuple[Campaign, Status]:
    if c.exclusive_group:
        kinds = (await db.execute(select(campaigns.c.kind).where(
            campaigns.c.exclusive_group == c.exclusive_group, campaigns.c.status != Status.ENDED.value))).scalars()
        domain.check_group(c, [Kind(k) for k in kinds])
    await db.execute(insert(campaigns), {
        "campaign_id": c.campaign_id, "kind": c.kind.value, "status": Status.DRAFT.value, "org_path": c.org_path,
        "exclusive_group": c.exclusive_group, "body": _body(c), "create_time": now, "update_time": now})
    # Its stats row from the start: a redemption adds to it without waiting for it (coupons.py).
    await db.execute(insert(campaign_stats), {"campaign_id": c.campaign_id, "orders": 0, "discount_fen": 0,
                                              "reserved_fen": 0, "coupons_issued": 0, "coupons_redeemed": 0})
    return c, Status.DRAFT


async def get(db, campaign_id: str) -> tuple[Campaign, Status]:
    row = (await db.execute(select(campaigns.c.body, campaigns.c.status)
                            .where(campaigns.c.campaign_id == campaign_id))).one_or_none()
    if row is None:
        raise not_found(campaign_id)
    return _campaign(row.body), Status(row.status)


async def set_status(db, campaign_id: str, wanted: Status, now) -> tuple[Campaign, Status]:
    row = (await db.execute(select(campaigns.c.body, campaigns.c.status)
                            .where(campaigns.c.campaign_id == campaign_id).with_for_update())).one_or_none()
    if row is None:
        raise not_found(campaign_id)
    status = domain.move(Status(row.status), wanted)
    await db.execute(update(campaigns).where(campaigns.c.campaign_id == campaign_id)
                     .values(status=status.value, update_time=now))
    return _campaign(row.body), status


async def list_under(db, org_path: str, status: Status | None, after: str | None, limit: int) -> list:
    """Campaigns whose scope covers or lies under org_path, by id."""
    q = select(campaigns.c.campaign_id, campaigns.c.body, campaigns.c.status)
    if status:
        q = q.where(campaigns.c.status == status.value)
    if after is not None:
        q = q.where(campaigns.c.campaign_id > after)
    rows = (await db.execute(q.order_by(campaigns.c.campaign_id))).all()
    found = [(r.campaign_id, _campaign(r.body), Status(r.status)) for r in rows
             if not org_path or on_line(r.body["org_path"], org_path)]
    return found[:limit]


async def active(db) -> list[Campaign]:
    rows = await db.execute(select(campaigns.c.body).where(campaigns.c.status == Status.ACTIVE.value))
    return [_campaign(body) for body in rows.scalars()]
