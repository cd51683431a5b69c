"""Payment PINs (支付密码), and what a member presents to pay: the rules as plain Python,
then the use cases on the member database.

A PIN is kept only as a slow hash: scrypt (hashlib, OpenSSL's), a salt of its own,
N=2^14, r=8, p=1: 16 MiB of memory and about 50 ms of a core a try, so a stolen table
costs a guesser that much per guess and per member, and a graphics card gains little
(scrypt is memory-hard). argon2id would be the first choice of OWASP's list, but it is a
new dependency (argon2-cffi) for no gain that matters at these settings; the parameters
are written into each hash, so they can be raised without making members set their
PIN again. Six digits are a million guesses: what keeps them from being tried is the
lock (5 wrong in a row, then 30 minutes) and the gateway's limit on tries per key.

Hashing runs in a worker thread (hashlib releases the GIL), never on the event loop,
and outside the transaction: a try's transaction holds the member's PIN row only to
count.
"""

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from huiyuan.runtime.errors import FailedPrecondition, PermissionDenied, Violations
from huiyuan.database.upsert import insert_for
from services.member.members import lookup, require_member
from services.member.storage import payment_pins

PIN = re.compile(r"^\d{6}$")
MAX_TRIES = 5
LOCK = timedelta(minutes=30)
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SALT_BYTES, HASH_BYTES = 16, 32


# ---------------------------------------------------------------- the rules


def check_pin(v: Violations, pin: str, field: str) -> None:
    """Six digits, not one digit six times nor a run up or down: the first guesses."""
    ok = bool(PIN.match(pin)) and len(set(pin)) > 1 and pin not in "0123456789" and pin not in "9876543210"
    v.check(ok, field, "PIN_INVALID", f"{field}: 6 digits, not all the same nor a run such as 123456")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_pin(pin: str) -> str:
    """'scrypt$N$r$p$salt$hash' (base64): everything a later check needs."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(pin.encode(), salt=salt, dklen=HASH_BYTES, **SCRYPT)
    return f"scrypt${SCRYPT['n']}${SCRYPT['r']}${SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def pin_matches(pin: str, kept: str) -> bool:
    _, n, r, p, salt, digest = kept.split("$")
    expected = base64.b64decode(digest)
    tried = hashlib.scrypt(pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                           dklen=len(expected), maxmem=256 * 2**20)
    return hmac.compare_digest(tried, expected)


@dataclass(frozen=True)
class PinState:
    member_id: str
    pin_hash: str | None
    failed_tries: int = 0
    locked_until: datetime | None = None
    update_time: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def tried(self, right: bool, now: datetime) -> "PinState":
        """After one try: a right PIN sets the count back; a wrong one counts, from 0
        again once a lock has run out, and the MAX_TRIES-th in a row locks it."""
        if right:
            return replace(self, failed_tries=0, locked_until=None, update_time=now)
        failed = (0 if self.locked_until is not None else self.failed_tries) + 1
        return replace(self, failed_tries=failed, locked_until=now + LOCK if failed >= MAX_TRIES else None,
                       update_time=now)

    @property
    def tries_left(self) -> int:
        return max(0, MAX_TRIES - self.failed_tries)


def credential_required() -> PermissionDenied:
    return PermissionDenied("PAYMENT_CREDENTIAL_REQUIRED",
                            "Spending the member's balances needs their card, their QR code or their payment PIN.",
                            "使用会员的储值、积分或次卡，须出示会员卡、会员二维码或输入支付密码。")


def pin_not_set(member_id: str) -> FailedPrecondition:
    return FailedPrecondition("PIN_NOT_SET", "The member has no payment PIN; they set one with their card or QR code.",
                              "该会员尚未设置支付密码，请出示会员卡或会员二维码设置。", member_id=member_id)


def pin_locked(until: datetime) -> FailedPrecondition:
    return FailedPrecondition("PIN_LOCKED", "Too many wrong PINs: the PIN is locked for now; a store manager can "
                              "unlock it.", "支付密码错误次数过多，已暂时锁定，可请店长解锁。", unlock_time=until.isoformat())


def pin_incorrect(tries_left: int) -> PermissionDenied:
    return PermissionDenied("PIN_INCORRECT", f"Wrong PIN; {tries_left} more wrong {'try' if tries_left == 1 else 'tries'} "
                            "lock it.",
                            f"支付密码错误，再错 {tries_left} 次将被锁定。", tries_left=tries_left)


def not_theirs(card_number: str = "") -> FailedPrecondition:
    what = "card" if card_number else "QR code"
    return FailedPrecondition("CARD_NOT_OF_MEMBER", f"The {what} presented is another member's.",
                              "出示的卡不是该会员的卡。" if card_number else "出示的二维码不是该会员的。",
                              **({"card_number": card_number} if card_number else {}))


# ---------------------------------------------------------------- on the database


def _state(row, member_id: str) -> PinState:
    if row is None:
        return PinState(member_id, None)
    return PinState(member_id, row.pin_hash, row.failed_tries, row.locked_until, row.update_time)


async def pin_state(db, member_id: str, *, for_update: bool = False) -> PinState:
    query = select(payment_pins).where(payment_pins.c.member_id == member_id)
    return _state((await db.execute(query.with_for_update() if for_update else query)).one_or_none(), member_id)


async def _save(db, state: PinState) -> None:
    """The member's PIN row as state says, made on the first PIN (two first PINs set at
    once: the later one stands, as if it came second)."""
    values = {"pin_hash": state.pin_hash, "failed_tries": state.failed_tries, "locked_until": state.locked_until,
              "update_time": state.update_time}
    await db.execute(insert_for(db)(payment_pins).values(member_id=state.member_id, **values).on_conflict_do_update(
        index_elements=["member_id"], set_=values))


async def check_card_or_qr(direct, member_id: str, *, card_number: str = "", qr_member_id: str = "",
                           now: datetime) -> None:
    """A card of the member's that can pay, or a QR code of theirs (its token already
    verified: qr_member_id is whom it names)."""
    if card_number:  # the till's lookup: the card must be payable
        found = await lookup(direct, card_number=card_number, for_payment=True, now=now)
        if found.member.member_id != member_id:
            raise not_theirs(card_number)
        return
    if qr_member_id != member_id:
        raise not_theirs()


async def hashed_in_thread(pin: str) -> str:
    return await asyncio.to_thread(hash_pin, pin)


async def matches_in_thread(pin: str, kept: str) -> bool:
    return await asyncio.to_thread(pin_matches, pin, kept)


async def try_pin(direct, idempotency, method: str, request, member_id: str, pin: str, now: datetime, response_type,
                  answer):
    """One try of a PIN, counted once for request's request_id: the stored answer is
    answer(state_after, right) whether right or wrong (a wrong try must commit its
    count, so it is an answer stored, not a refusal rolled back); the caller raises for
    a wrong one. PIN_NOT_SET and PIN_LOCKED count nothing and stay the request's."""
    async with direct.reading() as db:
        seen = await pin_state(db, member_id)
    # The slow hash, before the transaction; again inside only if the PIN changed meanwhile.
    right = None if seen.pin_hash is None or seen.locked(now) else await matches_in_thread(pin, seen.pin_hash)

    async def work(db):
        await require_member(db, member_id)
        state = await pin_state(db, member_id, for_update=True)
        if state.pin_hash is None:
            raise pin_not_set(member_id)
        if state.locked(now):
            raise pin_locked(state.locked_until)
        is_right = right if state.pin_hash == seen.pin_hash and right is not None else pin_matches(pin, state.pin_hash)
        after = state.tried(is_right, now)
        await _save(db, after)
        return answer(after, is_right)

    return await idempotency.run(request, response_type, work, method)


async def set_pin(db, member_id: str, pin_hash: str, now: datetime) -> PinState:
    await require_member(db, member_id)
    await pin_state(db, member_id, for_update=True)
    state = PinState(member_id, pin_hash, 0, None, now)
    await _save(db, state)
    return state


async def reset_pin(db, member_id: str, clear: bool, now: datetime) -> PinState:
    """Unlocked (the count back to 0), or cleared: the member sets a new one."""
    await require_member(db, member_id)
    state = await pin_state(db, member_id, for_update=True)
    if state.pin_hash is None:
        raise pin_not_set(member_id)
    if clear:
        await db.execute(delete(payment_pins).where(payment_pins.c.member_id == member_id))
        return PinState(member_id, None, 0, None, now)
    state = replace(state, failed_tries=0, locked_until=None, update_time=now)
    await _save(db, state)
    return state

