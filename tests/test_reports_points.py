"""The points service's rollups (services/points/domain/reports.py): recorded with
every movement and every change of a lot through the real RPCs, folded, read through
RollupService.QueryRollups, checked against hand-computed figures and against sums over
the raw tables, and rebuilt from the raw records to the same counters; on SQLite and
PostgreSQL."""

from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from huiyuan.common.v1 import actor_pb2
from huiyuan.database.engines import make_sync_engine
from huiyuan.database.rollups import Query
from huiyuan.points.v1 import points_pb2 as pb, points_pb2_grpc
from huiyuan.runtime.business_time import day_start, local
from huiyuan.runtime.ids import new_id
from services.points.domain.reports import NEVER, expiry_day
from services.points.servicers import points as points_servicer
from services.points.storage.rollups import ROLLUPS
from services.points.storage.tables import lots, member_points, movements
from services.points.use_cases.reports import rebuild
from tests.invariants import assert_points_held
from tests.rollup_support import Clock, assert_rebuild_equals_incremental, by_key, fold, query, total
from tests.support import rid

D = date(2027, 3, 10)  # ahead of the real clock: the sweeper lapses no hold of these tests
NOON = datetime(2027, 3, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai
FAR = date(2030, 1, 1)  # as of a day after every movement of these tests


@pytest.fixture(scope="module")
def points(points_service):
    stub = points_pb2_grpc.PointsServiceStub(points_service.channel)
    # 1 point a yuan, spendable the day after, usable through the business day after that
    stub.CreateRule(
        pb.CreateRuleRequest(
            request_id="rule-10",
            rule=pb.Rule(
                name="消费1元积1分",
                org_path="hq",
                priority=10,
                points_per_yuan_bp=10_000,
                pending_days=1,
                expiry_policy=pb.EXPIRY_POLICY_DAYS,
                expiry_param=1,
            ),
        )
    )
    return stub


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, points_servicer).at(NOON)


def region() -> str:
    return f"hq/r{new_id('x')[-8:].lower()}"


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def grant(points, member, n, store):
    points.Grant(
        pb.GrantRequest(request_id=rid(), member_id=member, points=n, source=pb.LOT_SOURCE_CAMPAIGN, store_path=store)
    )


def accrue(points, member, yuan, store, clock):
    order_id = f"o-{rid()[:8]}"
    points.Accrue(
        pb.AccrueRequest(
            request_id=rid(),
            member_id=member,
            order_id=order_id,
            store_path=store,
            paid_time=ts(clock.now),
            lines=[pb.OrderLine(line_id="1", paid_fen=yuan * 100)],
        )
    )
    return order_id


def hold(points, member, n, store):
    return points.Hold(
        pb.HoldRequest(request_id=rid(), member_id=member, points=n, ttl=Duration(seconds=600), store_path=store)
    ).hold.hold_id


def capture(points, hold_id, n):
    points.Capture(pb.CaptureRequest(request_id=rid(), hold_id=hold_id, points=n))


def release(points, hold_id):
    points.Release(pb.ReleaseRequest(request_id=rid(), hold_id=hold_id))


def adjust(points, member, delta, office):
    points.Adjust(
        pb.AdjustRequest(
            request_id=rid(),
            member_id=member,
            delta_points=delta,
            reason="x",
            actor=actor_pb2.Actor(operator_id="ops", org_path=office),
        )
    )


def reverse(points, member, order_id, refunded_fen):
    return points.Reverse(
        pb.ReverseRequest(request_id=rid(), member_id=member, order_id=order_id, refunded_paid_fen=refunded_fen)
    )


def run_expiry(points):
    return points.RunExpiry(pb.RunExpiryRequest(request_id=rid()))


def expiring(service, node, last, first) -> int:
    """points_expiring over first..last at node. Through QueryRollups where it can name
    the days: a request's days end at 9998-12-31 (huiyuan/runtime/convert.py), so the
    day of the lots that never expire, 9999-12-31, is read from the rollup directly."""
    if last <= date(9998, 12, 31):
        return total(query(service, "points_expiring", node, last, first), "points")
    q = Query("points_expiring", node, first, last)

    async def read():
        async with service.app.context.database.reading() as tx:
            return await ROLLUPS.query(tx, q)

    return sum(row.measures["points"] for row in service.run(read()))


# ---------------------------------------------------------------- sums over the raw tables


def raw(url):
    engine = make_sync_engine(url, "points")
    with engine.connect() as db:
        lot_rows = db.execute(select(lots)).all()
        held, debt = db.execute(
            select(func.sum(member_points.c.held_points), func.sum(member_points.c.debt_points))
        ).one()
        moved = db.execute(select(movements.c.kind, movements.c.delta_points, movements.c.create_time)).all()
    engine.dispose()
    return lot_rows, int(held or 0), int(debt or 0), moved


def assert_rollups_agree_with_the_tables(service, first, last):
    """At hq: the points members hold (as of FAR: what is left in the lots, plus what
    holds keep, less the debt), the pending points as of each day, the movements of
    first..last by kind, and what the lots will lose if unspent, from each day on and
    within 30 days; and by store, what is left in the lots it granted."""
    fold(service, ROLLUPS)
    lot_rows, held, debt, moved = raw(service.settings.database_url)
    as_of = query(service, "points", "hq", FAR)
    assert total(as_of, "points") == sum(lot.points_left for lot in lot_rows) + held - debt
    assert sum(m.delta_points for m in moved) == total(as_of, "points")
    day = first
    while day <= last + timedelta(days=2):

        def pending_on(lot) -> bool:
            ends = lot.available_time if lot.expire_time is None else min(lot.available_time, lot.expire_time)
            return local(lot.create_time).date() <= day < local(ends).date()

        rows = query(service, "points", "hq", day)
        assert total(rows, "pending_points") == sum(lot.granted_points for lot in lot_rows if pending_on(lot)), day
        for span in (timedelta(days=30), NEVER - day):
            assert expiring(service, "hq", day + span, day) == sum(
                lot.points_left for lot in lot_rows if day <= expiry_day(lot.expire_time) <= day + span
            ), (day, span)
        day += timedelta(days=1)
    kinds: dict[str, int] = {}
    for kind, delta, at in moved:
        if day_start(first) <= at < day_start(last + timedelta(days=1)):
            kinds[kind] = kinds.get(kind, 0) + delta
    rows = by_key(query(service, "points", "hq", last, first, by_key=True))
    assert {k: m.get("points", 0) for k, m in rows.items() if m.get("points")} == {k: v for k, v in kinds.items() if v}
    by_store: dict[str, int] = {}
    for lot in lot_rows:
        by_store[lot.store_path] = by_store.get(lot.store_path, 0) + lot.points_left
    for store, left in by_store.items():
        if store.count("/") == 2:
            assert expiring(service, store, NEVER, date(2000, 1, 1)) == left, store


# ---------------------------------------------------------------- live


def test_points_by_store_and_kind_pending_and_expiring(points, points_service, clock):
    r = region()
    s1, s2 = f"{r}/s-001", f"{r}/s-002"
    member = new_id("m")
    clock.at(NOON)
    grant(points, member, 100, s1)  # spendable at once, usable through 2028-12-31
    accrue(points, member, 50, s2, clock)  # 50 pending until noon on the 11th, usable through the 11th
    hold_id = hold(points, member, 30, s2)
    capture(points, hold_id, 20)  # from the granted lot: the accrued one is pending
    release(points, hold(points, member, 7, s2))
    adjust(points, member, -5, r)  # at the region's office
    fold(points_service, ROLLUPS)
    nxt = D + timedelta(days=1)

    def measure(node, day, name="points"):
        return total(query(points_service, "points", node, day), name)

    assert (measure(r, D), measure(r, D, "pending_points")) == (125, 50)
    assert (measure(r, nxt), measure(r, nxt, "pending_points")) == (125, 0)
    assert (measure(s1, D), measure(s2, D), measure(s2, D, "pending_points")) == (100, 30, 50)
    assert measure(r, D - timedelta(days=1)) == 0
    assert {k: m["points"] for k, m in by_key(query(points_service, "points", r, D, D, by_key=True)).items()} == {
        "GRANT": 150,
        "SPEND": -20,
        "ADJUSTMENT": -5,
    }
    assert expiring(points_service, r, D + timedelta(days=30), D) == 50
    assert expiring(points_service, r, NEVER, D) == 125
    assert expiring(points_service, s1, date(2028, 12, 31), date(2028, 12, 31)) == 75

    # the 12th has begun in Shanghai: the accrued lot, unspent, expires
    clock.at(datetime(2027, 3, 11, 16, 0, 0, tzinfo=UTC))
    assert run_expiry(points).expired_points >= 50
    fold(points_service, ROLLUPS)
    later = D + timedelta(days=2)
    assert measure(r, later) == 75 and measure(s2, later) == -20
    assert {
        k: m["points"] for k, m in by_key(query(points_service, "points", r, later, later, by_key=True)).items()
    } == {"EXPIRE": -50}
    assert expiring(points_service, r, NEVER, later) == 75
    assert expiring(points_service, r, nxt, nxt) == 0
    assert_points_held(points_service.settings.database_url)
    assert_rollups_agree_with_the_tables(points_service, D, later)
    assert_rebuild_equals_incremental(points_service, "points", ROLLUPS, rebuild)


# ---------------------------------------------------------------- random histories

MOMENTS = [
    datetime(2027, 4, 1, 15, 59, 59, tzinfo=UTC),
    datetime(2027, 4, 1, 16, 0, 0, tzinfo=UTC),
    datetime(2027, 4, 2, 15, 59, 59, tzinfo=UTC),
    datetime(2027, 4, 2, 16, 0, 0, tzinfo=UTC),
    datetime(2027, 4, 3, 16, 0, 0, tzinfo=UTC),
]
STORES = ["hq/east/p-001", "hq/west/p-002"]
OPERATION = st.tuples(
    st.sampled_from(["grant", "accrue", "spend", "release", "adjust", "reverse", "expire"]),
    st.integers(0, len(MOMENTS) - 1),
    st.integers(1, 200),
    st.integers(0, 1),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATION, min_size=1, max_size=12))
def test_random_histories_around_midnight_agree_with_the_tables_and_the_rebuild(
    points, points_service, clock, operations
):
    member = new_id("m")
    orders = []
    for name, moment, n, which in sorted(operations, key=lambda o: o[1]):
        clock.at(MOMENTS[moment])
        store = STORES[which]
        try:
            if name == "grant":
                grant(points, member, n, store)
            elif name == "accrue":
                orders.append((accrue(points, member, n, store, clock), n))
            elif name == "spend":
                capture(points, hold(points, member, n // 4 + 2, store), n // 4 + 1)
            elif name == "release":
                release(points, hold(points, member, n // 4 + 1, store))
            elif name == "adjust":
                adjust(points, member, n // 3 + 1 if which else -(n // 3 + 1), "hq")
            elif name == "reverse" and orders:
                order_id, yuan = orders.pop(0)
                reverse(points, member, order_id, yuan * 100 // 2 + 1)
            elif name == "expire":
                run_expiry(points)
        except grpc.RpcError as refused:  # not enough points: nothing moved
            assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, refused
    assert_points_held(points_service.settings.database_url)
    assert_rollups_agree_with_the_tables(points_service, date(2027, 4, 1), date(2027, 4, 4))
    assert_rebuild_equals_incremental(points_service, "points", ROLLUPS, rebuild)


# ---------------------------------------------------------------- the domain functions


def test_a_lots_expiry_day_is_its_last_business_day_and_pending_ends_when_it_is_spendable_or_expires():
    from services.points.domain.reports import lot_change_contributions, movement_contributions, new_lot_contributions

    midnight = datetime(2027, 4, 2, 16, 0, 0, tzinfo=UTC)  # 00:00 on the 3rd in Shanghai
    assert expiry_day(midnight) == date(2027, 4, 2) and expiry_day(None) == NEVER == date(9998, 12, 31)
    assert expiry_day(midnight + timedelta(seconds=1)) == date(2027, 4, 3)
    before = midnight - timedelta(seconds=1)
    (moved,) = movement_contributions("SPEND", -5, "", before)
    assert (moved.path, moved.day, moved.key, dict(moved.measures)) == ("hq", date(2027, 4, 2), "SPEND", {"points": -5})
    assert movement_contributions("GRANT", 0, "hq/e/s", before) == []
    made = new_lot_contributions("hq/e/s", 40, before, before + timedelta(days=1), midnight + timedelta(days=5))
    assert [(c.rollup, c.day, dict(c.measures)) for c in made] == [
        ("points_expiring", date(2027, 4, 7), {"points": 40}),
        ("points", date(2027, 4, 2), {"pending_points": 40}),
        ("points", date(2027, 4, 3), {"pending_points": -40}),
    ]
    # expiring before it is spendable: pending until its date only
    early = new_lot_contributions("hq/e/s", 40, before, before + timedelta(days=9), midnight + timedelta(days=1))
    assert [c.day for c in early if c.rollup == "points"] == [date(2027, 4, 2), date(2027, 4, 4)]
    # spendable at once: nothing pending
    assert len(new_lot_contributions("hq/e/s", 40, before, before, None)) == 1
    (left,) = lot_change_contributions("hq/e/s", None, -3)
    assert (left.rollup, left.day, dict(left.measures)) == ("points_expiring", NEVER, {"points": -3})
