"""Page sizes and page tokens (AIP-158).

A token is opaque to clients: base64 of the keyset position after the last item and a
fingerprint of the RPC and its filter, so a token used with another filter, or with
another list whose filter looks alike, is refused. Its position must have the shape the
RPC writes (the types of its items, in order): a token made up by hand never carries a
text where a query compares a number, nor anything unbounded, to the database.
"""

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from huiyuan.runtime.convert import FIRST_DAY, LAST_DAY
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.serving import serving_rpc

MAX_TOKEN = 1024  # characters: the tokens we issue hold a few ids
MAX_TEXT = 200  # characters of a text in a position (ids, org paths, times)
INT64 = range(-(2**63), 2**63)
Item = TypeVar("Item")
# A time in a position is whole microseconds since 1970 in UTC, within the days a request
# may name: exact, and never a datetime Python cannot make.
_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
_TIMES = range(
    (datetime.combine(FIRST_DAY, time(), UTC) - _EPOCH) // _MICROSECOND,
    (datetime.combine(LAST_DAY, time.max, UTC) - _EPOCH) // _MICROSECOND + 1,
)


def fingerprint(*filter_parts: object) -> str:
    """The fingerprint of the list being served, with this filter."""
    return hashlib.sha256(json.dumps([serving_rpc.get(), *filter_parts], default=str).encode()).hexdigest()[:16]


def _microseconds(value: datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def encode(position: list[Any], filter_fingerprint: str) -> str:
    raw = json.dumps({"p": position, "f": filter_fingerprint}, separators=(",", ":"), default=_microseconds)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(
    token: str,
    filter_fingerprint: str,
    violations: Violations,
    field: str = "page_token",
    shape: tuple[type, ...] = (str,),
) -> list[Any] | None:
    """The keyset position, or None for the first page. Bad tokens become violations.
    shape: the types of the position's items, as the RPC's next_page writes them (a
    datetime: an aware one in UTC)."""
    if not token:
        return None
    try:
        if len(token) > MAX_TOKEN:
            raise ValueError
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        position, seen = data["p"], data["f"]
    except (ValueError, KeyError, TypeError):
        violations.add(field, "PAGE_TOKEN_INVALID", "page_token is not one this API issued")
        return None
    if seen != filter_fingerprint:
        violations.add(field, "PAGE_TOKEN_MISMATCH", "page_token was issued for another list or filter")
        return None
    if not _has_shape(position, shape):
        violations.add(field, "PAGE_TOKEN_INVALID", "page_token is not one this API issued")
        return None
    return [_EPOCH + item * _MICROSECOND if kind is datetime else item for item, kind in zip(position, shape)]


def _has_shape(position: object, shape: tuple[type, ...]) -> bool:
    return (
        isinstance(position, list)
        and len(position) == len(shape)
        and all(_is_item(item, kind) for item, kind in zip(position, shape))
    )


def _is_item(item: Any, kind: type) -> bool:  # Any: an item of decoded JSON
    if kind is datetime:
        return type(item) is int and item in _TIMES
    of_kind = type(item) is kind
    return of_kind and (item in INT64 if kind is int else len(item) <= MAX_TEXT and "\x00" not in item)


def page_size(requested: int, default: int, maximum: int, violations: Violations, field: str = "page_size") -> int:
    violations.check(requested >= 0, field, "PAGE_SIZE_NEGATIVE", "page_size must not be negative")
    if requested <= 0:
        return default
    return min(requested, maximum)


def next_page(
    items: list[Item], size: int, position: Callable[[Item], list[Any]], filter_fingerprint: str
) -> tuple[list[Item], str]:
    """Split the size + 1 items a list query fetched into this page and the token of the
    next one ("" on the last page). position(item) is the keyset position of an item."""
    if len(items) <= size:
        return items, ""
    return items[:size], encode(position(items[size - 1]), filter_fingerprint)


def page_in_memory(
    items: list[Item],
    size: int,
    after: list[Any] | None,
    key: Callable[[Item], tuple[Any, ...]],
    filter_fingerprint: str,
    reverse: bool = False,
) -> tuple[list[Item], str]:
    """The page after the position `after` of a list read whole and filtered in Python
    (a configuration list, which is small), and the next page's token. key(item) is the
    item's position, a tuple unique in the list whose order is the list's (descending
    with reverse): the same keyset a query pages by, so a token stays good as items come
    and go."""
    ordered = sorted(items, key=key, reverse=reverse)
    if after is not None:
        past = tuple(after)
        ordered = [item for item in ordered if (key(item) < past if reverse else key(item) > past)]
    return next_page(ordered[: size + 1], size, lambda item: list(key(item)), filter_fingerprint)
