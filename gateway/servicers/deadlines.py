"""The deadline of a call the gateway makes for its caller."""

# What a call passed on may take when its caller set no deadline: the channel's default
# for most (app.py), this for a long one - an export, a company's batch.
LONG_CALL_S = 600


def passed_on_deadline(context, default: float | None = None) -> float | None:
    """The deadline a call made for this caller gets: what is left of the caller's own
    (a remaining 0 s included: it is spent, not absent), else default (None: the
    channel's)."""
    remaining = context.time_remaining()
    return default if remaining is None else remaining
