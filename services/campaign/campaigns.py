"""Campaign use cases: create, read, list, move status, the active set a quote uses, and
the gifts a new member gets."""

from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from huiyuan.runtime.clock import local
from huiyuan.runtime.errors import NotFound
from huiyuan.runtime.requests import on_line
from services.campaign import coupons, domain
from services.campaign.domain import Status
from services.campaign.pricing import Campaign, Kind, Member, Step, targets
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
    if c.kind == Kind.NEW_MEMBER_GIFT:
        domain.check_gift_template(c, (await coupons.template_body(db, c.coupon_template_id))["org_path"])
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


async def active(db, kind: Kind | None = None) -> list[Campaign]:
    """The active campaigns (of one kind), by id."""
    q = select(campaigns.c.body).where(campaigns.c.status == Status.ACTIVE.value)
    if kind is not None:
        q = q.where(campaigns.c.kind == kind.value)
    return [_campaign(body) for body in (await db.execute(q.order_by(campaigns.c.campaign_id))).scalars()]


def gift_batch(campaign_id: str) -> str:
    """The batch a new-member gift's coupons are issued in: one coupon a member, ever."""
    return f"new-member:{campaign_id}"


async def give_new_member_gifts(db, member_id: str, tags: list[str], home_path: str, now) -> list[dict]:
    """The coupons of every active NEW_MEMBER_GIFT campaign that targets a member just
    registered with these tags, whose home store lies under its scope, now: one per
    campaign, however often asked (its batch). A gift whose template's campaign has spent
    its budget is not given (coupons.issue would refuse it)."""
    member = Member(member_id, tags=tags, register_time=now)
    day = local(now)
    given = []
    for c in await active(db, Kind.NEW_MEMBER_GIFT):
        if not targets(c, member, home_path, now, day):
            continue
        template = await coupons.template_by_id(db, c.coupon_template_id)
        if template.campaign_id and await coupons.budget_spent(db, template.campaign_id):
            continue
        issued, _ = await coupons.issue(db, template_id=c.coupon_template_id, member_ids=[member_id], now=now,
                                        batch_id=gift_batch(c.campaign_id))
        given += issued
    return given
