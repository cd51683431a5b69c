"""Spending in two phases: hold -> capture | release, lapsing holds, consumption refunds.

Every use case locks the member's accounts row first and the hold second, always in
that order, so two calls on one member queue instead of deadlocking; the row lock (and
on SQLite the single writer) is what makes "available >= amount" true at commit.
Holds and captures are placed in batches (the calls that arrived together, one
transaction: database/batching.py); a batch locks its members' rows in member_id order,
then its holds in hold_id order, and runs its asks one after another in memory.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database.direct import send
from huiyuan.runtime.errors import DomainError, FailedPrecondition, NotFound, invalid
from services.wallet.domain import accounts as domain
from services.wallet.storage import tables as storage
from huiyuan.runtime.holds import HoldState, require_pending
from services.wallet.domain.accounts import EntryKind, Posting
from services.wallet.storage.tables import hold_draws, holds


@dataclass
class Hold:
    hold_id: str
    member_id: str
    amount: int
    principal: int
    bonus: int
    captured_principal: int
    captured_bonus: int
    refunded: int
    state: HoldState
    store_path: str
    order_id: str
    policy: str
    expire_time: datetime

    @property
    def captured(self) -> int:
        return self.captured_principal + self.captured_bonus


def _to_hold(row) -> Hold:
    return Hold(row.hold_id, row.member_id, row.amount_fen, row.principal_fen, row.bonus_fen,
                row.captured_principal_fen, row.captured_bonus_fen, row.refunded_fen, HoldState(row.state),
                row.store_path, row.order_id, row.policy, row.expire_time)


_LOCK_HOLD = select(holds).where(holds.c.hold_id == bindparam("hold_id")).with_for_update()
_END_HOLD = update(holds).where(holds.c.hold_id == bindparam("key")).values(
    state=bindparam("new_state"), captured_principal_fen=bindparam("principal"), captured_bonus_fen=bindparam("bonus"))
_INSERT_HOLD = insert(holds)


def hold_not_found(hold_id: str) -> NotFound:
    return NotFound("HOLD_NOT_FOUND", "No such hold.", "冻结记录不存在。", hold_id=hold_id)


async def _lock_hold(session, hold_id: str) -> tuple[Hold, domain.MemberAccounts]:
    """The hold and its member's accounts, both locked (accounts first)."""
    accounts = await storage.lock_accounts_of_hold(session, hold_id)
    if accounts is None:
        raise hold_not_found(hold_id)
    row = (await session.execute(_LOCK_HOLD, {"hold_id": hold_id})).one()
    return _to_hold(row), accounts


def _end(hold: Hold, accounts: domain.MemberAccounts, state: HoldState, captured_principal: int = 0,
         captured_bonus: int = 0) -> None:
    """Give the pending amounts back to available and mark the hold final (in memory)."""
    accounts.held_principal -= hold.principal
    accounts.held_bonus -= hold.bonus
    hold.state, hold.captured_principal, hold.captured_bonus = state, captured_principal, captured_bonus


def _ended_row(hold: Hold) -> dict:
    return {"key": hold.hold_id, "new_state": hold.state.value, "principal": hold.captured_principal,
            "bonus": hold.captured_bonus}


async def _end_hold(session, hold: Hold, accounts: domain.MemberAccounts, state: HoldState) -> None:
    """_end, written."""
    _end(hold, accounts, state)
    await send(session, _END_HOLD, _ended_row(hold))


async def _expire_lapsed_of(session, accounts: domain.MemberAccounts, now) -> None:
    rows = await session.execute(select(holds).where(
        holds.c.member_id == accounts.member_id, holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now))
    for row in rows.all():
        await _end_hold(session, _to_hold(row), accounts, HoldState.EXPIRED)


@dataclass(frozen=True)
class HoldAsk:
    """One hold to place: what the caller asked, checked."""
    hold_id: str
    member_id: str
    amount: int
    ttl: timedelta
    store_path: str
    order_id: str


@dataclass(frozen=True)
class CaptureAsk:
    hold_id: str
    amount: int
    operator_id: str


@dataclass(frozen=True)
class Captured:
    hold: Hold
    accounts: domain.MemberAccounts  # as this capture left them
    principal: int
    bonus: int


async def place_holds(session, asks: list[HoldAsk], policy: domain.SpendPolicy, now) -> list[Hold | DomainError]:
    """Place the holds in the order asked (a batch, database/batching.py), each against
    what the ones before it left available: the hold, or the refusal, of each. A
    refused one writes nothing."""
    accounts = await storage.lock_existing_accounts(session, [a.member_id for a in asks])
    placed: list[Hold | DomainError] = []
    changed: dict[str, domain.MemberAccounts] = {}
    for ask in asks:
        member = accounts[ask.member_id]
        if member.available < ask.amount and member.held:
            await _expire_lapsed_of(session, member, now)  # a lapsed hold never blocks a new one
            changed[member.member_id] = member  # written even if this ask is refused: its neighbours commit
        if member.available < ask.amount:
            placed.append(domain.insufficient(member, ask.amount))
            continue
        principal, bonus = domain.split_spend(ask.amount, member, policy)
        member.held_principal += principal
        member.held_bonus += bonus
        changed[member.member_id] = member
        placed.append(Hold(ask.hold_id, ask.member_id, ask.amount, principal, bonus, 0, 0, 0, HoldState.PENDING,
                           ask.store_path, ask.order_id, policy.value, now + ask.ttl))
    holds_placed = [h for h in placed if isinstance(h, Hold)]
    await send(session, _INSERT_HOLD, [{
        "hold_id": h.hold_id, "member_id": h.member_id, "amount_fen": h.amount, "principal_fen": h.principal,
        "bonus_fen": h.bonus, "captured_principal_fen": 0, "captured_bonus_fen": 0, "refunded_fen": 0,
        "state": h.state.value, "store_path": h.store_path, "order_id": h.order_id, "policy": h.policy,
        "expire_time": h.expire_time, "create_time": now} for h in holds_placed])
    await storage.save_all_accounts(session, [changed[m] for m in sorted(changed)], now)
    return placed


async def capture_holds(session, asks: list[CaptureAsk], now) -> list[Captured | DomainError]:
    """Capture the holds in the order asked (a batch): each posts up to its held amount,
    oldest lots first, and releases the rest. The capture, or the refusal, of each; a
    refused one writes nothing."""
    accounts, hold_rows, lots = await storage.lock_holds_to_capture(session, [a.hold_id for a in asks])
    found = {row.hold_id: _to_hold(row) for row in hold_rows}
    outcomes: list[Captured | DomainError] = []
    ended, draws_made, posted = [], [], []
    for ask in asks:
        hold = found.get(ask.hold_id)
        try:
            principal, bonus = _capturable(ask, hold, now)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        member = accounts[hold.member_id]
        _end(hold, member, HoldState.CAPTURED, principal, bonus)
        ended.append(hold)
        draws = domain.draw_from_lots(lots[hold.member_id], principal, bonus)
        draws_made += [(hold.hold_id, d) for d in draws]
        postings = [Posting(EntryKind.CONSUMPTION, -d.principal, -d.bonus, domain.spend_account(hold.store_path),
                            d.loaded_store_path, hold.store_path, hold.order_id) for d in draws]
        posted += storage.entry_rows(member, hold.hold_id, postings, operator_id=ask.operator_id, policy=hold.policy,
                                      now=now)
        outcomes.append(Captured(replace(hold), replace(member), principal, bonus))
    await send(session, _END_HOLD, [_ended_row(h) for h in ended])
    await storage.move_lots(session, [d for _, d in draws_made], -1)
    await send(session, insert(hold_draws), [
        {"hold_id": hold_id, "lot_id": d.lot_id, "loaded_store_path": d.loaded_store_path, "principal_fen": d.principal,
         "bonus_fen": d.bonus, "refunded_principal_fen": 0, "refunded_bonus_fen": 0} for hold_id, d in draws_made])
    await send(session, insert(storage.entries), posted)
    await storage.save_all_accounts(session, [accounts[m] for m in sorted({h.member_id for h in ended})], now)
    return outcomes


def _capturable(ask: CaptureAsk, hold: Hold | None, now) -> tuple[int, int]:
    """The principal and bonus this capture takes; raises why it cannot."""
    if hold is None:
        raise hold_not_found(ask.hold_id)
    require_pending(ask.hold_id, hold.state, hold.expire_time, now)
    if ask.amount > hold.amount:
        raise invalid("amount_fen", "CAPTURE_EXCEEDS_HOLD", f"amount_fen {ask.amount} is more than the {hold.amount} held")
    return domain.split_capture(ask.amount, hold.principal, hold.bonus)


async def release(session, *, hold_id: str, now) -> Hold:
    """Void a pending hold. A released or lapsed hold is already what the caller wants."""
    hold, accounts = await _lock_hold(session, hold_id)
    if hold.state == HoldState.CAPTURED:
        require_pending(hold_id, hold.state, hold.expire_time, now)
    if hold.state == HoldState.PENDING:
        await _end_hold(session, hold, accounts, HoldState.EXPIRED if hold.expire_time <= now else HoldState.RELEASED)
        await storage.save_accounts(session, accounts, now)
    return hold


async def lapsed_holds(db, now, limit: int = 500) -> list[str]:
    rows = await db.execute(select(holds.c.hold_id).where(
        holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now).order_by(holds.c.expire_time).limit(limit))
    return list(rows.scalars())


async def expire(session, hold_id: str, now) -> bool:
    """Lapse one hold past its deadline (the sweeper's step); False if it was not."""
    hold, accounts = await _lock_hold(session, hold_id)
    if hold.state != HoldState.PENDING or hold.expire_time > now:
        return False
    await _end_hold(session, hold, accounts, HoldState.EXPIRED)
    await storage.save_accounts(session, accounts, now)
    return True


async def refund_consumption(session, *, hold_id: str, amount: int, store_path: str, operator_id: str,
                             refund_id: str, now) -> tuple[domain.MemberAccounts, int, int]:
    """Return part or all of a capture, principal and bonus in the proportions taken,
    to the lots it came from."""
    hold, accounts = await _lock_hold(session, hold_id)
    if hold.state != HoldState.CAPTURED:
        raise FailedPrecondition("HOLD_NOT_CAPTURED", "Only a captured hold can be refunded.", "只有已扣款的冻结可以退款。",
                                 hold_id=hold_id)
    if hold.refunded + amount > hold.captured:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_CAPTURE", f"Only {hold.captured - hold.refunded} fen of this spend is left to refund.",
            f"该笔消费可退金额仅剩 {hold.captured - hold.refunded} 分。", refundable_fen=hold.captured - hold.refunded)
    principal, bonus = domain.split_refund(hold.refunded, amount, hold.captured_principal, hold.captured_bonus)
    rows = (await session.execute(select(hold_draws).where(hold_draws.c.hold_id == hold_id)
                                  .order_by(hold_draws.c.lot_id))).all()
    left = [domain.Draw(r.lot_id, r.loaded_store_path, r.principal_fen - r.refunded_principal_fen,
                        r.bonus_fen - r.refunded_bonus_fen) for r in rows]
    back = domain.undraw(left, principal, bonus)
    await storage.move_lots(session, back, +1)
    for d in back:
        await send(session, update(hold_draws).where(hold_draws.c.hold_id == hold_id, hold_draws.c.lot_id == d.lot_id)
                            .values(refunded_principal_fen=hold_draws.c.refunded_principal_fen + d.principal,
                                    refunded_bonus_fen=hold_draws.c.refunded_bonus_fen + d.bonus))
    postings = [Posting(EntryKind.CONSUMPTION_REFUND, d.principal, d.bonus, domain.spend_account(store_path),
                        d.loaded_store_path, store_path, hold.order_id) for d in back]
    await storage.post(session, accounts, refund_id, postings, operator_id=operator_id, policy=hold.policy, now=now)
    await send(session, update(holds).where(holds.c.hold_id == hold_id).values(refunded_fen=hold.refunded + amount))
    return accounts, principal, bonus
