"""The campaign service's rollups (docs/reports.md): their definitions (tables.py),
recording a fact's contributions with it, and the raw records a rebuild reads them
from. What each fact contributes is domain/reports.py's."""

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from huiyuan.database import Transaction
from huiyuan.database.rollups import Rollups
from huiyuan.runtime.holds import HoldState
from huiyuan.runtime.rollups import Contribution
from services.campaign.domain import reports
from services.campaign.domain.reports import CampaignUse, IssuedCoupon, RedeemedCoupon, Redemption
from services.campaign.storage.tables import (
    campaign_members,
    campaign_uses,
    campaigns_rollup,
    coupons,
    coupons_outstanding_rollup,
    coupons_rollup,
    discount_returns,
    outbox,
    reservations,
)

ROLLUPS = Rollups(outbox, campaigns_rollup, coupons_rollup, coupons_outstanding_rollup)
RAW_BATCH = 2000  # raw records per read of a rebuild


async def record(tx: Transaction, contributions: list[Contribution]) -> None:
    """A fact's contributions, written with it (one outbox row, sent)."""
    await ROLLUPS.record(tx, contributions)


def issued_coupon(row: Any) -> IssuedCoupon:
    """A coupon's row (or a row with its columns) as the reports see it."""
    return IssuedCoupon(row.template_id, row.issue_path, row.issue_time, row.face_fen, row.valid_until_time)


def redemption(
    row: Any, time: datetime, uses: Iterable[Any], coupon_rows: Iterable[Any], firsts: set[tuple[str, str]]
) -> Redemption:
    """A reservation redeemed at time (row: its reservation's), its uses and coupons,
    and which of its uses were their member's first (reservation id, campaign id)."""
    return Redemption(
        row.store_path,
        time,
        row.payable_fen,
        [CampaignUse(u.campaign_id, u.own_fen, (row.reservation_id, u.campaign_id) in firsts) for u in uses],
        [RedeemedCoupon(issued_coupon(c), c.discount_fen) for c in coupon_rows],
    )


_ISSUED = (
    select(
        coupons.c.coupon_id,
        coupons.c.template_id,
        coupons.c.issue_path,
        coupons.c.issue_time,
        coupons.c.face_fen,
        coupons.c.valid_until_time,
    )
    .where(coupons.c.coupon_id > bindparam("after"))
    .order_by(coupons.c.coupon_id)
    .limit(RAW_BATCH)
)
_REDEEMED = (
    select(reservations)
    .where(reservations.c.state == HoldState.CAPTURED.value, reservations.c.reservation_id > bindparam("after"))
    .order_by(reservations.c.reservation_id)
    .limit(RAW_BATCH)
)
_KEYS = bindparam("keys", expanding=True)
_USES = select(campaign_uses).where(campaign_uses.c.reservation_id.in_(_KEYS)).order_by(campaign_uses.c.campaign_id)
_COUPONS = select(coupons).where(coupons.c.reservation_id.in_(_KEYS)).order_by(coupons.c.coupon_code)
_FIRSTS = select(campaign_members.c.reservation_id, campaign_members.c.campaign_id).where(
    campaign_members.c.reservation_id.in_(_KEYS)
)
_RETURNS = (
    select(discount_returns, reservations.c.store_path)
    .join(reservations, reservations.c.reservation_id == discount_returns.c.reservation_id)
    .where(discount_returns.c.return_id > bindparam("after"))
    .order_by(discount_returns.c.return_id)
    .limit(RAW_BATCH)
)


async def raw_facts(tx: Transaction) -> AsyncIterator[list[Contribution]]:
    """Every fact's contributions, from the raw records, batch by batch (keyset pages):
    the coupons issued, the reservations redeemed, the returns."""
    after = ""
    while rows := (await tx.execute(_ISSUED, {"after": after})).all():
        yield reports.issued(issued_coupon(r) for r in rows)
        after = rows[-1].coupon_id
    after = ""
    while rows := (await tx.execute(_REDEEMED, {"after": after})).all():
        keys = {"keys": [r.reservation_id for r in rows]}
        uses: dict[str, list[Any]] = {}
        for u in (await tx.execute(_USES, keys)).all():
            uses.setdefault(u.reservation_id, []).append(u)
        held: dict[str, list[Any]] = {}
        for c in (await tx.execute(_COUPONS, keys)).all():
            held.setdefault(c.reservation_id, []).append(c)
        firsts = {(r, c) for r, c in (await tx.execute(_FIRSTS, keys)).all()}
        yield [
            c
            for r in rows
            for c in reports.redeemed(
                redemption(
                    r,
                    r.redeem_time or r.create_time,  # redeemed before the time was kept: the reservation's
                    uses.get(r.reservation_id, []),
                    held.get(r.reservation_id, []),
                    firsts,
                )
            )
        ]
        after = rows[-1].reservation_id
    last = 0
    while rows := (await tx.execute(_RETURNS, {"after": last})).all():
        yield [c for r in rows for c in reports.returned(r.store_path, r.return_time, {r.campaign_id: r.amount_fen})]
        last = rows[-1].return_id
