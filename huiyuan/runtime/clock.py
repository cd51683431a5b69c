"""The clock: now, as stored (UTC) and as the chain's business day. Only use cases,
servicers and the runtime read it; domain rules are given the time (.importlinter)."""

from datetime import UTC, date, datetime

from huiyuan.runtime.business_time import local


def utcnow() -> datetime:
    """Now, aware and in UTC: what is stored."""
    return datetime.now(UTC)


def today() -> date:
    """The chain's business day now (not the server's: containers run in UTC)."""
    return local(utcnow()).date()
