"""Coupons kept: a row per coupon issued, read with its template's terms."""

from datetime import datetime

from sqlalchemy import bindparam, insert, select

from huiyuan.database import Database, Transaction, insert_new
from services.campaign.domain.coupons import MemberCoupon
from services.campaign.storage.tables import coupon_templates, coupons
from services.campaign.storage.templates import from_body

# Built once (SQLAlchemy reuses its compiled form): every quote with coupons runs it.
_PRESENTED = select(
    coupons.c.coupon_code,
    coupons.c.template_id,
    coupons.c.member_id,
    coupons.c.state,
    coupons.c.valid_from_time,
    coupons.c.valid_until_time,
).where(coupons.c.coupon_code.in_(bindparam("codes", expanding=True)))


async def presented(database: Database, codes: list[str]) -> dict:
    """The rows of the coupons presented to a quote, by code (a read of its own)."""
    return {r.coupon_code: r for r in await database.rows(_PRESENTED, {"codes": codes})} if codes else {}


def _row(c: MemberCoupon, now: datetime, issue_path: str, batch_id: str) -> dict:
    return {
        "coupon_id": c.coupon_id,
        "coupon_code": c.coupon_code,
        "template_id": c.template_id,
        "member_id": c.member_id,
        "state": c.state,
        "reservation_id": None,
        "valid_from_time": c.valid_from_time,
        "valid_until_time": c.valid_until_time,
        "issue_time": now,
        "batch_id": batch_id or None,
        "issue_path": issue_path,
        "face_fen": c.template.face_fen,
    }


async def add(
    tx: Transaction, wanted: list[MemberCoupon], now: datetime, issue_path: str, batch_id: str = ""
) -> list[MemberCoupon]:
    """The coupons issued (at the node issue_path), of those wanted. With a batch_id, a member who already holds
    a coupon of that batch gets none: the unique (batch_id, member_id) index settles it,
    even between two calls of one batch that run at once."""
    rows = [_row(c, now, issue_path, batch_id) for c in wanted]
    if not batch_id:
        await tx.execute(insert(coupons), rows)
        return wanted
    inserted = set(await insert_new(tx, coupons, rows, conflict=("batch_id", "member_id")))
    return [c for c in wanted if c.coupon_id in inserted]


async def of_member(
    tx: Transaction, member_id: str, state: str | None, before: str | None, limit: int, valid_at: datetime | None = None
) -> list[MemberCoupon]:
    """A member's coupons, newest first, each with its template; with valid_at, only
    those valid then."""
    q = (
        select(coupons, coupon_templates.c.body)
        .join(coupon_templates, coupon_templates.c.template_id == coupons.c.template_id)
        .where(coupons.c.member_id == member_id)
    )
    if state:
        q = q.where(coupons.c.state == state)
    if valid_at is not None:
        q = q.where(coupons.c.valid_from_time <= valid_at, coupons.c.valid_until_time > valid_at)
    if before is not None:
        q = q.where(coupons.c.coupon_id < before)
    return [
        MemberCoupon(
            r.coupon_id,
            r.coupon_code,
            r.template_id,
            r.member_id,
            r.state,
            r.valid_from_time,
            r.valid_until_time,
            from_body(r.body),
        )
        for r in (await tx.execute(q.order_by(coupons.c.coupon_id.desc()).limit(limit))).all()
    ]
