"""Secrets in messages: the fields the protos mark `[debug_redact = true]` (an API key
as issued, a payment PIN, a QR token). Nothing keeps them at rest:

- the idempotency table (huiyuan/database/idempotency.py) stores a request's digest and
  its response without them, so a replay of IssueApiKey answers with the key's id and
  no key, and a PIN's digest cannot be searched for in a table of six-digit guesses;
- the gateway stores a checkout's request without them (gateway/storage/orders.py) and writes
  none into its audit trail (gateway/use_cases/audit.py).

Which fields of a message type hold secrets, at any depth, is found once per type: for
the many types that hold none, without_secrets() costs a dictionary lookup.
"""

from functools import cache
from typing import TYPE_CHECKING

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

if TYPE_CHECKING:  # the C implementation's, which a message's DESCRIPTOR may be
    from google._upb._message import Descriptor as UpbDescriptor, FieldDescriptor as UpbFieldDescriptor

# A plan: for each field to clear, (its name, None); for each message field holding a
# secret further down, (its name, its type's plan).
Plan = tuple[tuple[str, "Plan | None"], ...]


def is_secret(field: "FieldDescriptor | UpbFieldDescriptor") -> bool:
    return field.GetOptions().debug_redact


def _message_type(field: "FieldDescriptor | UpbFieldDescriptor") -> "Descriptor | UpbDescriptor":
    """The type of a field of message type (a map's entry too)."""
    assert field.message_type is not None, field.full_name
    return field.message_type


@cache
def plan(descriptor: "Descriptor | UpbDescriptor") -> Plan:
    """The fields of this message type that hold a secret (see Plan)."""
    return _plan(descriptor, frozenset())


def _plan(descriptor: "Descriptor | UpbDescriptor", seen: "frozenset[Descriptor | UpbDescriptor]") -> Plan:
    found: list[tuple[str, Plan | None]] = []
    for field in descriptor.fields:
        if is_secret(field):
            found.append((field.name, None))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type not in seen:
            if _message_type(field).GetOptions().map_entry:
                value = _message_type(field).fields_by_name["value"]
                inner = _plan(value.message_type, seen | {descriptor}) if value.message_type else ()
            else:
                inner = _plan(_message_type(field), seen | {descriptor})
            if inner:
                found.append((field.name, inner))
    return tuple(found)


def clear(message: Message, secrets: Plan) -> None:
    """Clear, in place, the secrets a plan names."""
    for name, inner in secrets:
        if inner is None:
            message.ClearField(name)
            continue
        value = getattr(message, name)
        field = message.DESCRIPTOR.fields_by_name[name]
        if _message_type(field).GetOptions().map_entry:
            for item in value.values():
                clear(item, inner)
        elif field.is_repeated:
            for item in value:
                clear(item, inner)
        elif message.HasField(name):
            clear(value, inner)


def holds(message: Message, secrets: Plan) -> bool:
    """Is any of the secrets a plan names set in this message?"""
    for name, inner in secrets:
        value = getattr(message, name)
        if inner is None:
            if value:
                return True
            continue
        field = message.DESCRIPTOR.fields_by_name[name]
        if _message_type(field).GetOptions().map_entry:
            items = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = [value] if message.HasField(name) else []
        if any(holds(item, inner) for item in items):
            return True
    return False


def without_secrets(message: Message) -> Message:
    """The message itself if it holds no secret (most types cannot: a dictionary lookup,
    and a checkout without a PIN or QR token is not copied); else a copy without them."""
    secrets = plan(message.DESCRIPTOR)
    if not secrets or not holds(message, secrets):
        return message
    copy = type(message)()
    copy.CopyFrom(message)
    clear(copy, secrets)
    return copy
