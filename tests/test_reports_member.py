"""The member service's rollups (domain/reports.py, storage/rollups.py) and its snapshot
(SummarizeMembers), on SQLite and PostgreSQL, through the real service: registrations,
visits, returns, tier changes and home store moves, folded and read back through
RollupService.QueryRollups, checked by hand, against sums over the raw tables, and
against a rebuild from the raw records; SummarizeMembers on a small population."""

import itertools
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import date_pb2
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from huiyuan.common.v1 import actor_pb2, rollup_pb2 as rpb, rollup_pb2_grpc
from huiyuan.database import engines
from huiyuan.member.v1 import member_pb2, org_pb2, tier_pb2
from huiyuan.runtime.business_time import local
from services.member.storage import tables
from services.member.storage.rollups import ROLLUPS
from services.member.use_cases import reports
from tests.support import ACTOR, Stubs, ensure_org, new_phone, refusal, rid

EAST, SOUTH = "hq/east/sh-001", "hq/south/gz-001"
STORES = [EAST, SOUTH]
TILLS = {EAST: f"{EAST}/pos-1", SOUTH: f"{SOUTH}/pos-1"}
NORTH = "hq/north/bj-001"  # SummarizeMembers' population, alone under hq/north
INVALID = "INVALID_ARGUMENT"
# The service runs in a thread of this process, and libraries there draw from Python's
# random while hypothesis draws a history: its check of random's state sees them.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")


# ---------------------------------------------------------------- the clock and the service


class Clock:
    """The service's now, set by the test (its servicers and use cases read utcnow)."""

    def __init__(self):
        self.now: datetime | None = None

    def __call__(self) -> datetime:
        return self.now or datetime.now(UTC)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    for module in (
        "services.member.servicers.member",
        "services.member.use_cases.members",
        "services.member.use_cases.tiers",
    ):
        monkeypatch.setattr(f"{module}.utcnow", fake)
    return fake


@pytest.fixture(scope="module")
def stubs(member_service):
    s = Stubs(member_service.channel)
    ensure_org(s)
    for parent, code, kind in [
        ("hq", "north", org_pb2.ORG_NODE_KIND_REGION),
        ("hq/north", "bj-001", org_pb2.ORG_NODE_KIND_STORE),
    ]:
        s.org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=f"org-{code}",
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=code, name=code.upper(), kind=kind, time_zone="Asia/Shanghai"),
            )
        )
    s.rollups = rollup_pb2_grpc.RollupServiceStub(member_service.channel)
    return s


@pytest.fixture(scope="module")
def ladder(stubs):
    """银卡 at ¥100 of spend, 金卡 at ¥1,000, 员工 by hand only."""
    made = {}
    for name, rank, spend in [("银卡", 2, 100_00), ("金卡", 3, 1_000_00), ("员工", 9, 0)]:
        made[name] = stubs.tier.CreateTier(
            tier_pb2.CreateTierRequest(
                request_id=rid(),
                actor=ACTOR,
                tier=tier_pb2.Tier(
                    name=name, rank=rank, price_rate_bp=10000, points_multiplier_bp=10000, upgrade_spend_fen=spend
                ),
            )
        ).tier.tier_id
    return made


@pytest.fixture(scope="module")
def raw(member_service, database_url):
    """A synchronous engine on the service's tables, to read the raw records."""
    engine = engines.make_sync_engine(database_url, "member")
    yield engine
    engine.dispose()


def fold(member_service, raw):
    """Fold the whole outbox (the service's own loop may be folding at the same time)."""
    database = member_service.app.context.database
    for _ in range(400):
        while member_service.run(ROLLUPS.fold(database)) > 0:
            pass
        with raw.connect() as connection:
            if connection.execute(select(func.count()).select_from(tables.outbox)).scalar() == 0:
                return
        time.sleep(0.02)
    raise AssertionError("the outbox does not empty")


def counters(raw) -> dict:
    """Every rollup's rows that hold something: (rollup, path, grain, day, key) -> measures."""
    out = {}
    with raw.connect() as connection:
        for rollup in ROLLUPS.by_name.values():
            for r in connection.execute(select(rollup.table)):
                measures = tuple(getattr(r, m) for m in rollup.measures)
                if any(measures):
                    out[(rollup.name, r.path, r.grain, r.day, r.key)] = measures
    return out


def pb_day(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def query(stubs, rollup, node, last, first=None, *, by_child=False, by_key=False, bucket=0, distinct=False):
    """The rows of one query: {(path, day, key): measures}, rows of zeros left out."""
    q = rpb.RollupQuery(
        rollup=rollup,
        org_path=node,
        last_day=pb_day(last),
        grouping=rpb.RollupGrouping(by_child=by_child, by_key=by_key, bucket=bucket),
        count_distinct_keys=distinct,
    )
    if first is not None:
        q.first_day.CopyFrom(pb_day(first))
    [result] = stubs.rollups.QueryRollups(rpb.QueryRollupsRequest(queries=[q])).results
    out = {}
    for r in result.rows:
        if any(r.measures.values()):
            day = date(r.day.year, r.day.month, r.day.day) if r.HasField("day") else None
            out[(r.org_path, day, r.key)] = dict(r.measures)
    return out


def by_key(rows, measure="members") -> dict:
    return {k: m[measure] for (_, _, k), m in rows.items() if m.get(measure)}


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def register(stubs, clock, when, till, *, cashier="", channel=member_pb2.REGISTRATION_CHANNEL_STORE, **fields):
    clock.now = when
    return stubs.member.RegisterMember(
        member_pb2.RegisterMemberRequest(
            request_id=rid(),
            channel=channel,
            actor=actor_pb2.Actor(operator_id="op", org_path=till),
            cashier_id=cashier,
            member=member_pb2.Member(name="报表会员", phone=new_phone(), **fields),
        )
    ).member


def visit(stubs, clock, now, member_id, store, amount_fen, visit_time=None, order_id=None):
    if now is not None:
        clock.now = now
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(visit_time or now)
    order_id = order_id or rid()
    stubs.member.RecordVisit(
        member_pb2.RecordVisitRequest(
            request_id=rid(),
            member_id=member_id,
            store_path=store,
            order_id=order_id,
            amount_fen=amount_fen,
            visit_time=stamp,
            actor=ACTOR,
        )
    )
    return order_id


def give_back(stubs, clock, when, member_id, order_id, amount_fen):
    clock.now = when
    stubs.member.RecordReturn(
        member_pb2.RecordReturnRequest(
            request_id=rid(),
            member_id=member_id,
            order_id=order_id,
            return_id=rid(),
            amount_fen=amount_fen,
            actor=ACTOR,
        )
    )


def assign(stubs, clock, when, member_id, tier_id):
    clock.now = when
    stubs.tier.AssignTier(
        tier_pb2.AssignTierRequest(
            request_id=rid(), member_id=member_id, tier_id=tier_id, reason="总部调整", actor=ACTOR
        )
    )


def move_home(stubs, clock, when, member_id, store):
    clock.now = when
    stubs.member.UpdateMember(
        member_pb2.UpdateMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(member_id=member_id, home_store_path=store),
            update_mask=field_mask_pb2.FieldMask(paths=["home_store_path"]),
        )
    )


def tiers_now_equal_the_members_table(stubs, raw):
    """As of today the tiers rollup is a GROUP BY over the members, at every node."""
    m = tables.members.c
    with raw.connect() as connection:
        grouped = connection.execute(
            select(m.home_store_path, m.tier_id, func.count()).group_by(m.home_store_path, m.tier_id)
        ).all()
    today = local(datetime.now(UTC)).date() + timedelta(days=400)  # later than any test's fake clock
    for node in ["hq", "hq/east", "hq/south", "hq/north", EAST, SOUTH, NORTH]:
        want = Counter()
        for home, tier, n in grouped:
            if home == node or home.startswith(node + "/"):
                want[tier or ""] += n
        assert by_key(query(stubs, "tiers", node, today, by_key=True)) == {k: v for k, v in want.items() if v}, node


# ---------------------------------------------------------------- by hand


def test_a_small_history_is_counted_by_hand_and_as_the_raw_records_and_a_rebuild_say(
    stubs, ladder, clock, member_service, raw
):
    """Days are Shanghai's: UTC 15:59:59 is 23:59:59 there, 16:00:00 the next day."""
    d9, d10, d11, d12 = (date(2026, 3, d) for d in (9, 10, 11, 12))
    a = register(stubs, clock, utc(2026, 3, 10, 1), TILLS[EAST], cashier="c1").member_id
    b = register(stubs, clock, utc(2026, 3, 9, 15, 59, 59), TILLS[EAST]).member_id
    c = register(
        stubs, clock, utc(2026, 3, 9, 16), TILLS[SOUTH], cashier="c2", channel=member_pb2.REGISTRATION_CHANNEL_WEB
    ).member_id
    o1 = visit(stubs, clock, utc(2026, 3, 10, 2), a, EAST, 100_00)  # a climbs to 银卡 on the 10th
    visit(stubs, clock, utc(2026, 3, 10, 15, 59, 59), a, SOUTH, 50_00)  # the 10th's last second
    visit(stubs, clock, utc(2026, 3, 10, 16), b, EAST, 30_00)  # the 11th's first
    # a till that was offline sends a's visit of the 10th at 01:30 UTC late: the first visit moves
    visit(stubs, clock, utc(2026, 3, 10, 17), a, SOUTH, 10_00, visit_time=utc(2026, 3, 10, 1, 30))
    give_back(stubs, clock, utc(2026, 3, 11, 3), a, o1, 20_00)  # spend 140: still 银卡
    assign(stubs, clock, utc(2026, 3, 12, 4), c, ladder["金卡"])
    move_home(stubs, clock, utc(2026, 3, 12, 5), b, SOUTH)
    clock.now = None
    fold(member_service, raw)

    def check():
        assert query(stubs, "registrations", "hq", d10, d9, by_key=True, bucket=rpb.ROLLUP_BUCKET_DAY) == {
            ("hq", d9, "STORE"): {"members": 1},
            ("hq", d10, "STORE"): {"members": 1},
            ("hq", d10, "WEB"): {"members": 1},
        }
        assert by_key(query(stubs, "registrations", TILLS[EAST], d10, d9, by_key=True)) == {"STORE": 2}
        assert by_key(query(stubs, "registrars", "hq", d10, d9, by_key=True)) == {"c1": 1, "": 1, "c2": 1}
        assert by_key(query(stubs, "registrars", "hq/south", d10, d10, by_key=True)) == {"c2": 1}
        # visitors: per store and day, keyed by member; a return takes spend off on its own day
        assert query(stubs, "visitors", "hq", d11, d10, by_child=True, by_key=True, bucket=rpb.ROLLUP_BUCKET_DAY) == {
            ("hq/east", d10, a): {"orders": 1, "spend_fen": 100_00},
            ("hq/east", d11, a): {"orders": 0, "spend_fen": -20_00},
            ("hq/east", d11, b): {"orders": 1, "spend_fen": 30_00},
            ("hq/south", d10, a): {"orders": 2, "spend_fen": 60_00},
        }
        assert query(stubs, "visitors", "hq", d11, d10, distinct=True) == {("hq", None, ""): {"distinct_keys": 2}}
        assert query(stubs, "visitors", SOUTH, d10, d10, distinct=True) == {(SOUTH, None, ""): {"distinct_keys": 1}}
        # first visits: a's earliest is the late one, at gz-001; b's on the 11th
        assert query(stubs, "first_visits", "hq", d11, d10, by_child=True, bucket=rpb.ROLLUP_BUCKET_DAY) == {
            ("hq/east", d11, ""): {"members": 1},
            ("hq/south", d10, ""): {"members": 1},
        }
        # tiers as of each day's end
        silver, gold = ladder["银卡"], ladder["金卡"]
        assert by_key(query(stubs, "tiers", "hq", d9, by_key=True)) == {"": 1}
        assert by_key(query(stubs, "tiers", "hq", d10, by_key=True)) == {"": 2, silver: 1}
        assert by_key(query(stubs, "tiers", "hq", d12, by_key=True)) == {"": 1, silver: 1, gold: 1}
        assert by_key(query(stubs, "tiers", EAST, d12, by_key=True)) == {silver: 1}
        assert by_key(query(stubs, "tiers", EAST, d11, by_key=True)) == {"": 1, silver: 1}
        assert by_key(query(stubs, "tiers", SOUTH, d12, by_key=True)) == {"": 1, gold: 1}
        assert by_key(query(stubs, "tier_moves", "hq", d12, d9, by_key=True)) == {f">{silver}": 1, f">{gold}": 1}
        assert by_key(query(stubs, "tier_moves", SOUTH, d12, d12, by_key=True)) == {f">{gold}": 1}

    check()
    before = counters(raw)
    assert member_service.run(reports.rebuild(member_service.app.context.database)) > 0
    fold(member_service, raw)
    assert counters(raw) == before
    check()
    tiers_now_equal_the_members_table(stubs, raw)
    # the cashier is kept on the member, where the rebuild reads it
    with raw.connect() as connection:
        kept = dict(connection.execute(select(tables.members.c.member_id, tables.members.c.cashier_id)).all())
    assert (kept[a], kept[b], kept[c]) == ("c1", "", "c2")


def test_a_cashier_id_past_64_characters_is_refused(stubs):
    code, reason, violations = refusal(
        stubs.member.RegisterMember,
        member_pb2.RegisterMemberRequest(
            request_id=rid(),
            channel=member_pb2.REGISTRATION_CHANNEL_STORE,
            actor=ACTOR,
            cashier_id="x" * 65,
            member=member_pb2.Member(name="太长", phone=new_phone()),
        ),
    )
    assert (code.name, reason, violations) == (INVALID, "CASHIER_ID_TOO_LONG", {"cashier_id": "CASHIER_ID_TOO_LONG"})


def test_an_import_is_counted_as_registrations_of_its_channel(stubs, clock, member_service, raw):
    from huiyuan.common.v1 import file_pb2

    when = utc(2026, 4, 2, 16)  # 3 April in Shanghai
    clock.now = when
    content = "姓名,手机\n" + "".join(f"导入{i},{new_phone()}\n" for i in range(3))
    stubs.member.ImportMembers(
        member_pb2.ImportMembersRequest(
            request_id=rid(),
            content=content.encode(),
            format=file_pb2.FILE_FORMAT_CSV,
            actor=actor_pb2.Actor(operator_id="hq-op", org_path=EAST),
        )
    )
    clock.now = None
    fold(member_service, raw)
    day = date(2026, 4, 3)
    assert by_key(query(stubs, "registrations", "hq", day, day, by_key=True)) == {"BULK_IMPORT": 3}
    assert by_key(query(stubs, "registrars", EAST, day, day, by_key=True)) == {"": 3}
    assert by_key(query(stubs, "tiers", EAST, day, day, by_key=True)) == {"": 3}


def pending_home_changes(stubs, page_size=2) -> list:
    """Every change the wallet has not been told yet, page by page."""
    found, token = [], ""
    while True:
        page = stubs.member.ListPendingHomeChanges(
            member_pb2.ListPendingHomeChangesRequest(page_size=page_size, page_token=token)
        )
        found += page.changes
        token = page.next_page_token
        if not token:
            return found


def test_homes_set_at_registration_import_and_move_wait_for_the_wallet_until_completed(stubs, clock, member_service):
    from huiyuan.common.v1 import file_pb2

    when = utc(2026, 5, 2, 4)
    member = register(stubs, clock, when, f"{EAST}/pos-1", home_store_path=EAST)
    move_home(stubs, clock, when + timedelta(hours=1), member.member_id, SOUTH)
    move_home(stubs, clock, when + timedelta(hours=2), member.member_id, SOUTH)  # not a move: nothing queued
    phones = [new_phone(), new_phone()]
    stubs.member.ImportMembers(
        member_pb2.ImportMembersRequest(
            request_id=rid(),
            content=("姓名,手机,门店\n" + "".join(f"导入,{p},{SOUTH}\n" for p in phones)).encode(),
            format=file_pb2.FILE_FORMAT_CSV,
            actor=actor_pb2.Actor(operator_id="hq-op", org_path="hq"),
        )
    )
    imported = {
        m.member_id for m in stubs.member.FindMembers(member_pb2.FindMembersRequest(phones=phones)).members.values()
    }
    ours = [c for c in pending_home_changes(stubs) if c.member_id in {member.member_id, *imported}]
    mine = [(c.home_store_path, c.change_time.ToDatetime(UTC)) for c in ours if c.member_id == member.member_id]
    assert mine == [(EAST, when), (SOUTH, when + timedelta(hours=1))]  # oldest first
    assert sorted((c.member_id, c.home_store_path) for c in ours if c.member_id in imported) == sorted(
        (m, SOUTH) for m in imported
    )
    ids = [c.change_id for c in ours]
    assert ids == sorted(ids)
    done = stubs.member.CompleteHomeChanges(member_pb2.CompleteHomeChangesRequest(change_ids=ids))
    assert done.completed == len(ids) == 4
    assert stubs.member.CompleteHomeChanges(member_pb2.CompleteHomeChangesRequest(change_ids=ids)).completed == 0
    assert not {c.change_id for c in pending_home_changes(stubs, 500)} & set(ids)
    code, reason, _ = refusal(stubs.member.CompleteHomeChanges, member_pb2.CompleteHomeChangesRequest())
    assert reason == "CHANGE_IDS_COUNT"


def test_two_first_visits_at_once_count_one_first_visit(stubs, clock, member_service, raw):
    """The visit path locks the member's row before it reads their first visit, so of
    two tills sending a new member's first visits at once, the second waits and sees
    the first: one first visit, at the earlier visit's store, whichever commits first."""
    when = utc(2026, 5, 5, 8)
    rounds = 6
    for i in range(rounds):
        member = register(stubs, clock, when, TILLS[EAST]).member_id
        clock.now = None
        stamps = [when + timedelta(minutes=1), when + timedelta(minutes=2)]
        with ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda store_at: visit(stubs, clock, None, member, store_at[0], 10_00, visit_time=store_at[1]),
                    [(SOUTH if i % 2 else EAST, stamps[0]), (EAST if i % 2 else SOUTH, stamps[1])],
                )
            )
    fold(member_service, raw)
    day = date(2026, 5, 5)
    got = query(stubs, "first_visits", "hq", day, day, by_child=True)
    assert {p: w["members"] for (p, _, _), w in got.items()} == {"hq/east": rounds // 2, "hq/south": rounds // 2}


# ---------------------------------------------------------------- random histories

INSTANTS = [(15, 59, 59), (16, 0, 0), (3, 0, 0), (12, 30, 0)]  # UTC: the midnight's two sides, and others
week = itertools.count()

events = st.lists(
    st.one_of(
        st.tuples(st.just("register"), st.sampled_from(STORES), st.sampled_from(["", "c1", "c2"])),
        st.tuples(
            st.just("visit"), st.integers(0, 9), st.sampled_from(STORES), st.integers(0, 600_00), st.integers(0, 2)
        ),
        st.tuples(st.just("return"), st.integers(0, 9), st.integers(1, 100)),
        st.tuples(st.just("assign"), st.integers(0, 9), st.sampled_from(["银卡", "金卡", "员工"])),
        st.tuples(st.just("move"), st.integers(0, 9), st.sampled_from(STORES)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    history=events, steps=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(INSTANTS)), min_size=14, max_size=14)
)
def test_random_histories_fold_as_the_raw_records_sum_and_as_a_rebuild_counts(
    stubs, ladder, clock, member_service, raw, history, steps
):
    """Each example in a week of its own: the clock moves forward through it (by day, to
    just before or just after a Shanghai midnight, or elsewhere); visits may be sent up
    to two days late (a till that was offline), so a member's first visit can move."""
    start = date(2026, 6, 1) + timedelta(days=15 * next(week))  # after the last example's last day
    moments, day = [], start
    for (later, (h, mi, s)), _ in zip(steps, history, strict=False):
        day += timedelta(days=later)
        moment = datetime(day.year, day.month, day.day, h, mi, s, tzinfo=UTC)
        moments.append(max([moment, *moments[-1:]]))
    members: list[str] = []
    orders: list[tuple[str, str, int]] = []  # (member, order, amount left to return)
    states: list[tuple[datetime, dict[str, tuple[str, str]]]] = []  # after each event: member -> (home, tier)
    for event, now in zip(history, moments, strict=False):
        kind = event[0]
        if kind == "register" or not members:
            store = event[1] if kind == "register" else EAST
            members.append(
                register(stubs, clock, now, TILLS[store], cashier=event[2] if kind == "register" else "").member_id
            )
        elif kind == "visit":
            _, who, store, amount, late = event
            member = members[who % len(members)]
            when = now - timedelta(days=late, seconds=late)
            orders.append((member, visit(stubs, clock, now, member, store, amount, visit_time=when), amount))
        elif kind == "return" and orders:
            _, which, share = event
            i = which % len(orders)
            member, order, left = orders[i]
            amount = left * share // 100
            if amount:
                give_back(stubs, clock, now, member, order, amount)
                orders[i] = (member, order, left - amount)
        elif kind == "assign":
            assign(stubs, clock, now, members[event[1] % len(members)], ladder[event[2]])
        elif kind == "move":
            move_home(stubs, clock, now, members[event[1] % len(members)], event[2])
        with raw.connect() as connection:
            m = tables.members.c
            state = {
                r.member_id: (r.home_store_path, r.tier_id or "")
                for r in connection.execute(select(m.member_id, m.home_store_path, m.tier_id))
            }
        states.append((now, state))
    clock.now = None
    fold(member_service, raw)
    first, last = start - timedelta(days=3), moments[-1].astimezone(UTC).date() + timedelta(days=1)

    # visitors and registrations, day by day, against sums over the raw tables
    with raw.connect() as connection:
        v, rt, m = tables.visits.c, tables.visit_returns.c, tables.members.c
        visit_rows = connection.execute(select(v.order_id, v.member_id, v.store_path, v.amount_fen, v.visit_time)).all()
        return_rows = connection.execute(
            select(rt.amount_fen, rt.return_time, v.member_id, v.store_path).join(tables.visits)
        ).all()
        member_rows = connection.execute(select(m.registered_org_path, m.channel, m.create_time)).all()
    spend, orders_by, registered = defaultdict(int), defaultdict(int), defaultdict(int)
    for r in visit_rows:
        spend[(r.store_path, local(r.visit_time).date(), r.member_id)] += r.amount_fen
        orders_by[(r.store_path, local(r.visit_time).date(), r.member_id)] += 1
    for r in return_rows:
        spend[(r.store_path, local(r.return_time).date(), r.member_id)] -= r.amount_fen
    for r in member_rows:
        registered[(r.registered_org_path, local(r.create_time).date(), r.channel)] += 1
    for node in ["hq", "hq/east", SOUTH]:
        got = query(stubs, "visitors", node, last, first, by_key=True, bucket=rpb.ROLLUP_BUCKET_DAY)
        want = {}
        for (store, d, member), fen in spend.items():
            if (store == node or store.startswith(node + "/")) and first <= d <= last:
                into = want.setdefault((node, d, member), {"orders": 0, "spend_fen": 0})
                into["spend_fen"] += fen
        for (store, d, member), n in orders_by.items():
            if (store == node or store.startswith(node + "/")) and first <= d <= last:
                want.setdefault((node, d, member), {"orders": 0, "spend_fen": 0})["orders"] += n
        assert got == {k: w for k, w in want.items() if any(w.values())}, node
        got = query(stubs, "registrations", node, last, first, by_key=True, bucket=rpb.ROLLUP_BUCKET_DAY)
        want_r = Counter()
        for (path, d, channel), n in registered.items():
            if (path == node or path.startswith(node + "/")) and first <= d <= last:
                want_r[(node, d, channel)] += n
        assert {k: w["members"] for k, w in got.items()} == dict(want_r), node
    # first visits: each member's earliest visit (ties by order id), by store and day
    earliest = {}
    for r in visit_rows:
        if r.member_id not in earliest or (r.visit_time, r.order_id) < earliest[r.member_id][:2]:
            earliest[r.member_id] = (r.visit_time, r.order_id, r.store_path)
    want_f = Counter(
        ("/".join(store.split("/")[:2]), local(t).date())
        for t, _, store in earliest.values()
        if first <= local(t).date() <= last
    )
    got = query(stubs, "first_visits", "hq", last, first, by_child=True, bucket=rpb.ROLLUP_BUCKET_DAY)
    assert {(p, d): w["members"] for (p, d, _), w in got.items()} == dict(want_f)
    # tiers as of each day's end: the members' homes and tiers after that day's last event
    for d in sorted({local(now).date() for now, _ in states}):
        state = [s for now, s in states if local(now).date() <= d][-1]
        for node in ["hq", EAST, SOUTH]:
            want_t = Counter(tier for home, tier in state.values() if home == node or home.startswith(node + "/"))
            assert by_key(query(stubs, "tiers", node, d, by_key=True)) == {k: n for k, n in want_t.items() if n}, (
                node,
                d,
            )
    tiers_now_equal_the_members_table(stubs, raw)
    # the rebuild from the raw records counts what the live path folded
    before = counters(raw)
    member_service.run(reports.rebuild(member_service.app.context.database))
    fold(member_service, raw)
    assert counters(raw) == before


# ---------------------------------------------------------------- the snapshot


def summarize(stubs, node, as_of=None):
    request = member_pb2.SummarizeMembersRequest(org_path=node)
    if as_of is not None:
        request.as_of.CopyFrom(pb_day(as_of))
    return stubs.member.SummarizeMembers(request)


def test_summarize_members_counts_quiet_ones_birthdays_and_rfm_quintiles(stubs, clock, member_service):
    """Ten members homed at bj-001: two never came; eight visited, with last visits,
    visit counts and spends that rank them apart; birthdays across a year's end."""
    as_of = date(2026, 12, 20)
    till = NORTH  # registered at the store: homed there
    birthdays = [
        {"year": 1990, "month": 12, "day": 20},  # as_of itself: in
        {"year": 0, "month": 1, "day": 18},  # the 30th day (20 Dec + 29): in, without a year
        {"year": 1985, "month": 1, "day": 19},  # the 31st: out
        {"year": 1992, "month": 12, "day": 19},  # the day before: out
        {},
        {},
        {},
        {},
        {},
        {},
    ]
    ids = [register(stubs, clock, utc(2026, 1, 5), till, **({"birthday": b} if b else {})).member_id for b in birthdays]
    # eight visitors: member i last came (i*20) days before as_of, i+1 times, spending (8-i)*¥10 each time
    for i, member in enumerate(ids[:8]):
        last = datetime(as_of.year, as_of.month, as_of.day, 4, tzinfo=UTC) - timedelta(days=20 * i)
        for n in range(i + 1):
            visit(stubs, clock, last, member, NORTH, (8 - i) * 10_00, visit_time=last - timedelta(days=n))
    clock.now = None
    got = summarize(stubs, "hq/north", as_of)
    assert (got.members, got.never_visited, got.birthday_members_next_30_days) == (10, 2, 2)
    # last visits 0, 20, ..., 140 days ago: those from 100 days on (i = 5, 6, 7) are quiet (90 days: as_of and 89 before)
    assert got.quiet_members == 3
    # 8 visitors: a score is 1 + 5 x (members worse) // 8. Member i has 7-i worse on
    # recency (scores 5 4 4 3 2 2 1 1), i worse on frequency (1 1 2 2 3 4 4 5); spends
    # (8-i)*(i+1)*10 yuan: 80 140 180 200 200 180 140 80, so 1 2 3 4 4 3 2 1
    recency, frequency, monetary = [5, 4, 4, 3, 2, 2, 1, 1], [1, 1, 2, 2, 3, 4, 4, 5], [1, 2, 3, 4, 4, 3, 2, 1]
    assert [1 + 5 * (7 - i) // 8 for i in range(8)] == recency and [1 + 5 * i // 8 for i in range(8)] == frequency
    want = Counter(zip(recency, frequency, monetary, strict=True))
    assert {(c.recency_score, c.frequency_score, c.monetary_score): c.members for c in got.rfm_cells} == dict(want)
    assert [(r.score, r.min_value, r.max_value, r.members) for r in got.recency_quintiles] == [
        (1, 120, 140, 2),
        (2, 80, 100, 2),
        (3, 60, 60, 1),
        (4, 20, 40, 2),
        (5, 0, 0, 1),
    ]
    assert [(r.score, r.min_value, r.max_value, r.members) for r in got.frequency_quintiles] == [
        (1, 1, 2, 2),
        (2, 3, 4, 2),
        (3, 5, 5, 1),
        (4, 6, 7, 2),
        (5, 8, 8, 1),
    ]
    # spends 80 (x2), 140 (x2), 180 (x2), 200 (x2) yuan: ties share the lowest score of their run
    assert [(r.score, r.min_value, r.max_value, r.members) for r in got.monetary_quintiles] == [
        (1, 80_00, 80_00, 2),
        (2, 140_00, 140_00, 2),
        (3, 180_00, 180_00, 2),
        (4, 200_00, 200_00, 2),
    ]
    # a node with nobody, a store, a day a birthday of 29 February counts on in other years
    empty = summarize(stubs, "hq/west", as_of)
    assert (empty.members, empty.never_visited, list(empty.rfm_cells)) == (0, 0, [])
    assert summarize(stubs, NORTH, as_of).members == 10
    register(stubs, clock, utc(2026, 1, 6), till, birthday={"year": 2000, "month": 2, "day": 29})
    clock.now = None
    assert (
        summarize(stubs, NORTH, date(2027, 2, 1)).birthday_members_next_30_days == 1
    )  # 1 Feb + 29: 2 Mar, takes in 28 Feb
    assert summarize(stubs, NORTH, date(2027, 3, 1)).birthday_members_next_30_days == 0
    assert summarize(stubs, NORTH, date(2028, 2, 29)).birthday_members_next_30_days == 1


def test_summarize_members_refuses_a_bad_node_or_day(stubs):
    code, reason, violations = refusal(
        stubs.member.SummarizeMembers, member_pb2.SummarizeMembersRequest(org_path="HQ!")
    )
    assert (code.name, reason, violations) == (INVALID, "ORG_PATH_INVALID", {"org_path": "ORG_PATH_INVALID"})
    request = member_pb2.SummarizeMembersRequest(org_path="hq", as_of=date_pb2.Date(year=2026, month=2, day=30))
    code, reason, violations = refusal(stubs.member.SummarizeMembers, request)
    assert (code.name, reason, violations) == (INVALID, "DAY_INVALID", {"as_of": "DAY_INVALID"})


def test_unearned_membership_revenue_summed_by_postgresql_equals_the_terms_one_by_one(pg_server, tmp_path, request):
    """The liability report's unearned paid-membership revenue: PostgreSQL's sums
    (storage.memberships._UNEARNED) against the Python loop over the same terms, for
    random terms (refunded before, on or after the day, ended, not started, free), days
    and nodes."""
    import asyncio
    import random

    import psycopg

    from huiyuan.database import Database, migrate
    from huiyuan_cli.launcher import spec_of
    from services.member.use_cases import memberships
    from tests.conftest import database_of_its_own

    url = database_of_its_own("postgresql", tmp_path, request, "member")
    migrate.upgrade(spec_of("member").migrations_dir, url, "member")
    rng = random.Random(40)
    stores = ["hq/e/s1", "hq/e/s2", "hq/w/s_1", "hq/w/s%2", "hq/e/s1/t1"]
    start0 = date(2026, 1, 1)
    with psycopg.connect(url) as db:
        db.execute("SET search_path = member")
        db.execute("SET session_replication_role = replica")  # no members nor plans: the terms alone
        for i in range(600):
            start = start0 + timedelta(days=rng.randrange(200))
            days = rng.choice([0, 1, 7, 30, 31, 365])
            end = start + timedelta(days=days)
            price = rng.choice([0, 1, 999, 19900, 36500])
            sold = local_midnight(start - timedelta(days=rng.randrange(3))) + timedelta(hours=rng.randrange(24))
            refund = rng.random() < 0.4
            refund_day = start + timedelta(days=rng.randrange(-2, days + 3))
            refund_end = max(start, min(end, refund_day + timedelta(days=1)))
            refund_time = local_midnight(refund_day) + timedelta(hours=rng.randrange(24)) if refund else None
            refunded = price * (end - refund_end).days // days if refund and days else 0
            db.execute(
                "INSERT INTO membership_terms VALUES (%s,%s,'p','TILL',%s,%s,%s,%s,%s,%s,'','','',%s,%s,%s,%s,%s,'','')",
                (
                    f"t{i:05d}",
                    f"m{i % 50}",
                    price,
                    start,
                    start,
                    end,
                    days,
                    f"k{i}",
                    rng.choice(stores),
                    sold,
                    refunded,
                    refund_time,
                    refund_end if refund else None,
                ),
            )
        db.commit()

    async def compare() -> None:
        engine = engines.make_async_engine(url, "member")
        database = Database(engine, "member", 2)
        await database.open()
        try:
            async with database.reading() as tx:
                assert memberships.dialect_name(tx) == "postgresql"
                for day in [start0 + timedelta(days=d) for d in range(-3, 420, 7)]:
                    for node in ["", "hq", "hq/e", "hq/e/s1", "hq/w/s_1", "hq/w/s%2", "hq/x"]:
                        summed = await memberships.unearned(tx, day, node)
                        assert summed == await memberships.unearned_in_python(tx, day, node), (day, node)
                        seen.update({"terms": summed.terms > 0, "partly earned": summed.earned_fen > 0})
        finally:
            await database.close()
            await engine.dispose()

    seen: Counter = Counter()
    asyncio.run(compare())
    assert seen["terms"] > 100 and seen["partly earned"] > 100, seen


def local_midnight(day: date) -> datetime:
    from huiyuan.runtime.business_time import day_start

    return day_start(day)
