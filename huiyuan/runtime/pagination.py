"""Page sizes and page tokens (AIP-158).

A token is opaque to clients: base64 of the keyset position after the last item and a
fingerprint of the filter, so a token used with another filter is refused.
"""

import base64
import hashlib
import json

from huiyuan.runtime.errors import Violations


def fingerprint(*filter_parts) -> str:
    return hashlib.sha256(json.dumps(filter_parts, default=str).encode()).hexdigest()[:16]


def encode(position: list, filter_fingerprint: str) -> str:
    raw = json.dumps({"p": position, "f": filter_fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, filter_fingerprint: str, violations: Violations, field: str = "page_token") -> list | None:
    """The keyset position, or None for the first page. Bad tokens become violations."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position, seen = data["p"], data["f"]
        if not isinstance(position, list):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        violations.add(field, "PAGE_TOKEN_INVALID", "page_token is not one this API issued")
        return None
    if seen != filter_fingerprint:
        violations.add(field, "PAGE_TOKEN_MISMATCH", "page_token was issued for a different filter")
        return None
    return position


def page_size(requested: int, default: int, maximum: int, violations: Violations, field: str = "page_size") -> int:
    violations.check(requested >= 0, field, "PAGE_SIZE_NEGATIVE", "page_size must not be negative")
    if requested <= 0:
        return default
    return min(requested, maximum)


def next_page(items: list, size: int, position, filter_fingerprint: str) -> tuple[list, str]:
    """Split the size + 1 items a list query fetched into this page and the token of the
    next one ("" on the last page). position(item) is the keyset position of an item."""
    if len(items) <= size:
        return items, ""
    return items[:size], encode(position(items[size - 1]), filter_fingerprint)
