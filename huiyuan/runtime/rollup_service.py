"""What every service runs for the reports (docs/reports.md): RollupService, which
answers the gateway's rollup queries over the service's own rollups, and the background
loop that folds the service's outbox into them (huiyuan/database/rollups.py)."""

import asyncio
import logging
from typing import Any

from huiyuan.common.v1 import rollup_pb2 as pb, rollup_pb2_grpc
from huiyuan.database.rollups import Query, Rollups
from huiyuan.runtime.convert import calendar_date, calendar_day
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.periods import DAY, MAX_DAYS, MONTH
from huiyuan.runtime.requests import check_org_path

# A fact shows in the reports within about this, plus a fold's time (the issue asks 10 s).
# Longer folds add up more facts into the same counters (the chain's, a region's, a
# store's day): fewer rows written per fact on the checkout's machines.
FOLD_INTERVAL_S = 3.0
MAX_QUERIES = 64
MAX_KEYS = 1000
BUCKETS = {pb.ROLLUP_BUCKET_UNSPECIFIED: "", pb.ROLLUP_BUCKET_DAY: DAY, pb.ROLLUP_BUCKET_MONTH: MONTH}

log = logging.getLogger("huiyuan.rollups")


class RollupServicer(rollup_pb2_grpc.RollupServiceServicer):
    """Checks the queries, reads the rollups on one connection, translates."""

    def __init__(self, ctx: Any, rollups: Rollups):
        self.database = ctx.database
        self.rollups = rollups

    async def QueryRollups(self, request: pb.QueryRollupsRequest, context: Any) -> pb.QueryRollupsResponse:
        queries = [self._query(request, i, q) for i, q in enumerate(request.queries)]
        async with self.database.snapshot() as tx:  # a balance as of two days adds up with what moved between
            results = [await self.rollups.query(tx, q) for q in queries]
        return pb.QueryRollupsResponse(
            results=[
                pb.RollupResult(
                    rows=[
                        pb.RollupRow(
                            org_path=r.path, day=calendar_day(r.day) if r.day else None, key=r.key, measures=r.measures
                        )
                        for r in rows
                    ]
                )
                for rows in results
            ]
        )

    def _query(self, request: pb.QueryRollupsRequest, i: int, q: pb.RollupQuery) -> Query:
        v = Violations()
        v.check(0 < len(request.queries) <= MAX_QUERIES, "queries", "QUERIES_COUNT", f"1 to {MAX_QUERIES} queries.")
        at = f"queries[{i}]"
        known = q.rollup in self.rollups.by_name
        v.check(known, f"{at}.rollup", "ROLLUP_UNKNOWN", "No such rollup here.")
        check_org_path(v, q.org_path, f"{at}.org_path")
        last = calendar_date(q.last_day)
        first = calendar_date(q.first_day) if q.HasField("first_day") else None
        v.check(last is not None, f"{at}.last_day", "DAY_INVALID", "A real day is required.")
        v.check(not q.HasField("first_day") or first is not None, f"{at}.first_day", "DAY_INVALID", "Not a real day.")
        if first is not None and last is not None:
            v.check(first <= last, f"{at}.first_day", "DAYS_OUT_OF_ORDER", "first_day is after last_day.")
            bucketed = q.grouping.bucket != pb.ROLLUP_BUCKET_UNSPECIFIED or q.count_distinct_keys
            v.check(
                not bucketed or (last - first).days < MAX_DAYS,
                f"{at}.first_day",
                "PERIOD_TOO_LONG",
                f"At most {MAX_DAYS} days by day, by month or counted by key.",
            )
        if first is None and known:
            v.check(
                self.rollups.by_name[q.rollup].running,
                f"{at}.first_day",
                "FIRST_DAY_REQUIRED",
                "This rollup keeps no running total: name the first day.",
            )
            v.check(
                q.grouping.bucket == pb.ROLLUP_BUCKET_UNSPECIFIED and not q.count_distinct_keys,
                f"{at}.grouping",
                "GROUPING_NOT_SUPPORTED",
                "A balance as of a day is not bucketed nor counted by key.",
            )
        v.check(q.grouping.bucket in BUCKETS, f"{at}.grouping.bucket", "BUCKET_UNKNOWN", "Not a bucket.")
        v.check(len(q.keys) <= MAX_KEYS, f"{at}.keys", "TOO_MANY_KEYS", f"At most {MAX_KEYS} keys.")
        if q.counted_measure and known:
            v.check(
                q.count_distinct_keys and q.counted_measure in self.rollups.by_name[q.rollup].measures,
                f"{at}.counted_measure",
                "MEASURE_UNKNOWN",
                "A measure of the rollup, with count_distinct_keys.",
            )
        v.raise_if_any()
        assert last is not None
        return Query(
            rollup=q.rollup,
            node=q.org_path,
            first=first,
            last=last,
            by_child=q.grouping.by_child,
            bucket=BUCKETS[q.grouping.bucket],
            by_key=q.grouping.by_key,
            keys=tuple(q.keys),
            distinct_keys=q.count_distinct_keys,
            counted=q.counted_measure,
        )


def folder(rollups: Rollups) -> Any:
    """A background loop (ServiceSpec.background) folding the outbox into the rollups:
    batch after batch while there is a backlog, then every FOLD_INTERVAL_S."""

    async def loop(ctx: Any) -> None:
        while True:
            try:
                while await rollups.fold(ctx.database) > 0:
                    pass
            except Exception:  # retried at the next tick (logged, so no BLE001)
                log.exception("folding the rollups' outbox failed")
            await asyncio.sleep(FOLD_INTERVAL_S)

    return loop
