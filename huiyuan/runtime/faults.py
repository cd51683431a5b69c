"""Fault points for crash tests: HUIYUAN_FAULTS=point[,point...] makes a process die at
those points as SIGKILL would (no cleanup, no flush), so a test can check that what it
left behind is finished or compensated after a restart. Unset in production: a no-op."""

import os

_POINTS = {p.strip() for p in os.environ.get("HUIYUAN_FAULTS", "").split(",") if p.strip()}


def crash_point(name: str) -> None:
    if name in _POINTS:
        os._exit(137)
