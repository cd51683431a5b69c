"""Ids: a prefix and 26 characters of Crockford base32 holding the time in ms and 80
random bits (ULID layout), so ids sort by creation time and keyset pages are cheap."""

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return f"{prefix}_{''.join(reversed(chars))}"


ID = re.compile(r"^[a-z]{1,4}_[0-9A-Z]{26}$")


def is_id(value: str, prefix: str) -> bool:
    """Is value an id that new_id(prefix) could have made?"""
    return bool(ID.match(value)) and value.startswith(prefix + "_")
