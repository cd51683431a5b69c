"""Redeeming reservations: the order is paid, its coupons are used and its discounts
given (booked in the campaigns' stats)."""

from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.holds import HoldState
from services.campaign.domain import reports, reservations as domain
from services.campaign.storage import reservations, rollups
from services.campaign.use_cases.reservations import settle


async def redeem_many(tx: Transaction, reservation_ids: list[str], now: datetime) -> list:
    """Redeem the reservations in the order given (a batch, huiyuan.database.Batcher):
    the codes each redeemed, or its refusal. One already redeemed (a retry with a new
    request_id) redeems nothing: nothing moves twice."""
    found = await reservations.lock(tx, reservation_ids)
    outcomes: list = []
    settled, here = [], set()  # here: redeemed by an ask before this one in the batch
    for reservation_id in reservation_ids:
        locked = found.get(reservation_id)
        if locked is None:
            outcomes.append(domain.not_found(reservation_id))
            continue
        try:
            redeem = reservation_id not in here and domain.redeeming(
                reservation_id, locked.row.state, locked.row.expire_time, now
            )
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        if not redeem:
            outcomes.append([])
            continue
        settled.append((locked, HoldState.CAPTURED))
        here.add(reservation_id)
        outcomes.append([code for code, _ in locked.codes])
    # reported first: the stats rows settle() adds to are the hot ones, locked last
    await _report(tx, [locked for locked, _ in settled], now)
    await settle(tx, settled, now)
    return outcomes


async def _report(tx: Transaction, redeemed: list, now: datetime) -> None:
    """The redemptions' contributions to the reports, with them (one outbox row): each
    campaign that priced an order (its member's first order of it decided by
    storage's unique key) and each coupon used."""
    firsts = await reservations.first_uses(
        tx,
        [
            (u.campaign_id, locked.row.member_id, locked.row.reservation_id)
            for locked in redeemed
            for u in locked.uses
            if u.own_fen > 0
        ],
    )
    await rollups.record(
        tx,
        [
            c
            for locked in redeemed
            for c in reports.redeemed(rollups.redemption(locked.row, now, locked.uses, locked.coupons, firsts))
        ],
    )
