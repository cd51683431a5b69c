"""Reserving an order's coupons and campaign discounts, releasing them, and lapsing
the reservations nobody redeemed (the sweeper). A reservation's discounts are held
against their campaigns' budgets and limits (use_cases/budgets.py says how)."""

from datetime import datetime

from huiyuan.database import RUN_ALONE, Transaction
from huiyuan.runtime.business_time import local
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.holds import HoldState
from services.campaign.domain import budgets as rules, reservations as domain
from services.campaign.domain.reservations import ReserveAsk
from services.campaign.storage import reservations
from services.campaign.storage.reservations import Locked
from services.campaign.use_cases import budgets


async def reserve_many(tx: Transaction, asks: list[ReserveAsk], now: datetime) -> list:
    """Reserve the asks in the order given (a batch, huiyuan.database.Batcher), each
    after the ones before it: each one's expire time, or its refusal (it writes
    nothing). In a batch of more than one, an ask whose campaigns check a budget or a
    limit answers RUN_ALONE: those are checked under the stats rows' locks one
    reservation at a time."""
    rows, behind, limits = await reservations.lock_for(tx, asks)  # one round trip
    taken: set[str] = set()  # reserved by an ask before this one in the batch
    outcomes: list = []
    reserved = []
    for ask in asks:
        discounts = rules.booked(ask.adjustments, behind)
        try:
            domain.check_coupons(ask, rows, taken, now)
            domain.check_campaigns(discounts, limits)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        if len(asks) > 1 and any(limits[c].limited for c in discounts):
            outcomes.append(RUN_ALONE)
            continue
        taken.update(ask.codes)
        reserved.append((ask, discounts))
        outcomes.append(now + ask.ttl)
    day = local(now).date()
    await reservations.add(tx, reserved, now, day)
    # Last: see use_cases/budgets.py. Alone, a reservation checks its campaigns' budgets
    # and limits under their rows' locks; in a batch none has any, and each row is added to once.
    if len(asks) == 1 and reserved:
        ((ask, discounts),) = reserved
        await budgets.take(tx, ask.member_id, ask.store_path, discounts, limits, day)
    else:
        await budgets.book_all(
            tx, [(c, {"reserved_fen": amount}) for _, discounts in reserved for c, amount in discounts.items()]
        )
    return outcomes


async def settle(tx: Transaction, settled: list[tuple[Locked, HoldState]], now: datetime) -> None:
    """End reservations: their discounts booked (CAPTURED) or given back."""
    await reservations.end(tx, settled, now)
    additions = []
    for locked, state in settled:  # last, each row once, in id order: the stats rows are the hot ones
        for x in locked.uses:
            coupons_here = sum(1 for _, campaign_id in locked.codes if campaign_id == x.campaign_id)
            additions.append((x.campaign_id, rules.settled(x.amount_fen, coupons_here, state == HoldState.CAPTURED)))
    await budgets.book_all(tx, additions)


async def _lock_one(tx: Transaction, reservation_id: str) -> Locked:
    found = (await reservations.lock(tx, [reservation_id])).get(reservation_id)
    if found is None:
        raise domain.not_found(reservation_id)
    return found


async def release(tx: Transaction, reservation_id: str, now: datetime) -> list[str]:
    """Give a reservation's coupons and discounts back: the codes given back."""
    locked = await _lock_one(tx, reservation_id)
    ending = domain.releasing(reservation_id, locked.row.state, locked.row.expire_time, now)
    if ending is None:
        return []
    await settle(tx, [(locked, ending)], now)
    return [code for code, _ in locked.codes]


async def lapsed(tx: Transaction, now: datetime, limit: int = 500) -> list[str]:
    """The reservations past their deadline (the sweeper's)."""
    return await reservations.lapsed(tx, now, limit)


async def expire(tx: Transaction, reservation_id: str, now: datetime) -> None:
    """Lapse a reservation past its deadline (nothing if it has ended meanwhile)."""
    locked = await _lock_one(tx, reservation_id)
    if domain.lapsing(locked.row.state, locked.row.expire_time, now):
        await settle(tx, [(locked, HoldState.EXPIRED)], now)
