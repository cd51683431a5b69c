"""Reservations kept: a row per reservation, the coupons it holds (coupons.reservation_id)
and a row per campaign discount it holds (campaign_uses: what budgets and limits
count). The statements every checkout runs are built once (SQLAlchemy reuses their
compiled form)."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects import sqlite

from huiyuan.database import BUILT_ONCE, Transaction, send, together
from huiyuan.database.engines import dialect_name
from huiyuan.runtime.holds import HoldState
from services.campaign.domain.budgets import Limits
from services.campaign.domain.coupons import AVAILABLE, REDEEMED, RESERVED
from services.campaign.domain.reports import own_fen
from services.campaign.domain.reservations import ReserveAsk, coupon_discounts
from services.campaign.storage.tables import (
    campaign_members,
    campaign_uses,
    campaigns,
    coupon_templates,
    coupons,
    discount_returns,
    reservations,
)

_LOCK_COUPONS = (
    select(coupons)
    .where(coupons.c.coupon_code.in_(bindparam("codes", expanding=True)))
    .order_by(coupons.c.coupon_code)
    .with_for_update()
)
_RESERVE_COUPONS = (
    update(coupons)
    .where(coupons.c.coupon_code == bindparam("code"))
    .values(state=RESERVED, reservation_id=bindparam("reservation"), discount_fen=bindparam("discount"))
)
# The campaign behind each adjusted coupon's template ("" when no budget backs it), and
# the bodies of the campaigns that pay a reservation's adjustments: their own, or
# those behind their coupons.
_BEHIND = (
    select(coupons.c.coupon_code, coupon_templates.c.campaign_id)
    .join(coupon_templates, coupon_templates.c.template_id == coupons.c.template_id)
    .where(coupons.c.coupon_code.in_(bindparam("adjusted_codes", expanding=True)))
)
_PAYING = select(campaigns.c.campaign_id, campaigns.c.body).where(
    or_(
        campaigns.c.campaign_id.in_(bindparam("campaign_ids", expanding=True)),
        campaigns.c.campaign_id.in_(
            select(coupon_templates.c.campaign_id)
            .join(coupons, coupons.c.template_id == coupon_templates.c.template_id)
            .where(coupons.c.coupon_code.in_(bindparam("adjusted_codes", expanding=True)))
            .scalar_subquery()
        ),
    )
)
# A use counts against the limits while it is held or booked, until its whole discount
# has come back with returned goods (then, as in the stats, it is no order).
_COUNTED = and_(
    campaign_uses.c.campaign_id == bindparam("campaign_id"),
    campaign_uses.c.state.in_([HoldState.PENDING.value, HoldState.CAPTURED.value]),
    campaign_uses.c.returned_fen < campaign_uses.c.amount_fen,
)
_MEMBER_USES = select(func.count()).where(_COUNTED, campaign_uses.c.member_id == bindparam("member_id"))
_STORE_USES = select(func.count()).where(
    _COUNTED, campaign_uses.c.store_path == bindparam("store_path"), campaign_uses.c.business_day == bindparam("day")
)
# first_uses() on PostgreSQL: the uses as an array per column (a VALUES list would be a
# statement per length, compiled on every call)
_FIRST_USES = text(
    "INSERT INTO campaign_members (campaign_id, member_id, reservation_id) "
    "SELECT * FROM unnest(CAST(:campaign_ids AS VARCHAR[]), CAST(:member_ids AS VARCHAR[]), "
    "CAST(:reservation_ids AS VARCHAR[])) "
    "ON CONFLICT (campaign_id, member_id) DO NOTHING RETURNING campaign_id, reservation_id"
).execution_options(**{BUILT_ONCE: True})
_INSERT_RESERVATION = insert(reservations)
_INSERT_USES = insert(campaign_uses)
_INSERT_RETURN = insert(discount_returns)
# Reservations (one, or a batch's) locked in id order, and their uses and codes.
_LOCK_RESERVATIONS = (
    select(reservations)
    .where(reservations.c.reservation_id.in_(bindparam("keys", expanding=True)))
    .order_by(reservations.c.reservation_id)
    .with_for_update()
)
_USES_OF_MANY = (
    select(campaign_uses)
    .where(campaign_uses.c.reservation_id.in_(bindparam("keys", expanding=True)))
    .order_by(campaign_uses.c.reservation_id, campaign_uses.c.campaign_id)
)
_CODES_OF_MANY = (
    select(
        coupons.c.reservation_id,
        coupons.c.coupon_code,
        coupon_templates.c.campaign_id,
        coupons.c.template_id,
        coupons.c.issue_path,
        coupons.c.issue_time,
        coupons.c.face_fen,
        coupons.c.valid_until_time,
        coupons.c.discount_fen,
    )
    .join(coupon_templates, coupon_templates.c.template_id == coupons.c.template_id)
    .where(coupons.c.reservation_id.in_(bindparam("keys", expanding=True)))
    .order_by(coupons.c.reservation_id, coupons.c.coupon_code)
)
_SET_USES = (
    update(campaign_uses).where(campaign_uses.c.reservation_id == bindparam("key")).values(state=bindparam("new_state"))
)
_SET_RESERVATION = (
    update(reservations).where(reservations.c.reservation_id == bindparam("key")).values(state=bindparam("new_state"))
)
_SET_REDEEMED = (
    update(reservations)
    .where(reservations.c.reservation_id == bindparam("key"))
    .values(state=HoldState.CAPTURED.value, redeem_time=bindparam("now"))
)
_REDEEM_COUPONS = update(coupons).where(coupons.c.reservation_id == bindparam("key")).values(state=REDEEMED)
_RETURN_COUPONS = (
    update(coupons)
    .where(coupons.c.reservation_id == bindparam("key"))
    .values(state=AVAILABLE, reservation_id=None, discount_fen=0)
)


_u = campaign_uses.c
_GIVE_BACK = (  # built once: compiled once (docs/decisions/0004)
    update(campaign_uses)
    .where(_u.reservation_id == bindparam("key"), _u.campaign_id == bindparam("campaign"))
    .values(returned_fen=_u.returned_fen + bindparam("amount"))
)


def _limits(body: dict) -> Limits:
    return Limits(body["budget_fen"], body["per_member_limit"], body["per_store_daily_limit"])


async def lock_for(tx: Transaction, asks: list[ReserveAsk]) -> tuple[dict, dict[str, str], dict[str, Limits]]:
    """What reserving the asks needs, in one round trip: their coupons' rows locked (by
    code), the campaign behind each adjusted coupon, and the limits of the campaigns
    that pay their adjustments (by id)."""
    codes = sorted({c for a in asks for c in a.codes})
    adjusted = {"adjusted_codes": sorted({x.coupon_code for a in asks for x in a.adjustments if x.coupon_code})}
    campaign_ids = sorted({x.campaign_id for a in asks for x in a.adjustments if x.campaign_id})
    locked, behind, paying = await together(
        tx,
        (_LOCK_COUPONS, {"codes": codes}),
        (_BEHIND, adjusted),
        (_PAYING, {**adjusted, "campaign_ids": campaign_ids}),
    )
    return (
        {r.coupon_code: r for r in locked.all()},
        dict(behind.all()),
        {campaign_id: _limits(body) for campaign_id, body in paying.all()},
    )


async def add(tx: Transaction, reserved: list[tuple[ReserveAsk, dict[str, int]]], now: datetime, day: date) -> None:
    """The reservations of these asks, their coupons and their campaign discounts
    (by campaign id), all sent."""
    await send(
        tx,
        _INSERT_RESERVATION,
        [
            {
                "reservation_id": a.reservation_id,
                "member_id": a.member_id,
                "order_id": a.order_id,
                "store_path": a.store_path,
                "state": HoldState.PENDING.value,
                "expire_time": now + a.ttl,
                "create_time": now,
                "payable_fen": a.payable_fen,
            }
            for a, _ in reserved
        ],
    )
    await send(
        tx,
        _RESERVE_COUPONS,
        [
            {"code": code, "reservation": a.reservation_id, "discount": coupon_discounts(a).get(code, 0)}
            for a, _ in reserved
            for code in a.codes
        ],
    )
    await send(
        tx,
        _INSERT_USES,
        [
            {
                "reservation_id": a.reservation_id,
                "campaign_id": campaign_id,
                "member_id": a.member_id,
                "store_path": a.store_path,
                "business_day": day,
                "amount_fen": amount,
                "own_fen": own_fen(campaign_id, [(x.campaign_id, x.amount_fen) for x in a.adjustments]),
                "state": HoldState.PENDING.value,
            }
            for a, discounts in reserved
            for campaign_id, amount in sorted(discounts.items())
        ],
    )


async def member_uses(tx: Transaction, campaign_id: str, member_id: str) -> int:
    """The uses of a campaign by a member that count against its limit."""
    return (await tx.execute(_MEMBER_USES, {"campaign_id": campaign_id, "member_id": member_id})).scalar()


async def store_uses(tx: Transaction, campaign_id: str, store_path: str, day: date) -> int:
    """The uses of a campaign at a store on a business day that count against its limit."""
    return (await tx.execute(_STORE_USES, {"campaign_id": campaign_id, "store_path": store_path, "day": day})).scalar()


@dataclass
class Locked:
    """A reservation, locked, with its campaign uses and its coupons' codes (each with
    the campaign behind its template)."""

    row: Any  # its row of reservations
    uses: list
    codes: list
    coupons: list  # the rows of its coupons (with what the reports read of them)


async def lock(tx: Transaction, reservation_ids: list[str]) -> dict[str, Locked]:
    """The reservations locked (in id order), with their uses and codes, by id; one
    round trip: the reads after the lock run behind it, under it."""
    keys = {"keys": sorted(set(reservation_ids))}
    locked, uses, codes = await together(tx, (_LOCK_RESERVATIONS, keys), (_USES_OF_MANY, keys), (_CODES_OF_MANY, keys))
    found = {row.reservation_id: Locked(row, [], [], []) for row in locked.all()}
    for use in uses.all():
        found[use.reservation_id].uses.append(use)
    for coupon in codes.all():
        found[coupon.reservation_id].codes.append((coupon.coupon_code, coupon.campaign_id))
        found[coupon.reservation_id].coupons.append(coupon)
    return found


async def end(tx: Transaction, ended: list[tuple[Locked, HoldState]], now: datetime) -> None:
    """End reservations: their uses and rows take the state (a redeemed one its
    redemption's time), their coupons are used (CAPTURED) or AVAILABLE again. All sent."""
    for state in sorted({state for _, state in ended}):
        these = [locked for locked, s in ended if s == state]
        await send(tx, _SET_USES, [{"key": x.row.reservation_id, "new_state": state.value} for x in these if x.uses])
        if state == HoldState.CAPTURED:
            await send(tx, _SET_REDEEMED, [{"key": x.row.reservation_id, "now": now} for x in these])
        else:
            await send(tx, _SET_RESERVATION, [{"key": x.row.reservation_id, "new_state": state.value} for x in these])
    await send(
        tx,
        _REDEEM_COUPONS,
        [{"key": locked.row.reservation_id} for locked, state in ended if state == HoldState.CAPTURED and locked.codes],
    )
    await send(
        tx,
        _RETURN_COUPONS,
        [{"key": locked.row.reservation_id} for locked, state in ended if state != HoldState.CAPTURED and locked.codes],
    )


async def lapsed(tx: Transaction, now: datetime, limit: int) -> list[str]:
    rows = await tx.execute(
        select(reservations.c.reservation_id)
        .where(reservations.c.state == HoldState.PENDING.value, reservations.c.expire_time <= now)
        .limit(limit)
    )
    return list(rows.scalars())


async def behind(tx: Transaction, codes: list[str]) -> dict[str, str]:
    """The campaign behind each coupon's template ("" when no budget backs it)."""
    return dict((await tx.execute(_BEHIND, {"adjusted_codes": codes})).all()) if codes else {}


async def of_order(tx: Transaction, order_id: str) -> list:
    """An order's reservations, locked."""
    return (await tx.execute(select(reservations).where(reservations.c.order_id == order_id).with_for_update())).all()


async def uses_of(tx: Transaction, reservation_id: str) -> dict:
    """A reservation's campaign uses, by campaign id."""
    u = campaign_uses.c
    return {
        x.campaign_id: x
        for x in (await tx.execute(select(campaign_uses).where(u.reservation_id == reservation_id))).all()
    }


async def give_back(
    tx: Transaction, reservation_id: str, amounts: dict[str, int], own: dict[str, int], now: datetime
) -> None:
    """Count returned discounts on a reservation's uses, by campaign id, and keep the
    return (own: each campaign's own part, for the reports). Sent."""
    for campaign_id, amount in sorted(amounts.items()):
        await send(tx, _GIVE_BACK, {"key": reservation_id, "campaign": campaign_id, "amount": amount})
    await send(
        tx,
        _INSERT_RETURN,
        [
            {"reservation_id": reservation_id, "campaign_id": c, "amount_fen": amount, "return_time": now}
            for c, amount in sorted(own.items())
            if amount > 0
        ],
    )


async def first_uses(tx: Transaction, uses: list[tuple[str, str, str]]) -> set[tuple[str, str]]:
    """Of these uses (campaign id, member id, reservation id), each a redeemed order a
    campaign priced: the (reservation id, campaign id) of those that are their member's
    first of the campaign. The unique key settles it, however many redemptions run at
    once; the first of a member's uses in the list wins among them."""
    wanted: dict[tuple[str, str], str] = {}
    for campaign_id, member_id, reservation_id in uses:
        wanted.setdefault((campaign_id, member_id), reservation_id)
    if not wanted:
        return set()
    kept = sorted(wanted.items())
    if dialect_name(tx) == "postgresql":  # one statement, built once, for any number of uses
        arrays = {
            "campaign_ids": [c for (c, _), _ in kept],
            "member_ids": [m for (_, m), _ in kept],
            "reservation_ids": [r for _, r in kept],
        }
        return {(r, c) for c, r in (await tx.execute(_FIRST_USES, arrays)).all()}
    statement = (
        sqlite.insert(campaign_members)
        .values([{"campaign_id": c, "member_id": m, "reservation_id": r} for (c, m), r in kept])
        .on_conflict_do_nothing(index_elements=["campaign_id", "member_id"])
        .returning(campaign_members.c.campaign_id, campaign_members.c.reservation_id)
    )
    return {(r, c) for c, r in (await tx.execute(statement)).all()}
