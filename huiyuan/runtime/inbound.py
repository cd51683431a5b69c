"""What every request is held to before its servicer sees it, whatever its RPC.

- it decodes: truncated bytes or a string field that is not UTF-8 is INVALID_ARGUMENT
  REQUEST_UNDECODABLE, not an exception inside gRPC (UNKNOWN, with a traceback);
- its strings hold no NUL character (PostgreSQL stores none: the insert would fail);
- its Timestamps and Durations lie in their types' documented ranges (Python's
  datetime and timedelta cannot hold the others: the conversion would raise).

The server interceptor (huiyuan/runtime/interceptors.py) wraps every method's request
deserializer with request_decoder(); a request refused here reaches the servicer as a
Refused, which the interceptor raises instead of calling it.

Cheap on the hot path: the NUL walk runs only for the rare request whose bytes hold a
zero byte at all, and the time check only for message types that can hold a Timestamp
or a Duration (found once per type), along the fields that can.
"""

from datetime import date, timedelta
from functools import cache

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.runtime.convert import FIRST_DAY, LAST_DAY
from huiyuan.runtime.errors import DomainError, InvalidArgument, Violations


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
NANOS = range(0, 1_000_000_000)


class Refused:
    """What the decoder gives for a request it refuses: the error to answer with."""

    __slots__ = ("error",)

    def __init__(self, error: DomainError):
        self.error = error


def undecodable() -> DomainError:
    """Bytes that are no message of the request's type: no field to name."""
    error = DomainError("REQUEST_UNDECODABLE", "The request cannot be read: its bytes are cut short, or a text in it "
                        "is not UTF-8.", "请求无法读取：数据不完整，或其中的文字编码无效。")
    error.code = grpc.StatusCode.INVALID_ARGUMENT
    return error


def request_decoder(parse, descriptor: Descriptor | None):
    """parse (a message type's FromString), returning Refused for a request refused
    above instead of raising; descriptor: the message type's, None if not known."""
    times = _time_fields(descriptor) if descriptor is not None else ()

    def decode(raw: bytes):
        try:
            request = parse(raw)
        except DecodeError:
            return Refused(undecodable())
        if descriptor is None:
            return request
        v = Violations()
        if b"\x00" in raw:  # a NUL in a string is a zero byte in its encoding
            _check_no_nul(v, request, "")
        if times:
            _check_times(v, request, times, "")
        return Refused(InvalidArgument(v.items)) if v else request

    return decode


def _check_no_nul(v: Violations, message, path: str) -> None:
    for field, value in message.ListFields():
        name = path + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            for at, text in _indexed(field, value, name):
                if "\x00" in text:
                    v.add(at, "NUL_CHARACTER", f"{at} must not contain NUL characters")
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_map(field):
                key, held = field.message_type.fields
                for k, item in value.items():
                    at = f"{name}[{k!r}]"
                    if key.type == FieldDescriptor.TYPE_STRING and "\x00" in k:
                        v.add(name, "NUL_CHARACTER", f"the keys of {name} must not contain NUL characters")
                    if held.type == FieldDescriptor.TYPE_STRING and "\x00" in item:
                        v.add(at, "NUL_CHARACTER", f"{at} must not contain NUL characters")
                    elif held.type == FieldDescriptor.TYPE_MESSAGE:
                        _check_no_nul(v, item, at + ".")
            else:
                for at, item in _indexed(field, value, name):
                    _check_no_nul(v, item, at + ".")


def _check_times(v: Violations, message, fields: tuple[FieldDescriptor, ...], path: str) -> None:
    for field in fields:
        name = path + field.name
        if not field.is_repeated and not message.HasField(field.name):
            continue
        value = getattr(message, field.name)
        items = ((f"{name}[{k!r}]", item) for k, item in value.items()) if _is_map(field) \
            else _indexed(field, value, name)
        kind = _value_type(field).full_name
        for at, item in items:
            if kind == TIMESTAMP:
                v.check(item.seconds in TIMESTAMP_SECONDS and item.nanos in NANOS, at, "TIMESTAMP_OUT_OF_RANGE",
                        f"{at} must lie between {FIRST_DAY} and {LAST_DAY}, its nanos from 0 to 999,999,999")
            elif kind == DURATION:
                same_sign = item.seconds == 0 or item.nanos == 0 or (item.seconds < 0) == (item.nanos < 0)
                v.check(item.seconds in DURATION_SECONDS and -NANOS.stop < item.nanos < NANOS.stop and same_sign,
                        at, "DURATION_OUT_OF_RANGE",
                        f"{at} must lie within 10,000 years, its nanos below a second and of its seconds' sign")
            else:
                _check_times(v, item, _time_fields(_value_type(field)), at + ".")


def _indexed(field: FieldDescriptor, value, name: str):
    """(path, item) of a field's value: itself, or each item of a repeated field."""
    if field.is_repeated:
        return ((f"{name}[{i}]", item) for i, item in enumerate(value))
    return ((name, value),)


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _value_type(field: FieldDescriptor) -> Descriptor:
    """The message type a field holds (a map's: its values')."""
    return field.message_type.fields_by_name["value"].message_type if _is_map(field) else field.message_type


@cache
def _time_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields of a message type that are, or can hold, a Timestamp or a Duration."""
    return tuple(f for f in descriptor.fields
                 if f.type == FieldDescriptor.TYPE_MESSAGE and _value_type(f) is not None
                 and _holds_times(_value_type(f), frozenset()))


def _holds_times(descriptor: Descriptor, seen: frozenset) -> bool:
    if descriptor.full_name in (TIMESTAMP, DURATION):
        return True
    if descriptor.full_name in seen:  # a recursive type (google.protobuf.Struct): no new fields down there
        return False
    seen = seen | {descriptor.full_name}
    return any(f.type == FieldDescriptor.TYPE_MESSAGE and _value_type(f) is not None
               and _holds_times(_value_type(f), seen) for f in descriptor.fields)

