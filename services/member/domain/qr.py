"""The members' QR codes: a signed token naming the member, good for a short while."""

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from huiyuan.runtime.errors import FailedPrecondition, Unauthenticated

QR_TTL_DEFAULT = timedelta(seconds=60)
QR_TTL_MIN = timedelta(seconds=10)
QR_LIFETIME_DEFAULT = timedelta(minutes=5)  # the longest a QR code is issued for (HUIYUAN_QR_LIFETIME_S)
QR_CLOCK_LEEWAY = timedelta(seconds=30)  # the clocks of two replicas may differ by this much


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_qr_token(member_id: str, expire_time: datetime, secret: str) -> str:
    """'<member_id>.<expiry unix s>.<signature>': short enough for a dense QR code, and
    useless once expired or altered."""
    payload = f"{member_id}.{int(expire_time.timestamp())}"
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16]
    return f"{payload}.{_b64(signature)}"


def verify_qr_token(token: str, secret: str, now: datetime, longest: timedelta = QR_LIFETIME_DEFAULT) -> str:
    """The member id a token names; refuses altered and expired tokens, and those that
    claim to be good for longer than a QR code is issued for (longest): no token this
    service made does, so its secret has leaked or was a development one."""
    invalid = Unauthenticated("QR_TOKEN_INVALID", "The QR code is not valid.", "二维码无效。")
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise invalid
    payload = f"{parts[0]}.{parts[1]}"
    expected = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()[:16])
    if not hmac.compare_digest(expected, parts[2]):
        raise invalid
    if int(parts[1]) <= now.timestamp():
        raise FailedPrecondition("QR_TOKEN_EXPIRED", "The QR code has expired; refresh it.", "二维码已过期,请刷新。")
    if int(parts[1]) > (now + longest + QR_CLOCK_LEEWAY).timestamp():
        raise Unauthenticated(
            "QR_TOKEN_LIFETIME_EXCEEDED",
            f"The QR code claims to be good for longer than a QR code is issued for "
            f"({int(longest.total_seconds())} s): it was not made by this chain.",
            "二维码有效期超出规定，不予受理。",
        )
    return parts[0]
