"""Payment PINs (支付密码) and what a member presents to pay, on the member database
(the rules: domain/pins.py).

Hashing runs in a worker thread (hashlib releases the GIL), never on the event loop,
and outside the transaction: a try's transaction holds the member's PIN row only to
count.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime

from huiyuan.database import Database, Transaction
from services.member.domain.pins import (
    PinState,
    hash_pin,
    not_theirs,
    pin_locked,
    pin_matches,
    pin_not_set,
)
from services.member.domain.qr import verify_qr_token
from services.member.storage import pins as stored
from services.member.use_cases.members import lookup, require_member


async def check_card_or_qr(
    database: Database, member_id: str, *, card_number: str = "", qr_member_id: str = "", now: datetime
) -> None:
    """A card of the member's that can pay, or a QR code of theirs (its token already
    verified: qr_member_id is whom it names)."""
    if card_number:  # the till's lookup: the card must be payable
        found = await lookup(database, card_number=card_number, for_payment=True, now=now)
        if found.member.member_id != member_id:
            raise not_theirs(card_number)
        return
    if qr_member_id != member_id:
        raise not_theirs()


async def verify_card_or_qr(
    database: Database, member_id: str, *, card_number: str, qr_token: str | None, qr_secret: str, now: datetime
) -> None:
    """The member presents a card of theirs that can pay, or a QR code of theirs
    (qr_token; None when they present a card)."""
    qr_member = verify_qr_token(qr_token, qr_secret, now) if qr_token is not None else ""
    async with database.reading() as tx:
        await require_member(tx, member_id)
    await check_card_or_qr(database, member_id, card_number=card_number, qr_member_id=qr_member, now=now)


async def hashed_in_thread(pin: str) -> str:
    return await asyncio.to_thread(hash_pin, pin)


async def matches_in_thread(pin: str, kept: str) -> bool:
    return await asyncio.to_thread(pin_matches, pin, kept)


@dataclass(frozen=True)
class Checked:
    """A PIN checked before its try's transaction: against the hash seen then (right is
    None when there was none to check, or the PIN was locked)."""

    seen: PinState
    right: bool | None


async def check_before_try(database: Database, member_id: str, pin: str, now: datetime) -> Checked:
    """The slow hash, before the transaction; try_pin hashes again inside only if the PIN
    changed meanwhile."""
    async with database.reading() as tx:
        seen = await stored.state_of(tx, member_id)
    right = None if seen.pin_hash is None or seen.locked(now) else await matches_in_thread(pin, seen.pin_hash)
    return Checked(seen, right)


async def try_pin(tx: Transaction, member_id: str, pin: str, now: datetime, checked: Checked) -> tuple[PinState, bool]:
    """One try of a PIN, counted: the state after it, and whether the PIN was right.
    A wrong try commits its count (an answer stored, not a refusal rolled back: the
    caller refuses it after); PIN_NOT_SET and PIN_LOCKED count nothing."""
    await require_member(tx, member_id)
    state = await stored.state_of(tx, member_id, for_update=True)
    if state.pin_hash is None:
        raise pin_not_set(member_id)
    if state.locked(now):
        raise pin_locked(state.locked_until)  # type: ignore[arg-type]
    if state.pin_hash == checked.seen.pin_hash and checked.right is not None:
        right = checked.right
    else:
        right = pin_matches(pin, state.pin_hash)
    after = state.tried(right, now)
    await stored.save(tx, after)
    return after, right


async def set_pin(tx: Transaction, member_id: str, pin_hash: str, now: datetime) -> PinState:
    await require_member(tx, member_id)
    await stored.state_of(tx, member_id, for_update=True)
    state = PinState(member_id, pin_hash, 0, None, now)
    await stored.save(tx, state)
    return state


async def reset_pin(tx: Transaction, member_id: str, clear: bool, now: datetime) -> PinState:
    """Unlocked (the count back to 0), or cleared: the member sets a new one."""
    await require_member(tx, member_id)
    state = await stored.state_of(tx, member_id, for_update=True)
    if state.pin_hash is None:
        raise pin_not_set(member_id)
    if clear:
        await stored.clear(tx, member_id)
        return PinState(member_id, None, 0, None, now)
    state = state.unlocked(now)
    await stored.save(tx, state)
    return state
