"""The campaign service's rollups for the reports (services/campaign/domain/reports.py,
storage/rollups.py): campaigns priced and redeemed, coupons issued, redeemed and
returned, folded from the outbox and read through the real RollupService; checked
against hand-computed figures, against sums over the raw tables, and against a
rebuild from the raw records. On SQLite and on PostgreSQL."""

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from google.type import date_pb2
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from huiyuan.campaign.v1 import campaign_pb2 as pb
from huiyuan.common.v1 import actor_pb2, rollup_pb2, rollup_pb2_grpc
from huiyuan.database.engines import make_sync_engine
from huiyuan.runtime.business_time import local
from huiyuan.runtime.holds import HoldState
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.rollups import ancestors
from services.campaign.domain.reservations import ReserveAsk
from services.campaign.storage import tables
from services.campaign.storage.rollups import ROLLUPS
from services.campaign.use_cases import issuing, redemptions, reports, reservations, returns
from tests.support import rid
from tests.test_campaign_service import activate, campaign, create, template, ts  # noqa: F401 - the fixture

STORE = "hq/east/sh-001"
OTHER_STORE = "hq/west/gz-001"
MEMBERS = ["m_" + c * 26 for c in "ABC"]
ROLLUP_TABLES = {
    "campaigns": tables.campaigns_rollup,
    "coupons": tables.coupons_rollup,
    "coupons_outstanding": tables.coupons_outstanding_rollup,
}


def day_of(moment: datetime) -> date:
    return local(moment).date()


def expiry_of(valid_until: datetime) -> date:
    return day_of(valid_until - timedelta(microseconds=1))


@pytest.fixture(scope="module")
def rollups(campaign_service):
    return rollup_pb2_grpc.RollupServiceStub(campaign_service.channel)


@pytest.fixture(scope="module")
def engine(campaign_service):
    engine = make_sync_engine(campaign_service.settings.database_url, "campaign")
    yield engine
    engine.dispose()


def fold(campaign_service, engine):
    """Fold the outbox (the background loop may be folding too) until it is empty."""
    database = campaign_service.app.context.database
    deadline = time.monotonic() + 20
    while True:
        campaign_service.run(ROLLUPS.fold(database))
        with engine.connect() as db:
            if db.execute(select(func.count()).select_from(tables.outbox)).scalar() == 0:
                return
        assert time.monotonic() < deadline, "the outbox was never emptied"
        time.sleep(0.05)


def dump(engine) -> dict:
    """Every counter of every rollup, without the rows that add up to nothing."""
    out = {}
    with engine.connect() as db:
        for name, rollup in ROLLUP_TABLES.items():
            t = rollup.table
            for r in db.execute(select(t)):
                measures = {m: getattr(r, m) for m in rollup.measures}
                if any(measures.values()):
                    out[(name, r.path, r.grain, r.day, r.key)] = measures
    return out


def pb_date(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def query(rollups, name, node, first, last, **grouping):
    keys = grouping.pop("keys", ())
    answer = rollups.QueryRollups(
        rollup_pb2.QueryRollupsRequest(
            queries=[
                rollup_pb2.RollupQuery(
                    rollup=name,
                    org_path=node,
                    first_day=pb_date(first),
                    last_day=pb_date(last),
                    grouping=rollup_pb2.RollupGrouping(**grouping),
                    keys=list(keys),
                )
            ]
        )
    )
    return [(r.org_path, r.key, dict(r.measures)) for r in answer.results[0].rows]


def issue_at(campaign, template_id, members, org_path):
    return campaign.IssueCoupons(
        pb.IssueCouponsRequest(
            request_id=rid(),
            template_id=template_id,
            member_ids=members,
            actor=actor_pb2.Actor(operator_id="hq-admin", org_path=org_path),
        )
    ).coupons


def checkout(campaign, member, codes=(), tier_rate=10_000):
    """An order priced now (Quote), reserved with the quote and redeemed, as the
    gateway's checkout does: (its quote, its order id)."""
    request = pb.QuoteRequest(
        member=pb.MemberContext(member_id=member, tier_id="silver", tier_price_rate_bp=tier_rate),
        store_path=STORE,
        at_time=ts(datetime.now(UTC)),
        coupon_codes=list(codes),
        lines=[
            pb.OrderLine(line_id="1", sku="tea", category="tea", quantity=2, unit_price_fen=60_00),
            pb.OrderLine(line_id="2", sku="rice", category="food", quantity=1, unit_price_fen=30_00),
        ],
    )
    quoted = campaign.Quote(request)
    order_id = rid()
    reservation = campaign.ReserveCoupons(
        pb.ReserveCouponsRequest(
            request_id=rid(),
            member_id=member,
            coupon_codes=list(codes),
            order_id=order_id,
            store_path=STORE,
            ttl={"seconds": 60},
            adjustments=quoted.adjustments,
            payable_fen=quoted.payable_fen,
        )
    )
    campaign.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=reservation.reservation_id))
    return quoted, order_id


# ------------------------------------------------------------------ raw sums


def raw_sums(engine) -> dict:
    """What the rollups should hold, summed straight from the raw tables (each fact at
    its node and every node above it), independently of domain/reports.py."""
    leaf: dict = defaultdict(lambda: defaultdict(int))
    r, u = tables.reservations.c, tables.campaign_uses.c
    with engine.connect() as db:
        captured = {x.reservation_id: x for x in db.execute(select(tables.reservations)).all() if x.state == "CAPTURED"}
        firsts = {(x.reservation_id, x.campaign_id) for x in db.execute(select(tables.campaign_members))}
        for use in db.execute(select(tables.campaign_uses).where(u.state == HoldState.CAPTURED.value)):
            if use.own_fen <= 0:
                continue
            res = captured[use.reservation_id]
            at = ("campaigns", res.store_path, day_of(res.redeem_time), use.campaign_id)
            leaf[at]["orders"] += 1
            leaf[at]["discount_fen"] += use.own_fen
            leaf[at]["sales_fen"] += res.payable_fen
            leaf[at]["members"] += (use.reservation_id, use.campaign_id) in firsts
        for ret in db.execute(
            select(tables.discount_returns, r.store_path).join(
                tables.reservations, r.reservation_id == tables.discount_returns.c.reservation_id
            )
        ):
            leaf[("campaigns", ret.store_path, day_of(ret.return_time), ret.campaign_id)]["returned_fen"] += (
                ret.amount_fen
            )
        for coupon in db.execute(select(tables.coupons)):
            leaf[("coupons", coupon.issue_path, day_of(coupon.issue_time), coupon.template_id)]["issued"] += 1
            if coupon.state == "REDEEMED":
                res = captured[coupon.reservation_id]
                at = ("coupons", res.store_path, day_of(res.redeem_time), coupon.template_id)
                leaf[at]["redeemed"] += 1
                leaf[at]["discount_fen"] += coupon.discount_fen
            else:
                at = ("coupons_outstanding", coupon.issue_path, expiry_of(coupon.valid_until_time), coupon.template_id)
                leaf[at]["coupons"] += 1
                leaf[at]["face_fen"] += coupon.face_fen
    return expanded(leaf)


def expanded(leaf: dict) -> dict:
    """Sums at leaf nodes, added to every node above them (to the rollup's deepest level),
    as day rows keyed as dump() keys them; rows of zeros left out."""
    out: dict = defaultdict(lambda: defaultdict(int))
    for (name, path, day, key), measures in leaf.items():
        for node in ancestors(path, ROLLUPS.by_name[name].deepest):
            for m, v in measures.items():
                out[(name, node, "D", day, key)][m] += v
    return {k: dict(v) for k, v in out.items() if any(v.values())}


def day_rows(rows: dict, keys: set[str] | None = None) -> dict:
    """A dump()'s day rows (of these keys), with every measure named (zeros too)."""
    out = {}
    for (name, path, grain, day, key), measures in rows.items():
        if grain == "D" and (keys is None or key in keys):
            out[(name, path, grain, day, key)] = {m: v for m, v in measures.items() if v}
    return out


def nonzero(rows: dict) -> dict:
    return {k: {m: v for m, v in ms.items() if v} for k, ms in rows.items() if any(ms.values())}


# ------------------------------------------------------------------ the day through the RPCs


def test_campaigns_and_coupons_of_a_day_reach_the_reports(campaign, campaign_service, rollups, engine):
    offer = create(
        campaign,
        name="满100减20",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq/east",
        steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)],
    )
    activate(campaign, offer.campaign_id)
    backing = create(campaign, name="券活动", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq")
    ten = template(
        campaign, name="10元券", kind=pb.COUPON_KIND_FIXED, amount_fen=10_00, campaign_id=backing.campaign_id
    )
    pct = template(campaign, name="九折券", kind=pb.COUPON_KIND_PERCENTAGE, rate_bp=9_000, cap_fen=15_00)
    a, b, c = MEMBERS
    first_ten, second_ten = issue_at(campaign, ten.template_id, [a, b], STORE)
    (kept,) = issue_at(campaign, pct.template_id, [c], "hq/east")

    # a: tier price, 满100减20 and the 10元 coupon; a again: 满100减20 only; b: with the coupon
    quoted, order_one = checkout(campaign, a, [first_ten.coupon_code], tier_rate=9_500)
    assert [(x.kind, bool(x.campaign_id), bool(x.coupon_code)) for x in quoted.adjustments] == [
        (pb.CAMPAIGN_KIND_TIER_DISCOUNT, False, False),  # the member's tier price: no campaign
        (pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, True, False),
        (pb.CAMPAIGN_KIND_UNSPECIFIED, False, True),  # a coupon
    ]
    assert [x.amount_fen for x in quoted.adjustments] == [7_50, 20_00, 10_00]
    assert quoted.payable_fen == 150_00 - 37_50
    again, _ = checkout(campaign, a)
    assert again.payable_fen == 130_00
    with_coupon, _ = checkout(campaign, b, [second_ten.coupon_code])
    assert with_coupon.payable_fen == 120_00
    campaign.ReturnDiscounts(
        pb.ReturnDiscountsRequest(
            request_id=rid(),
            order_id=order_one,
            adjustments=[
                pb.Adjustment(campaign_id=offer.campaign_id, amount_fen=4_00),
                pb.Adjustment(coupon_code=first_ten.coupon_code, amount_fen=2_00),  # a coupon's: no campaign's own
            ],
        )
    )
    fold(campaign_service, engine)

    today = day_of(datetime.now(UTC))
    first, last = today - timedelta(days=1), today + timedelta(days=1)  # a test run across midnight
    assert query(rollups, "campaigns", "hq", first, last, by_key=True) == [
        (
            "hq",
            offer.campaign_id,
            {
                "orders": 3,
                "discount_fen": 60_00,
                "sales_fen": 112_50 + 130_00 + 120_00,
                "members": 2,
                "returned_fen": 4_00,
            },
        )
    ]  # the COUPONS campaign priced nothing: its coupons are the coupons rollup's
    assert [row[0] for row in query(rollups, "campaigns", "hq/east", first, last, by_child=True)] == [STORE]
    assert query(rollups, "campaigns", "hq/west", first, last) == []
    coupons = {k: m for _, k, m in query(rollups, "coupons", "hq", first, last, by_key=True)}
    assert coupons == {
        ten.template_id: {"issued": 2, "redeemed": 2, "discount_fen": 20_00, "voided": 0},
        pct.template_id: {"issued": 1, "redeemed": 0, "discount_fen": 0, "voided": 0},
    }
    assert query(rollups, "coupons", "hq/east", first, last, by_child=True) == [
        ("hq/east/sh-001", "", {"issued": 2, "redeemed": 2, "discount_fen": 20_00, "voided": 0})
    ]  # the percentage coupon was issued by the region's office, not by a store
    # outstanding now, and expiring within 30 days: the percentage coupon (no fixed value)
    for horizon in (30, 3650):
        outstanding = query(rollups, "coupons_outstanding", "hq", today, today + timedelta(days=horizon), by_key=True)
        assert [(p, k, m) for p, k, m in outstanding if any(m.values())] == [
            ("hq", pct.template_id, {"coupons": 1, "face_fen": 0})
        ]
    expires = expiry_of(datetime.now(UTC) + timedelta(days=30))
    assert query(rollups, "coupons_outstanding", "hq/east", expires + timedelta(days=2), today + timedelta(3650)) == []
    assert kept.coupon_code
    # the rollups equal the sums over the raw tables, and a rebuild from them
    folded = dump(engine)
    assert day_rows(folded) == nonzero(raw_sums(engine))
    assert campaign_service.run(reports.rebuild(campaign_service.app.context.database)) > 0
    assert dump(engine) == folded


# ------------------------------------------------------------------ random histories


MIDNIGHT = [(15, 59, 59), (16, 0, 0), (3, 30, 0)]  # UTC: the last second of a Shanghai day, its first, midday
STORES = [STORE, OTHER_STORE]
ISSUERS = [STORE, "hq/east", OTHER_STORE, "hq"]

moments = st.builds(
    lambda day, hms: datetime(2030, 3, 1, *hms, tzinfo=UTC) + timedelta(days=day),
    st.integers(0, 3),
    st.sampled_from(MIDNIGHT),
)
issues = st.tuples(
    st.just("issue"),
    moments,
    st.integers(0, 1),
    st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3, unique=True),
    st.sampled_from(ISSUERS),
)
orders = st.tuples(
    st.just("order"),
    moments,
    st.sampled_from(MEMBERS),
    st.sampled_from(STORES),
    st.integers(0, 30_00),  # the threshold campaign's discount
    st.integers(0, 8_00),  # the member day's
    st.booleans(),  # with a coupon, when the member holds one
    st.sampled_from([timedelta(0), timedelta(seconds=1), timedelta(seconds=30)]),  # reserve to redeem
    st.booleans(),  # redeemed (else released)
    st.integers(0, 500_00),  # the order's amount to pay
    st.sampled_from([None, timedelta(seconds=1), timedelta(days=1)]),  # a return after
    st.integers(1, 100),  # the part of the threshold discount given back, in %
)
histories = st.lists(st.one_of(issues, orders), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def setup(campaign):
    """Campaigns and templates the histories use (drafts: they price no quote); the
    history so far, as the model expects it."""
    threshold = create(
        campaign,
        name="满减",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq",
        steps=[pb.ThresholdStep(threshold_fen=50_00, reduction_fen=5_00)],
    )
    member_day = create(
        campaign, name="会员日", kind=pb.CAMPAIGN_KIND_MEMBER_DAY, org_path="hq", rate_bp=9_500, weekdays=[3]
    )
    backing = create(campaign, name="券", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq")
    fixed = template(
        campaign, name="5元", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, campaign_id=backing.campaign_id, valid_days=1
    )
    pct = template(campaign, name="95折", kind=pb.COUPON_KIND_PERCENTAGE, rate_bp=9_500, cap_fen=9_00, valid_days=2)
    return {
        "campaigns": [threshold.campaign_id, member_day.campaign_id],
        "templates": [(fixed.template_id, 5_00), (pct.template_id, 0)],
        "model": defaultdict(lambda: defaultdict(int)),
        "firsts": set(),
        "held": [],  # [code, template_id, member, issue_path, valid_from, valid_until, available]
    }


async def play(database, setup, history) -> None:
    """Run a history through the use cases at its own times, each step in its own
    transaction as the servicers run them, and add what it should count to the model."""
    model, held = setup["model"], setup["held"]
    threshold, member_day = setup["campaigns"]
    for event in sorted(history, key=lambda e: e[1]):
        if event[0] == "issue":
            _, at, which, members, path = event
            template_id, face = setup["templates"][which]
            async with database.transaction() as tx:
                issued, _ = await issuing.issue(
                    tx, template_id=template_id, member_ids=members, now=at, issue_path=path
                )
            for c in issued:
                held.append(
                    [c.coupon_code, template_id, c.member_id, path, c.valid_from_time, c.valid_until_time, True]
                )
                model[("coupons", path, day_of(at), template_id)]["issued"] += 1
                out = model[("coupons_outstanding", path, expiry_of(c.valid_until_time), template_id)]
                out["coupons"] += 1
                out["face_fen"] += face
            continue
        _, at, member, store, own1, own2, with_coupon, delay, redeem, payable, back, part = event
        coupon = next((h for h in held if h[2] == member and h[6] and h[4] <= at < h[5]), None) if with_coupon else None
        adjustments = [
            pb.Adjustment(campaign_id=cid, amount_fen=fen)
            for cid, fen in ((threshold, own1), (member_day, own2))
            if fen
        ]
        coupon_fen = 0
        if coupon:
            coupon_fen = 5_00 if coupon[1] == setup["templates"][0][0] else 3_33
            adjustments.append(pb.Adjustment(coupon_code=coupon[0], amount_fen=coupon_fen))
        order_id = rid()
        ask = ReserveAsk(
            new_id("rs"),
            member,
            [coupon[0]] if coupon else [],
            order_id,
            store,
            timedelta(seconds=60),
            adjustments,
            payable,
        )
        async with database.transaction() as tx:
            (outcome,) = await reservations.reserve_many(tx, [ask], at)
        assert isinstance(outcome, datetime), outcome
        done = at + delay
        async with database.transaction() as tx:
            if redeem:
                (codes,) = await redemptions.redeem_many(tx, [ask.reservation_id], done)
                assert isinstance(codes, list), codes
            else:
                await reservations.release(tx, ask.reservation_id, done)
        if not redeem:
            continue
        for cid, fen in ((threshold, own1), (member_day, own2)):
            if fen:
                at_node = model[("campaigns", store, day_of(done), cid)]
                at_node["orders"] += 1
                at_node["discount_fen"] += fen
                at_node["sales_fen"] += payable
                if (cid, member) not in setup["firsts"]:
                    setup["firsts"].add((cid, member))
                    at_node["members"] += 1
        if coupon:
            coupon[6] = False
            used = model[("coupons", store, day_of(done), coupon[1])]
            used["redeemed"] += 1
            used["discount_fen"] += coupon_fen
            out = model[("coupons_outstanding", coupon[3], expiry_of(coupon[5]), coupon[1])]
            out["coupons"] -= 1
            out["face_fen"] -= 5_00 if coupon[1] == setup["templates"][0][0] else 0
        if back is not None and own1:
            given = max(1, own1 * part // 100)
            returned_at = done + back
            async with database.transaction() as tx:
                await returns.give_back(
                    tx, order_id, [pb.Adjustment(campaign_id=threshold, amount_fen=given)], returned_at
                )
            model[("campaigns", store, day_of(returned_at), threshold)]["returned_fen"] += given


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_random_histories_fold_to_the_raw_sums_and_the_rebuild(campaign_service, engine, setup, history):
    database = campaign_service.app.context.database
    campaign_service.run(play(database, setup, history), timeout=120)
    fold(campaign_service, engine)
    folded = dump(engine)
    ours = set(setup["campaigns"]) | {t for t, _ in setup["templates"]}
    assert day_rows(folded, ours) == nonzero(expanded(setup["model"]))  # as the model counted them
    assert day_rows(folded) == nonzero(raw_sums(engine))  # as the raw tables add up
    counted = campaign_service.run(reports.rebuild(database), timeout=120)
    assert counted > 0
    assert dump(engine) == folded  # the rebuild gives the same counters
    # months and years add up to the days
    for (name, path, grain, day, key), measures in folded.items():
        if grain == "M":
            days = [
                ms
                for (n, p, g, d, k), ms in folded.items()
                if (n, p, g, k) == (name, path, "D", key) and d.replace(day=1) == day
            ]
            assert {m: sum(x.get(m, 0) for x in days) for m in measures} == measures


def test_a_rebuild_of_an_empty_history_counts_nothing_twice(campaign_service, engine):
    """Folded, then rebuilt twice: the same counters each time, and the outbox empty."""
    fold(campaign_service, engine)
    before = dump(engine)
    database = campaign_service.app.context.database
    campaign_service.run(reports.rebuild(database))
    campaign_service.run(reports.rebuild(database))
    assert dump(engine) == before
    with engine.connect() as db:
        assert db.execute(select(func.count()).select_from(tables.outbox)).scalar() == 0


def test_a_member_counts_once_per_campaign_however_their_orders_are_batched(campaign, campaign_service, engine):
    """Two orders of one member redeemed in one batch, and a third alone: the campaign
    counts the member once, at the first of them (the unique key decides)."""
    offer = create(
        campaign,
        name="批量满减",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq",
        steps=[pb.ThresholdStep(threshold_fen=10_00, reduction_fen=1_00)],
    )
    at = datetime(2031, 5, 1, 15, 59, 59, tzinfo=UTC)
    database = campaign_service.app.context.database

    def ask(member):
        return ReserveAsk(
            new_id("rs"),
            member,
            [],
            rid(),
            STORE,
            timedelta(seconds=60),
            [pb.Adjustment(campaign_id=offer.campaign_id, amount_fen=1_00)],
            50_00,
        )

    async def run():
        asks = [ask(MEMBERS[0]), ask(MEMBERS[0]), ask(MEMBERS[1]), ask(MEMBERS[0])]
        async with database.transaction() as tx:
            assert all(isinstance(o, datetime) for o in await reservations.reserve_many(tx, asks, at))
        async with database.transaction() as tx:  # one batch across midnight
            await redemptions.redeem_many(tx, [a.reservation_id for a in asks[:3]], at + timedelta(seconds=1))
        async with database.transaction() as tx:
            await redemptions.redeem_many(tx, [asks[3].reservation_id], at + timedelta(seconds=2))

    campaign_service.run(run())
    fold(campaign_service, engine)
    t = tables.campaigns_rollup.table
    with engine.connect() as db:
        rows = db.execute(select(t).where(t.c.key == offer.campaign_id, t.c.path == "hq", t.c.grain == "D")).all()
    assert [(r.day, r.orders, r.members, r.sales_fen) for r in rows] == [(date(2031, 5, 2), 4, 2, 200_00)]


def test_concurrent_redemptions_of_one_member_count_them_once(campaign, campaign_service, engine, rollups):
    offer = create(
        campaign,
        name="并发满减",
        kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION,
        org_path="hq/west",
        steps=[pb.ThresholdStep(threshold_fen=10_00, reduction_fen=2_00)],
    )
    member = "m_" + "D" * 26
    held = [
        campaign.ReserveCoupons(
            pb.ReserveCouponsRequest(
                request_id=rid(),
                member_id=member,
                order_id=rid(),
                store_path=OTHER_STORE,
                ttl={"seconds": 60},
                adjustments=[pb.Adjustment(campaign_id=offer.campaign_id, amount_fen=2_00)],
                payable_fen=18_00,
            )
        ).reservation_id
        for _ in range(8)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda r: campaign.RedeemCoupons(pb.RedeemCouponsRequest(request_id=rid(), reservation_id=r)), held
            )
        )
    fold(campaign_service, engine)
    today = day_of(datetime.now(UTC))
    rows = query(
        rollups, "campaigns", "hq/west", today - timedelta(days=1), today + timedelta(days=1), keys=[offer.campaign_id]
    )
    assert rows == [
        ("hq/west", "", {"orders": 8, "discount_fen": 16_00, "sales_fen": 144_00, "members": 1, "returned_fen": 0})
    ]


def test_facts_from_before_the_rollups_are_backfilled_and_rebuilt(database_url):
    """A database at 0007 with a redeemed order and coupons: 0008 fills what the new
    columns say of them (issuing node, fixed value, own discounts, first members), and
    the rebuild counts them."""
    import json

    from sqlalchemy import text

    from huiyuan.database import engines as db, migrate
    from huiyuan.database.direct import Database
    from services.campaign.app import SPEC
    from tests.conftest import per_service

    url = per_service(database_url, "campaign").replace("campaign.db", "campaign-0007.db")
    schema = "campaign_0007"  # on PostgreSQL a schema of its own, at the old revision
    migrate.upgrade(SPEC.migrations_dir, url, schema, "0007")
    engine = db.make_sync_engine(url, schema)
    at = "2026-11-23 15:59:59+00:00"  # 23:59:59 in Shanghai
    body = {"kind": "FIXED", "amount_fen": 5_00, "org_path": "hq/east", "name": "5元"}
    with engine.begin() as connection:
        for campaign_id, kind in (("c_1", "THRESHOLD_REDUCTION"), ("c_2", "COUPONS")):
            connection.execute(
                text(
                    "INSERT INTO campaigns (campaign_id, kind, status, org_path, exclusive_group, body, create_time,"
                    " update_time) VALUES (:c, :k, 'ACTIVE', 'hq', '', '{}', :t, :t)"
                ),
                {"c": campaign_id, "k": kind, "t": at},
            )
        connection.execute(
            text("INSERT INTO coupon_templates VALUES ('ct_1', 'c_2', :b, :t)"), {"b": json.dumps(body), "t": at}
        )
        for coupon_id, state, reservation in (("cp_1", "REDEEMED", "rs_1"), ("cp_2", "AVAILABLE", None)):
            connection.execute(
                text(
                    "INSERT INTO coupons (coupon_id, coupon_code, template_id, member_id, state, reservation_id,"
                    " valid_from_time, valid_until_time, issue_time) VALUES (:c, :c, 'ct_1', 'm_1', :s, :r, :t,"
                    " '2026-12-01 16:00:00+00:00', :t)"
                ),
                {"c": coupon_id, "s": state, "r": reservation, "t": at},
            )
        for reservation in ("rs_1", "rs_2"):
            connection.execute(
                text("INSERT INTO reservations VALUES (:r, 'm_1', :r, 'hq/east/sh-001', 'CAPTURED', :t, :t)"),
                {"r": reservation, "t": at},
            )
            for campaign_id, fen in (("c_1", 20_00), ("c_2", 5_00)):
                connection.execute(
                    text(
                        "INSERT INTO campaign_uses (reservation_id, campaign_id, member_id, store_path, business_day,"
                        " amount_fen, state) VALUES (:r, :c, 'm_1', 'hq/east/sh-001', '2026-11-23', :a, 'CAPTURED')"
                    ),
                    {"r": reservation, "c": campaign_id, "a": fen},
                )
    migrate.upgrade(SPEC.migrations_dir, url, schema)
    with engine.begin() as connection:
        assert connection.execute(text("SELECT coupon_id, issue_path, face_fen FROM coupons ORDER BY 1")).all() == [
            ("cp_1", "hq/east", 5_00),
            ("cp_2", "hq/east", 5_00),
        ]
        assert connection.execute(
            text("SELECT reservation_id, campaign_id, own_fen FROM campaign_uses ORDER BY 1, 2")
        ).all() == [("rs_1", "c_1", 20_00), ("rs_1", "c_2", 0), ("rs_2", "c_1", 20_00), ("rs_2", "c_2", 0)]
        assert connection.execute(text("SELECT * FROM campaign_members")).all() == [("c_1", "m_1", "rs_1")]
    engine.dispose()

    async def rebuilt():
        database = Database(db.make_async_engine(url, schema), schema, 2)
        await database.open()
        try:
            assert await reports.rebuild(database) > 0
            async with database.reading() as tx:
                from huiyuan.database.rollups import Query

                day = date(2026, 11, 23)
                campaigns = await ROLLUPS.query(tx, Query("campaigns", "hq", day, day, by_key=True))
                coupons = await ROLLUPS.query(tx, Query("coupons", "hq/east", day, day, by_key=True))
                out = await ROLLUPS.query(tx, Query("coupons_outstanding", "hq", day, date(2026, 12, 31)))
        finally:
            await database.close()
            await database.engine.dispose()
        return campaigns, coupons, out

    campaigns, coupons, outstanding = asyncio.run(rebuilt())
    assert [(r.key, r.measures) for r in campaigns] == [
        ("c_1", {"orders": 2, "discount_fen": 40_00, "sales_fen": 0, "members": 1, "returned_fen": 0})
    ]
    assert [(r.key, r.measures) for r in coupons] == [
        ("ct_1", {"issued": 2, "redeemed": 1, "discount_fen": 0, "voided": 0})
    ]
    assert [r.measures for r in outstanding] == [{"coupons": 1, "face_fen": 5_00}]  # expiring 2 December (Shanghai)
