"""What the rollup tests of the services share: the time the services read, folding
their outbox, reading their rollups through RollupService.QueryRollups, and comparing
them with a rebuild from the raw records."""

from datetime import date

from google.type import date_pb2
from sqlalchemy import select

from huiyuan.common.v1 import rollup_pb2 as rpb, rollup_pb2_grpc
from huiyuan.database.engines import make_sync_engine


class Clock:
    """The time the servicers read (each imports utcnow by name): set, not ticking."""

    def __init__(self, monkeypatch, *modules):
        self.now = None
        for module in modules:
            monkeypatch.setattr(module, "utcnow", lambda: self.now)

    def at(self, moment):
        self.now = moment
        return self


def fold(service, rollups) -> None:
    """Fold the service's outbox until it is empty (the background loop may fold some)."""
    while service.run(rollups.fold(service.app.context.database)) > 0:
        pass


def query(service, rollup, node, last, first=None, *, by_key=False, by_child=False, bucket=None, keys=()):
    """One QueryRollups query through the real RPC: {(org_path, day, key): measures}."""
    stub = rollup_pb2_grpc.RollupServiceStub(service.channel)
    q = rpb.RollupQuery(
        rollup=rollup,
        org_path=node,
        last_day=_day(last),
        grouping=rpb.RollupGrouping(by_key=by_key, by_child=by_child, bucket=bucket or rpb.ROLLUP_BUCKET_UNSPECIFIED),
        keys=list(keys),
    )
    if first is not None:
        q.first_day.CopyFrom(_day(first))
    (result,) = stub.QueryRollups(rpb.QueryRollupsRequest(queries=[q])).results
    return {
        (r.org_path, date(r.day.year, r.day.month, r.day.day) if r.HasField("day") else None, r.key): dict(r.measures)
        for r in result.rows
    }


def by_key(rows) -> dict:
    """{key: measures} of a query's rows for one node (without zero measures)."""
    return {k: {m: v for m, v in ms.items() if v} for (_, _, k), ms in rows.items() if any(ms.values())}


def total(rows, measure) -> int:
    return sum(ms.get(measure, 0) for ms in rows.values())


def _day(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def counters(url, schema, rollups) -> dict:
    """Every rollup's rows, without those whose measures are all zero."""
    engine = make_sync_engine(url, schema)
    out = {}
    with engine.connect() as db:
        for name, rollup in rollups.by_name.items():
            t = rollup.table
            for r in db.execute(select(t)):
                measures = tuple(getattr(r, m) for m in rollup.measures)
                if any(measures):
                    out[(name, r.path, r.parent_path, r.grain, r.day, r.key)] = measures
    engine.dispose()
    return out


def assert_rebuild_equals_incremental(service, schema, rollups, rebuild) -> None:
    """Fold what is left, read the counters; rebuild them from the raw records: the same."""
    fold(service, rollups)
    url = service.settings.database_url
    incremental = counters(url, schema, rollups)
    assert service.run(rebuild(service.app.context.database), timeout=120) > 0
    rebuilt = counters(url, schema, rollups)
    assert rebuilt == incremental, {
        k: (incremental.get(k), rebuilt.get(k)) for k in set(incremental) ^ set(rebuilt)
    } or {k: (incremental[k], rebuilt[k]) for k in incremental if incremental[k] != rebuilt[k]}
