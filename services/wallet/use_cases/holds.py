"""Spending in two phases: hold -> capture | release, and lapsing holds.

Every use case locks the member's accounts row first and the hold second, always in
that order, so two calls on one member queue instead of deadlocking; the row lock (and
on SQLite the single writer) is what makes "available >= amount" true at commit.
Holds and captures are placed in batches (the calls that arrived together, one
transaction: huiyuan/database/batching.py); a batch locks its members' rows in
member_id order, then its holds in hold_id order, and runs its asks one after another
in memory.
"""

from dataclasses import replace

from huiyuan.database import Transaction
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.holds import HoldState, require_pending
from services.wallet.domain import holds as rules
from services.wallet.domain.accounts import MemberAccounts, insufficient
from services.wallet.domain.holds import CaptureAsk, Captured, Hold, HoldAsk
from services.wallet.domain.lots import draw_from_lots
from services.wallet.domain.spend_policy import SpendPolicy, split_spend
from services.wallet.storage import accounts as stored_accounts, entries, holds, lots


async def lock_hold(tx: Transaction, hold_id: str) -> tuple[Hold, MemberAccounts]:
    """The hold and its member's accounts, both locked (accounts first)."""
    accounts = await stored_accounts.lock_accounts_of_hold(tx, hold_id)
    if accounts is None:
        raise rules.hold_not_found(hold_id)
    return await holds.lock_hold(tx, hold_id), accounts


async def _end_hold(tx: Transaction, hold: Hold, accounts: MemberAccounts, state: HoldState) -> None:
    """End the hold (domain/holds.py end), written."""
    rules.end(hold, accounts, state)
    await holds.save_end(tx, hold)


async def _expire_lapsed_of(tx: Transaction, accounts: MemberAccounts, now) -> None:
    for hold in await holds.pending_lapsed_of(tx, accounts.member_id, now):
        await _end_hold(tx, hold, accounts, HoldState.EXPIRED)


async def place_holds(tx: Transaction, asks: list[HoldAsk], policy: SpendPolicy, now) -> list[Hold | DomainError]:
    """Place the holds in the order asked (a batch, huiyuan/database/batching.py), each
    against what the ones before it left available: the hold, or the refusal, of each.
    A refused one writes nothing."""
    accounts = await stored_accounts.lock_existing_accounts(tx, [a.member_id for a in asks])
    placed: list[Hold | DomainError] = []
    changed: dict[str, MemberAccounts] = {}
    for ask in asks:
        member = accounts[ask.member_id]
        if member.available < ask.amount and member.held:
            await _expire_lapsed_of(tx, member, now)  # a lapsed hold never blocks a new one
            changed[member.member_id] = member  # written even if this ask is refused: its neighbours commit
        if member.available < ask.amount:
            placed.append(insufficient(member, ask.amount))
            continue
        principal, bonus = split_spend(ask.amount, member, policy)
        member.held_principal += principal
        member.held_bonus += bonus
        changed[member.member_id] = member
        placed.append(
            Hold(
                ask.hold_id,
                ask.member_id,
                ask.amount,
                principal,
                bonus,
                0,
                0,
                0,
                HoldState.PENDING,
                ask.store_path,
                ask.order_id,
                policy.value,
                now + ask.ttl,
            )
        )
    await holds.add_holds(tx, [h for h in placed if isinstance(h, Hold)], now)
    await stored_accounts.save_all_accounts(tx, [changed[m] for m in sorted(changed)], now)
    return placed


async def capture_holds(tx: Transaction, asks: list[CaptureAsk], now) -> list[Captured | DomainError]:
    """Capture the holds in the order asked (a batch): each posts up to its held amount,
    oldest lots first, and releases the rest. The capture, or the refusal, of each; a
    refused one writes nothing."""
    accounts, found, open_lots = await holds.lock_holds_to_capture(tx, [a.hold_id for a in asks])
    outcomes: list[Captured | DomainError] = []
    ended, draws_made, posted = [], [], []
    for ask in asks:
        hold = found.get(ask.hold_id)
        try:
            principal, bonus = rules.capturable(ask, hold, now)
        except DomainError as refusal:
            outcomes.append(refusal)
            continue
        member = accounts[hold.member_id]
        rules.end(hold, member, HoldState.CAPTURED, principal, bonus)
        ended.append(hold)
        draws = draw_from_lots(open_lots[hold.member_id], principal, bonus)
        draws_made += [(hold.hold_id, d) for d in draws]
        posted += entries.entry_rows(
            member,
            hold.hold_id,
            rules.consumption(hold, draws),
            operator_id=ask.operator_id,
            policy=hold.policy,
            now=now,
        )
        outcomes.append(Captured(replace(hold), replace(member), principal, bonus))
    await holds.save_ended(tx, ended)
    await lots.move_lots(tx, [d for _, d in draws_made], -1)
    await holds.add_draws(tx, draws_made)
    await entries.add_entries(tx, posted)
    await stored_accounts.save_all_accounts(tx, [accounts[m] for m in sorted({h.member_id for h in ended})], now)
    return outcomes


async def release(tx: Transaction, *, hold_id: str, now) -> Hold:
    """Void a pending hold. A released or lapsed hold is already what the caller wants."""
    hold, accounts = await lock_hold(tx, hold_id)
    if hold.state == HoldState.CAPTURED:
        require_pending(hold_id, hold.state, hold.expire_time, now)
    if hold.state == HoldState.PENDING:
        await _end_hold(tx, hold, accounts, HoldState.EXPIRED if hold.expire_time <= now else HoldState.RELEASED)
        await stored_accounts.save_accounts(tx, accounts, now)
    return hold


async def lapsed_holds(tx: Transaction, now, limit: int = 500) -> list[str]:
    """The pending holds past their deadline, the earliest first (the sweeper's list)."""
    return await holds.lapsed_holds(tx, now, limit)


async def expire(tx: Transaction, hold_id: str, now) -> bool:
    """Lapse one hold past its deadline (the sweeper's step); False if it was not."""
    hold, accounts = await lock_hold(tx, hold_id)
    if hold.state != HoldState.PENDING or hold.expire_time > now:
        return False
    await _end_hold(tx, hold, accounts, HoldState.EXPIRED)
    await stored_accounts.save_accounts(tx, accounts, now)
    return True
