"""What every request is held to before its servicer sees it, whatever its RPC.

- it decodes: truncated bytes or a string field that is not UTF-8 is INVALID_ARGUMENT
  REQUEST_UNDECODABLE, not an exception inside gRPC (UNKNOWN, with a traceback);
- its strings hold no NUL character (PostgreSQL stores none: the insert would fail);
- its Timestamps and Durations lie in their types' documented ranges (Python's
  datetime and timedelta cannot hold the others: the conversion would raise);
- it is no larger than its method takes, where the service says (the gateway: a few
  MB, files more): RESOURCE_EXHAUSTED REQUEST_TOO_LARGE.

The server interceptor (huiyuan/runtime/interceptors.py) wraps every method's request
deserializer with request_decoder(); a request refused here reaches the servicer as a
Refused, which the interceptor raises instead of calling it.

Cheap on the hot path: the NUL walk runs only for the rare request whose bytes hold a
zero byte at all, and the time check only for message types that can hold a Timestamp
or a Duration (found once per type), along the fields that can.
"""

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from functools import cache
from typing import Any, NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.runtime.convert import FIRST_DAY, LAST_DAY
from huiyuan.runtime.errors import Code, DomainError, InvalidArgument, ResourceExhausted, Violation


def _seconds(day: date) -> int:
    """Seconds from the epoch to the start of a day, UTC."""
    return (day - date(1970, 1, 1)).days * 86_400


TIMESTAMP, DURATION = Timestamp.DESCRIPTOR.full_name, Duration.DESCRIPTOR.full_name
# google/protobuf/timestamp.proto allows 0001-01-01 to 9999-12-31; we take a year less
# at either end, as for dates (huiyuan/runtime/convert.py): a time's local day and the
# arithmetic on it stay inside what Python's datetime holds.
TIMESTAMP_SECONDS = range(_seconds(FIRST_DAY), _seconds(LAST_DAY + timedelta(days=1)))
# google/protobuf/duration.proto: about +-10,000 years.
DURATION_SECONDS = range(-315_576_000_000, 315_576_000_001)
NANOS = range(1_000_000_000)


class Refused:
    """What the decoder gives for a request it refuses: the error to answer with."""

    __slots__ = ("error",)

    def __init__(self, error: DomainError):
        self.error = error


def undecodable() -> DomainError:
    """Bytes that are no message of the request's type: no field to name."""
    error = DomainError(
        "REQUEST_UNDECODABLE",
        "The request cannot be read: its bytes are cut short, or a text in it is not UTF-8.",
        "请求无法读取：数据不完整，或其中的文字编码无效。",
    )
    error.code = Code.INVALID_ARGUMENT
    return error


def too_large(max_bytes: int) -> DomainError:
    """A request larger than its method takes: the same request never fits (no RetryInfo)."""
    return ResourceExhausted(
        "REQUEST_TOO_LARGE",
        f"The request is larger than this call takes ({max_bytes:,} bytes).",
        f"请求过大，此操作最多接受 {max_bytes // 2**20} MB。",
        max_bytes=max_bytes,
    )


def request_decoder(
    parse: Callable[[bytes], Message], descriptor: Descriptor | None, max_bytes: int | None = None
) -> Callable[[bytes], Message | Refused]:
    """parse (a message type's FromString), returning Refused for a request refused
    above instead of raising; descriptor: the message type's, None if not known;
    max_bytes: the largest request the method takes (None: what the server reads)."""
    times = _time_fields(descriptor) if descriptor is not None else ()

    def decode(raw: bytes) -> Message | Refused:
        if max_bytes is not None and len(raw) > max_bytes:
            return Refused(too_large(max_bytes))
        try:
            request = parse(raw)
        except DecodeError:
            return Refused(undecodable())
        if descriptor is None:
            return request
        bad: list[Violation] = []
        if b"\x00" in raw:  # a NUL in a string is a zero byte in its encoding
            _check_no_nul(bad, request, "")
        if times:
            _check_times(bad, request, times, "")
        return Refused(InvalidArgument(bad)) if bad else request

    return decode


def _check_no_nul(bad: list[Violation], message: Message, path: str) -> None:
    for field, value in message.ListFields():
        name = path + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            for at, text in _indexed(field, value, name):
                if "\x00" in text:
                    bad.append(_nul(at))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type is not None and _is_map(field):
                key, held = field.message_type.fields
                for k, item in value.items():
                    at = f"{name}[{k!r}]"
                    if key.type == FieldDescriptor.TYPE_STRING and "\x00" in k:
                        bad.append(_nul(f"{name} (a key)"))
                    if held.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                        bad.append(_nul(at))
                    elif held.type == FieldDescriptor.TYPE_MESSAGE:
                        _check_no_nul(bad, item, at + ".")
            else:
                for at, item in _indexed(field, value, name):
                    _check_no_nul(bad, item, at + ".")


def _nul(at: str) -> Violation:
    return Violation(at, "NUL_CHARACTER", f"{at} must not contain NUL characters")


def _indexed(field: FieldDescriptor, value: Any, name: str) -> Iterable[tuple[str, Any]]:
    """(path, item) of a field's value: itself, or each item of a repeated field."""
    if field.is_repeated:
        return ((f"{name}[{i}]", item) for i, item in enumerate(value))
    return ((name, value),)


class _TimeField(NamedTuple):
    """A field that is, or can hold, a Timestamp or a Duration: what checking it needs,
    read from its descriptor once."""

    name: str
    repeated: bool
    is_map: bool
    kind: str  # TIMESTAMP, DURATION, or "" for a message holding them
    holds: Descriptor  # the message type of its values


def _check_times(bad: list[Violation], message: Message, fields: tuple[_TimeField, ...], path: str) -> None:
    for f in fields:
        items: Iterable[tuple[str, Any]]
        if f.is_map:
            items = ((f"[{k!r}]", item) for k, item in getattr(message, f.name).items())
        elif f.repeated:
            items = ((f"[{i}]", item) for i, item in enumerate(getattr(message, f.name)))
        elif message.HasField(f.name):
            items = (("", getattr(message, f.name)),)
        else:
            continue
        for index, item in items:
            if f.kind == TIMESTAMP:
                if not (item.seconds in TIMESTAMP_SECONDS and item.nanos in NANOS):
                    at = path + f.name + index
                    bad.append(
                        Violation(
                            at,
                            "TIMESTAMP_OUT_OF_RANGE",
                            f"{at} must lie between {FIRST_DAY} and {LAST_DAY}, its nanos from 0 to 999,999,999",
                        )
                    )
            elif f.kind == DURATION:
                same_sign = item.seconds == 0 or item.nanos == 0 or (item.seconds < 0) == (item.nanos < 0)
                if not (item.seconds in DURATION_SECONDS and -NANOS.stop < item.nanos < NANOS.stop and same_sign):
                    at = path + f.name + index
                    bad.append(
                        Violation(
                            at,
                            "DURATION_OUT_OF_RANGE",
                            f"{at} must lie within 10,000 years, its nanos below a second and of its seconds' sign",
                        )
                    )
            else:
                _check_times(bad, item, _time_fields(f.holds), f"{path}{f.name}{index}.")


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _value_type(field: FieldDescriptor) -> Descriptor | None:
    """The message type a field holds (a map's: its values'); None for a scalar's."""
    if field.message_type is not None and _is_map(field):
        return field.message_type.fields_by_name["value"].message_type
    return field.message_type


@cache
def _time_fields(descriptor: Descriptor) -> tuple[_TimeField, ...]:
    """The fields of a message type that are, or can hold, a Timestamp or a Duration."""
    return tuple(
        _TimeField(f.name, f.is_repeated, _is_map(f), kind if kind in (TIMESTAMP, DURATION) else "", held)
        for f in descriptor.fields
        if f.type == FieldDescriptor.TYPE_MESSAGE
        and (held := _value_type(f)) is not None
        and _holds_times(held, frozenset())
        for kind in [held.full_name]
    )


def _holds_times(descriptor: Descriptor, seen: frozenset[str]) -> bool:
    if descriptor.full_name in (TIMESTAMP, DURATION):
        return True
    if descriptor.full_name in seen:  # a recursive type (google.protobuf.Struct): no new fields down there
        return False
    seen = seen | {descriptor.full_name}
    return any(
        f.type == FieldDescriptor.TYPE_MESSAGE and (held := _value_type(f)) is not None and _holds_times(held, seen)
        for f in descriptor.fields
    )
