"""Fault points for crash tests: HUIYUAN_FAULTS=point[,point...] makes a process die at
those points as SIGKILL would (no cleanup, no flush), so a test can check that what it
left behind is finished or compensated after a restart. Unset in production: a no-op.

Points every service has, at each of its RPCs (the server interceptor calls them):
  <service>.<Method>:before   the call arrived; nothing is done yet
  <service>.<Method>:after    the call's work is committed; the answer is not sent
e.g. wallet.Capture:after. The gateway's saga adds checkout-reserved (every hold made,
nothing captured) and checkout-captured (the pivot done, nothing settled); its refunds
add refund-stored-value-returned (the money back, points and discounts not yet). The
wallet's enterprise batch adds wallet.batch-part-applied (a part of the file committed).
"""

import os

_POINTS = frozenset(p.strip() for p in os.environ.get("HUIYUAN_FAULTS", "").split(",") if p.strip())
ARMED = bool(_POINTS)


def crash_point(name: str) -> None:
    if name in _POINTS:
        os._exit(137)
