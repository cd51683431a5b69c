"""Payment PINs (支付密码), and what a member presents to pay.

A PIN is kept only as a slow hash: scrypt (hashlib, OpenSSL's), a salt of its own,
N=2^14, r=8, p=1: 16 MiB of memory and about 50 ms of a core a try, so a stolen table
costs a guesser that much per guess and per member, and a graphics card gains little
(scrypt is memory-hard). argon2id would be the first choice of OWASP's list, but it is a
new dependency (argon2-cffi) for no gain that matters at these settings; the parameters
are written into each hash, so they can be raised without making members set their
PIN again. Six digits are a million guesses: what keeps them from being tried is the
lock (5 wrong in a row, then 30 minutes) and the gateway's limit on tries per key.
"""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from huiyuan.runtime.errors import FailedPrecondition, PermissionDenied, Violations

PIN = re.compile(r"^\d{6}$")
MAX_TRIES = 5
LOCK = timedelta(minutes=30)
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SALT_BYTES, HASH_BYTES = 16, 32


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
    tried = hashlib.scrypt(
        pin.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=256 * 2**20
    )
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
        return replace(
            self, failed_tries=failed, locked_until=now + LOCK if failed >= MAX_TRIES else None, update_time=now
        )

    def unlocked(self, now: datetime) -> "PinState":
        return replace(self, failed_tries=0, locked_until=None, update_time=now)

    @property
    def tries_left(self) -> int:
        return max(0, MAX_TRIES - self.failed_tries)


def credential_required() -> PermissionDenied:
    return PermissionDenied(
        "PAYMENT_CREDENTIAL_REQUIRED",
        "Spending the member's balances needs their card, their QR code or their payment PIN.",
        "使用会员的储值、积分或次卡，须出示会员卡、会员二维码或输入支付密码。",
    )


def pin_not_set(member_id: str) -> FailedPrecondition:
    return FailedPrecondition(
        "PIN_NOT_SET",
        "The member has no payment PIN; they set one with their card or QR code.",
        "该会员尚未设置支付密码，请出示会员卡或会员二维码设置。",
        member_id=member_id,
    )


def pin_locked(until: datetime) -> FailedPrecondition:
    return FailedPrecondition(
        "PIN_LOCKED",
        "Too many wrong PINs: the PIN is locked for now; a store manager can unlock it.",
        "支付密码错误次数过多，已暂时锁定，可请店长解锁。",
        unlock_time=until.isoformat(),
    )


def pin_incorrect(tries_left: int) -> PermissionDenied:
    return PermissionDenied(
        "PIN_INCORRECT",
        f"Wrong PIN; {tries_left} more wrong {'try' if tries_left == 1 else 'tries'} lock it.",
        f"支付密码错误，再错 {tries_left} 次将被锁定。",
        tries_left=tries_left,
    )


def not_theirs(card_number: str = "") -> FailedPrecondition:
    what = "card" if card_number else "QR code"
    return FailedPrecondition(
        "CARD_NOT_OF_MEMBER",
        f"The {what} presented is another member's.",
        "出示的卡不是该会员的卡。" if card_number else "出示的二维码不是该会员的。",
        **({"card_number": card_number} if card_number else {}),
    )


def refuse_wrong_try(verified: bool, tries_left: int, locked_until: datetime | None) -> None:
    """A try that was counted (its answer kept) and wrong is refused: PIN_LOCKED if this
    try locked the PIN, else PIN_INCORRECT."""
    if verified:
        return
    if locked_until is not None:
        raise pin_locked(locked_until)
    raise pin_incorrect(tries_left)
