"""The wallet's rollups (services/wallet/domain/reports.py): recorded with each ledger
entry, top-up and count card entry through the real RPCs, folded, read through
RollupService.QueryRollups, checked against hand-computed figures and against sums over
the raw tables, and rebuilt from the raw records to the same counters; on SQLite and
PostgreSQL."""

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from huiyuan.common.v1 import actor_pb2
from huiyuan.database.engines import make_sync_engine
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import count_card_pb2 as cpb, count_card_pb2_grpc, wallet_pb2 as pb, wallet_pb2_grpc
from services.wallet.domain import count_cards as card_rules
from services.wallet.servicers import count_cards as card_servicer, wallet as wallet_servicer
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.storage.tables import count_card_entries, count_cards, entries, lots, member_accounts, top_ups
from services.wallet.use_cases.reports import rebuild
from tests.invariants import assert_books_balance
from tests.rollup_support import Clock, assert_rebuild_equals_incremental, by_key, fold, query, total
from tests.support import refusal, rid

HQ = actor_pb2.Actor(operator_id="hq-finance", org_path="hq")
D = date(2027, 3, 10)  # a day ahead of the real clock: the sweeper lapses no hold of these tests
NOON = datetime(2027, 3, 10, 4, tzinfo=UTC)  # 12:00 in Shanghai
BEFORE_MIDNIGHT = datetime(2027, 3, 10, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on the 10th
AFTER_MIDNIGHT = datetime(2027, 3, 10, 16, 0, 0, tzinfo=UTC)  # 00:00:00 on the 11th
FAR = date(2030, 1, 1)  # as of a day after every fact of these tests


@pytest.fixture(scope="module")
def wallet(wallet_service):
    return wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)


@pytest.fixture(scope="module")
def cards(wallet_service):
    return count_card_pb2_grpc.CountCardServiceStub(wallet_service.channel)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch, wallet_servicer, card_servicer).at(NOON)


def region() -> str:
    """A region no other test writes under, so its figures are this test's alone."""
    return f"hq/r{new_id('x')[-8:].lower()}"


def actor(path, operator="cashier-07"):
    return actor_pb2.Actor(operator_id=operator, org_path=path)


def top_up(wallet, member, amount, store, till=None, cashier=""):
    return wallet.TopUp(
        pb.TopUpRequest(
            request_id=rid(),
            member_id=member,
            amount_fen=amount,
            tender=pb.TENDER_CASH,
            store_path=store,
            actor=actor(till or store),
            cashier_id=cashier,
        )
    )


def spend(wallet, member, amount, store, captured=None):
    held = wallet.Hold(
        pb.HoldRequest(
            request_id=rid(),
            member_id=member,
            amount_fen=amount,
            ttl=Duration(seconds=600),
            store_path=store,
            order_id=f"o-{rid()[:8]}",
        )
    ).hold
    wallet.Capture(pb.CaptureRequest(request_id=rid(), hold_id=held.hold_id, amount_fen=captured or amount))
    return held.hold_id


def refund_spend(wallet, hold_id, amount, store):
    return wallet.RefundConsumption(
        pb.RefundConsumptionRequest(request_id=rid(), hold_id=hold_id, amount_fen=amount, store_path=store)
    )


def refund_top_up(wallet, top_up_id):
    return wallet.RefundTopUp(pb.RefundTopUpRequest(request_id=rid(), top_up_id=top_up_id, reason="退卡", actor=HQ))


def adjust(wallet, member, principal=0, bonus=0):
    return wallet.Adjust(
        pb.AdjustRequest(
            request_id=rid(),
            member_id=member,
            principal_delta_fen=principal,
            bonus_delta_fen=bonus,
            reason="x",
            actor=HQ,
        )
    )


def package(wallet, org, threshold, bonus):
    wallet.CreateTopUpPackage(
        pb.CreateTopUpPackageRequest(
            request_id=rid(),
            actor=HQ,
            package=pb.TopUpPackage(
                name="充送", org_path=org, steps=[pb.PackageStep(threshold_fen=threshold, bonus_fen=bonus)]
            ),
        )
    )


def plan(cards, org, uses, price):
    return cards.CreateCountCardPlan(
        cpb.CreateCountCardPlanRequest(
            request_id=rid(), actor=HQ, plan=cpb.CountCardPlan(name="次卡", org_path=org, uses=uses, price_fen=price)
        )
    ).plan.plan_id


def sell(cards, plan_id, store, member=None):
    return cards.SellCountCard(
        cpb.SellCountCardRequest(
            request_id=rid(),
            member_id=member or new_id("m"),
            plan_id=plan_id,
            store_path=store,
            tender=pb.TENDER_CASH,
            actor=actor(store),
        )
    ).card.card_id


def use(cards, card_id, store, uses=1):
    return cards.UseCountCard(
        cpb.UseCountCardRequest(request_id=rid(), card_id=card_id, uses=uses, store_path=store, actor=actor(store))
    ).use.entry_id


def undo(cards, use_id):
    cards.UndoCountCardUse(cpb.UndoCountCardUseRequest(request_id=rid(), use_id=use_id, reason="x", actor=HQ))


CHANGE_IDS = itertools.count(1)  # as the member service's: increasing, never reused


def move_home(wallet, member, home, change_id=None):
    """The member service's change of the member's home, as the gateway relays it."""
    return wallet.ApplyMemberHomes(
        pb.ApplyMemberHomesRequest(
            homes=[pb.MemberHome(change_id=change_id or next(CHANGE_IDS), member_id=member, home_store_path=home)]
        )
    )


def refund_card(cards, card_id):
    return cards.RefundCountCard(
        cpb.RefundCountCardRequest(request_id=rid(), card_id=card_id, reason="x", actor=HQ)
    ).refund_fen


# ---------------------------------------------------------------- sums over the raw tables


def raw(url):
    """The figures the rollups must agree with, read straight from the wallet's tables."""
    engine = make_sync_engine(url, "wallet")
    with engine.connect() as db:
        balances = db.execute(
            select(func.sum(member_accounts.c.principal_fen), func.sum(member_accounts.c.bonus_fen))
        ).one()
        by_store = {
            r.loaded_store_path: (int(r.principal), int(r.bonus))
            for r in db.execute(
                select(
                    lots.c.loaded_store_path,
                    func.sum(lots.c.principal_left_fen).label("principal"),
                    func.sum(lots.c.bonus_left_fen).label("bonus"),
                ).group_by(lots.c.loaded_store_path)
            )
        }
        entry_rows = db.execute(
            select(entries.c.kind, entries.c.principal_delta_fen, entries.c.bonus_delta_fen, entries.c.post_time)
        ).all()
        cards_rows = db.execute(select(count_cards)).all()
        card_entries = db.execute(select(count_card_entries.c.kind, count_card_entries.c.value_delta_fen)).all()
        top_up_rows = db.execute(select(top_ups)).all()
        a = member_accounts.c
        by_home = {
            r.home_store_path: (int(r.principal), int(r.bonus))
            for r in db.execute(
                select(
                    a.home_store_path,
                    func.sum(a.principal_fen).label("principal"),
                    func.sum(a.bonus_fen).label("bonus"),
                ).group_by(a.home_store_path)
            )
        }
    engine.dispose()
    return balances, by_store, entry_rows, cards_rows, card_entries, top_up_rows, by_home


def in_days(moment, first, last) -> bool:
    return day_start(first) <= moment < day_start(last + timedelta(days=1))


def assert_rollups_agree_with_the_tables(service, first, last):
    """As of FAR at hq, the balances and the value left on count cards; by key over
    first..last, the ledger's entries of those days and the top-ups; at every store, the
    value left in the lots it loaded."""
    fold(service, ROLLUPS)
    balances, by_store, entry_rows, cards_rows, card_entries, top_up_rows, by_home = raw(service.settings.database_url)
    held = query(service, "stored_value", "hq", FAR)
    assert (total(held, "principal_fen"), total(held, "bonus_fen")) == (int(balances[0] or 0), int(balances[1] or 0))
    # by home: every node above a home holds the balances of the members homed under it
    # (a member whose home the wallet does not know: at hq only)
    at_home = query(service, "stored_value_by_home", "hq", FAR)
    assert (total(at_home, "principal_fen"), total(at_home, "bonus_fen")) == (
        int(balances[0] or 0),
        int(balances[1] or 0),
    )
    for node in {n for home in by_home if home for n in (home, home.rpartition("/")[0])}:
        expected = [sum(v[i] for h, v in by_home.items() if h == node or h.startswith(node + "/")) for i in (0, 1)]
        rows = query(service, "stored_value_by_home", node, FAR)
        assert [total(rows, "principal_fen"), total(rows, "bonus_fen")] == expected, node
    for store, left in by_store.items():
        if store.count("/") == 2:  # a store (value added by hand is loaded at hq)
            rows = query(service, "stored_value", store, FAR)
            assert (total(rows, "principal_fen"), total(rows, "bonus_fen")) == left, store
    moved: dict[str, list[int]] = {}
    for kind, principal, bonus, at in entry_rows:
        if in_days(at, first, last):
            sums = moved.setdefault(kind, [0, 0])
            sums[0], sums[1] = sums[0] + principal, sums[1] + bonus
    rows = query(service, "stored_value", "hq", last, first, by_key=True)
    got = {k: [ms.get("principal_fen", 0), ms.get("bonus_fen", 0)] for (_, _, k), ms in rows.items()}
    assert {k: v for k, v in got.items() if any(v)} == {k: v for k, v in moved.items() if any(v)}

    left = sum(
        0 if c.refund_time else c.price_fen - card_rules.earned(c.price_fen, c.uses_total, c.uses_total - c.uses_left)
        for c in cards_rows
    )
    card_sums = query(service, "count_cards", "hq", FAR)
    assert total(card_sums, "unearned_fen") == left == sum(v for _, v in card_entries)
    kinds = {k: sum(v for kind, v in card_entries if kind == k) for k in ("SALE", "USE", "USE_UNDONE", "REFUND")}
    assert total(card_sums, "sold_fen") == kinds["SALE"]
    assert total(card_sums, "used_fen") == -(kinds["USE"] + kinds["USE_UNDONE"])
    assert total(card_sums, "refunded_fen") == -kinds["REFUND"]

    expected: dict[str, dict[str, int]] = {}
    for t in top_up_rows:
        if in_days(t.create_time, first, last):
            # (the cashier may be there already: a refund in the days of a top-up before them)
            e = expected.setdefault(t.cashier_id, {})
            for measure, value in (("top_ups", 1), ("principal_fen", t.principal_fen), ("bonus_fen", t.bonus_fen)):
                e[measure] = e.get(measure, 0) + value
        if t.refund_time and in_days(t.refund_time, first, last):
            e = expected.setdefault(t.cashier_id, {})
            e["refunds"] = e.get("refunds", 0) + 1
            e["refunded_fen"] = e.get("refunded_fen", 0) + t.principal_fen
    got = by_key(query(service, "top_ups", "hq", last, first, by_key=True))
    assert got == {k: {m: v for m, v in e.items() if v} for k, e in expected.items() if any(e.values())}


# ---------------------------------------------------------------- live


def test_stored_value_by_loading_store_and_kind_as_of_each_day(wallet, wallet_service, clock):
    r = region()
    a, b = f"{r}/a-001", f"{r}/b-001"
    package(wallet, r, 100_00, 20_00)
    member = new_id("m")
    clock.at(NOON)
    first = top_up(wallet, member, 200_00, a, till=f"{a}/pos-1", cashier="c1")
    assert first.bonus_fen == 20_00
    second = top_up(wallet, member, 50_00, b, till=f"{b}/pos-2", cashier="c2")
    clock.at(BEFORE_MIDNIGHT)
    top_up(wallet, new_id("m"), 10_00, b)  # no till, no cashier: at the store, key ""
    clock.at(AFTER_MIDNIGHT)
    refund_top_up(wallet, second.top_up_id)  # the 11th: from its own lot, at b
    spent = spend(wallet, member, 150_00, b, captured=120_00)  # from the lot a loaded
    refund_spend(wallet, spent, 20_00, b)
    adjust(wallet, member, principal=-10_00)
    adjust(wallet, member, bonus=3_00)  # loaded at hq
    fold(wallet_service, ROLLUPS)
    nxt = D + timedelta(days=1)

    def as_of(node, day):
        rows = query(wallet_service, "stored_value", node, day)
        return total(rows, "principal_fen"), total(rows, "bonus_fen")

    assert as_of(a, D) == (200_00, 20_00) and as_of(b, D) == (60_00, 0) and as_of(r, D) == (260_00, 20_00)
    assert as_of(b, nxt) == (10_00, 0)
    principal_a, bonus_a = as_of(a, nxt)
    assert principal_a + bonus_a == 220_00 - 120_00 + 20_00 - 10_00
    assert as_of(r, D - timedelta(days=1)) == (0, 0)
    on_the_11th = by_key(query(wallet_service, "stored_value", r, nxt, nxt, by_key=True))
    assert {k: sum(m.values()) for k, m in on_the_11th.items()} == {
        "TOP_UP_REFUND": -50_00,
        "CONSUMPTION": -120_00,
        "CONSUMPTION_REFUND": 20_00,
        "ADJUSTMENT": -10_00,
    }
    assert {
        k: sum(m.values()) for k, m in by_key(query(wallet_service, "stored_value", r, D, D, by_key=True)).items()
    } == {
        "TOP_UP": 260_00,
        "TOP_UP_BONUS": 20_00,
    }
    children = query(wallet_service, "stored_value", r, nxt, by_child=True)
    assert {p: sum(m.values()) for (p, _, _), m in children.items()} == {a: 110_00, b: 10_00}

    # top-ups: at the till that took them, by cashier; a refund on its own day
    tills = query(wallet_service, "top_ups", f"{a}/pos-1", nxt, D, by_key=True)
    assert by_key(tills) == {"c1": {"top_ups": 1, "principal_fen": 200_00, "bonus_fen": 20_00}}
    days = query(wallet_service, "top_ups", b, nxt, D, by_key=True, bucket=1)
    assert {(d, k): {m: v for m, v in ms.items() if v} for (_, d, k), ms in days.items()} == {
        (D, "c2"): {"top_ups": 1, "principal_fen": 50_00},
        (D, ""): {"top_ups": 1, "principal_fen": 10_00},
        (nxt, "c2"): {"refunds": 1, "refunded_fen": 50_00},
    }
    assert_books_balance(wallet_service.settings.database_url)
    assert_rollups_agree_with_the_tables(wallet_service, D, nxt)
    assert_rebuild_equals_incremental(wallet_service, "wallet", ROLLUPS, rebuild)


def test_stored_value_follows_the_member_s_home_as_the_wallet_learns_it(wallet, wallet_service, clock):
    r, r2 = region(), region()
    a, b, h1, h2 = f"{r}/a-001", f"{r}/b-001", f"{r}/h-001", f"{r2}/h-002"
    member, later = new_id("m"), new_id("m")
    nxt = D + timedelta(days=1)

    def at_home(node, day=D):
        rows = query(wallet_service, "stored_value_by_home", node, day)
        return total(rows, "principal_fen") + total(rows, "bonus_fen")

    clock.at(NOON)
    top_up(wallet, member, 100_00, a)  # its home not known yet: at the chain only
    fold(wallet_service, ROLLUPS)
    assert at_home(r) == 0 and at_home(h1) == 0
    first, second, third = next(CHANGE_IDS), next(CHANGE_IDS), next(CHANGE_IDS)
    moved = move_home(wallet, member, h1, first)
    assert (moved.applied, moved.balances_moved) == (1, 1)
    spend(wallet, member, 30_00, b)  # counts at the home known when posted
    fold(wallet_service, ROLLUPS)
    assert at_home(h1) == at_home(r) == 70_00
    clock.at(AFTER_MIDNIGHT)
    assert move_home(wallet, member, h2, third).balances_moved == 1  # to another region, on the 11th
    # the same change again, and an older one relayed late: nothing moves
    assert (move_home(wallet, member, h2, third).applied, move_home(wallet, member, h1, second).applied) == (0, 0)
    # a member homed before their first top-up counts at home from the first fen
    assert move_home(wallet, later, h2).balances_moved == 0
    top_up(wallet, later, 10_00, a)
    fold(wallet_service, ROLLUPS)
    assert (at_home(h1, D), at_home(h1, nxt), at_home(r, nxt)) == (70_00, 0, 0)
    assert (at_home(h2, D), at_home(h2, nxt), at_home(r2, nxt)) == (0, 80_00, 80_00)
    assert by_key(query(wallet_service, "stored_value_by_home", h2, nxt, nxt, by_key=True)) == {
        "HOME_MOVE": {"principal_fen": 70_00},
        "TOP_UP": {"principal_fen": 10_00},
    }
    # by the store that loaded it, nothing changed
    assert total(query(wallet_service, "stored_value", a, nxt), "principal_fen") == 80_00
    assert_books_balance(wallet_service.settings.database_url)
    assert_rollups_agree_with_the_tables(wallet_service, D, nxt)
    assert_rebuild_equals_incremental(wallet_service, "wallet", ROLLUPS, rebuild)


def test_a_member_with_no_home_store_counts_at_the_chain_and_one_id_may_serve_two_members(wallet, wallet_service):
    member, other, home = new_id("m"), new_id("m"), f"{region()}/h-001"
    top_up(wallet, member, 25_00, "hq/east/sh-001")
    move_home(wallet, member, home)
    shared = next(CHANGE_IDS)  # ids are the member service's: two members' may meet (a replay across a restore)
    both = wallet.ApplyMemberHomes(
        pb.ApplyMemberHomesRequest(
            homes=[
                pb.MemberHome(change_id=shared, member_id=member, home_store_path=""),  # home taken away
                pb.MemberHome(change_id=shared, member_id=other, home_store_path=home),
            ]
        )
    )
    assert (both.applied, both.balances_moved) == (2, 1)
    fold(wallet_service, ROLLUPS)
    assert total(query(wallet_service, "stored_value_by_home", home, FAR), "principal_fen") == 0
    assert_rollups_agree_with_the_tables(wallet_service, date(2020, 1, 1), FAR)
    assert_rebuild_equals_incremental(wallet_service, "wallet", ROLLUPS, rebuild)
    twice = [pb.MemberHome(change_id=next(CHANGE_IDS), member_id=other, home_store_path=home)] * 2
    code, reason, violations = refusal(wallet.ApplyMemberHomes, pb.ApplyMemberHomesRequest(homes=twice))
    assert (code, reason, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "CHANGE_ID_REPEATED",
        {"homes[1].change_id": "CHANGE_ID_REPEATED"},
    )


def test_one_home_change_applied_twice_at_once_moves_the_balance_once(wallet, wallet_service, clock):
    member, home = new_id("m"), f"{region()}/h-001"
    top_up(wallet, member, 40_00, "hq/east/sh-001")
    change = next(CHANGE_IDS)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: move_home(wallet, member, home, change), range(2)))
    assert sorted((x.applied, x.balances_moved) for x in answers) == [(0, 0), (1, 1)]
    fold(wallet_service, ROLLUPS)
    assert total(query(wallet_service, "stored_value_by_home", home, FAR), "principal_fen") == 40_00


@pytest.mark.parametrize(
    "home, field, reason",
    [
        (
            pb.MemberHome(change_id=0, member_id=new_id("m"), home_store_path="hq/e/s"),
            "homes[0].change_id",
            "CHANGE_ID_INVALID",
        ),
        (
            pb.MemberHome(change_id=1, member_id="x", home_store_path="hq/e/s"),
            "homes[0].member_id",
            "MEMBER_ID_INVALID",
        ),
        (
            pb.MemberHome(change_id=1, member_id=new_id("m"), home_store_path="hq//s"),
            "homes[0].home_store_path",
            "ORG_PATH_INVALID",
        ),
        (None, "homes", "HOMES_COUNT"),
    ],
)
def test_a_bad_home_is_refused_on_its_field_and_nothing_is_applied(wallet, home, field, reason):
    member = new_id("m")
    good = pb.MemberHome(change_id=next(CHANGE_IDS), member_id=member, home_store_path="hq/east/h-009")
    homes = [] if home is None else [home, good]
    code, got, violations = refusal(wallet.ApplyMemberHomes, pb.ApplyMemberHomesRequest(homes=homes))
    assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason) and violations.get(field) == reason
    assert move_home(wallet, member, "hq/east/h-009", good.change_id).applied == 1  # the good one was not applied


def test_count_cards_sold_used_refunded_and_unearned_by_selling_store_and_plan(cards, wallet_service, clock):
    r = region()
    a, b = f"{r}/a-001", f"{r}/b-001"
    plan_id = plan(cards, r, 3, 1000)
    clock.at(NOON)
    refunded = sell(cards, plan_id, a)
    kept = sell(cards, plan_id, a)
    used = use(cards, refunded, b)  # earns 333, sold at a: counted at a
    undo(cards, used)
    use(cards, refunded, b, uses=2)  # 666
    clock.at(AFTER_MIDNIGHT)
    assert refund_card(cards, refunded) == 334
    use(cards, kept, a)  # 333
    fold(wallet_service, ROLLUPS)
    nxt = D + timedelta(days=1)
    assert by_key(query(wallet_service, "count_cards", a, D, by_key=True)) == {
        plan_id: {"sold_fen": 2000, "used_fen": 666, "unearned_fen": 1334}
    }
    assert by_key(query(wallet_service, "count_cards", r, nxt, by_key=True)) == {
        plan_id: {"sold_fen": 2000, "used_fen": 999, "refunded_fen": 334, "unearned_fen": 667}
    }
    assert query(wallet_service, "count_cards", b, nxt) == {}  # used there, sold elsewhere
    assert_rollups_agree_with_the_tables(wallet_service, D, nxt)


def test_a_cashier_id_longer_than_64_characters_is_refused(wallet):
    request = pb.TopUpRequest(
        request_id=rid(),
        member_id=new_id("m"),
        amount_fen=1_00,
        tender=pb.TENDER_CASH,
        store_path="hq/east/sh-001",
        actor=actor("hq/east/sh-001"),
        cashier_id="x" * 65,
    )
    code, reason, violations = refusal(wallet.TopUp, request)
    assert (code, reason, violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "CASHIER_ID_TOO_LONG",
        {"cashier_id": "CASHIER_ID_TOO_LONG"},
    )


# ---------------------------------------------------------------- random histories

MOMENTS = [
    datetime(2027, 4, 1, 15, 59, 59, tzinfo=UTC),
    datetime(2027, 4, 1, 16, 0, 0, tzinfo=UTC),
    datetime(2027, 4, 2, 15, 59, 59, tzinfo=UTC),
    datetime(2027, 4, 2, 16, 0, 0, tzinfo=UTC),
]
STORES = ["hq/east/p-001", "hq/west/p-002"]
HOMES = ["hq/east/h-001", "hq/east/h-002", "hq/west/h-003"]
OPERATION = st.tuples(
    st.sampled_from(
        ["top_up", "spend", "refund_spend", "refund_top_up", "adjust", "sell", "use", "undo", "refund_card", "home"]
    ),
    st.integers(0, len(MOMENTS) - 1),
    st.integers(1, 300_00),
    st.integers(0, 1),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATION, min_size=1, max_size=12))
def test_random_histories_around_midnight_agree_with_the_tables_and_the_rebuild(
    wallet, cards, wallet_service, clock, operations
):
    member = new_id("m")
    plan_id = plan(cards, "hq", 4, 999)
    done_top_ups, spends, card_ids, uses = [], [], [], []
    for name, moment, amount, which in sorted(operations, key=lambda o: o[1]):
        clock.at(MOMENTS[moment])
        store = STORES[which]
        try:
            if name == "top_up":
                done_top_ups.append(
                    top_up(wallet, member, amount, store, f"{store}/pos-{which}", f"c{which}").top_up_id
                )
            elif name == "spend":
                spends.append((spend(wallet, member, amount // 3 + 1, store), amount // 3 + 1))
            elif name == "refund_spend" and spends:
                hold_id, spent = spends[-1]
                refund_spend(wallet, hold_id, min(amount, spent) // 2 + 1, store)
            elif name == "refund_top_up" and done_top_ups:
                refund_top_up(wallet, done_top_ups.pop(0))
            elif name == "adjust":
                adjust(wallet, member, principal=max(amount // 5, 1) * (1 if which else -1))
            elif name == "sell":
                card_ids.append(sell(cards, plan_id, store, member))
            elif name == "use" and card_ids:
                uses.append(use(cards, card_ids[-1], store))
            elif name == "undo" and uses:
                undo(cards, uses.pop())
            elif name == "refund_card" and card_ids:
                refund_card(cards, card_ids.pop(0))
            elif name == "home":  # to a store of either region, or back where it was
                move_home(wallet, member, HOMES[(amount + which) % len(HOMES)])
        except grpc.RpcError as refused:  # not enough left, a card used up or refunded: nothing moved
            assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, refused
    assert_books_balance(wallet_service.settings.database_url)
    assert_rollups_agree_with_the_tables(wallet_service, date(2027, 4, 1), date(2027, 4, 3))
    assert_rollups_agree_with_the_tables(wallet_service, date(2027, 4, 2), date(2027, 4, 2))
    assert_rebuild_equals_incremental(wallet_service, "wallet", ROLLUPS, rebuild)


# ---------------------------------------------------------------- the domain functions


def test_each_fact_counts_on_its_business_day_in_chain_time():
    from services.wallet.domain import reports
    from services.wallet.domain.top_ups import Tender, TopUp

    entry, at_home = reports.entry_contributions("CONSUMPTION", -3, -1, "hq/e/s", BEFORE_MIDNIGHT, "hq/w/h")
    assert (entry.rollup, entry.path, entry.day, entry.key) == ("stored_value", "hq/e/s", D, "CONSUMPTION")
    assert dict(entry.measures) == {"principal_fen": -3, "bonus_fen": -1}
    assert (at_home.rollup, at_home.path, at_home.day, at_home.key) == (
        "stored_value_by_home",
        "hq/w/h",
        D,
        "CONSUMPTION",
    )
    entry, at_home = reports.entry_contributions("CONSUMPTION", -3, -1, "hq/e/s", AFTER_MIDNIGHT, "")
    assert entry.day == D + timedelta(days=1) and at_home.path == "hq"  # home not known: the chain only
    loaded = TopUp("t", "m", 100, 20, Tender.CASH, "", "hq/e/s", create_time=BEFORE_MIDNIGHT, cashier_id="c9")
    (made,) = reports.top_up_contributions(loaded)
    assert (made.path, made.day, made.key) == ("hq/e/s", D, "c9")
    loaded.till_path = "hq/e/s/pos-1"
    (back,) = reports.top_up_refund_contributions(loaded, AFTER_MIDNIGHT)
    assert (back.path, back.day, dict(back.measures)) == (
        "hq/e/s/pos-1",
        D + timedelta(days=1),
        {"refunds": 1, "refunded_fen": 100},
    )
    measures = {
        kind: dict(reports.card_entry_contributions(kind, value, "hq/e/s", "ccp", NOON)[0].measures)
        for kind, value in [("SALE", 900), ("USE", -300), ("USE_UNDONE", 300), ("REFUND", -600)]
    }
    assert measures == {
        "SALE": {"sold_fen": 900, "unearned_fen": 900},
        "USE": {"used_fen": 300, "unearned_fen": -300},
        "USE_UNDONE": {"used_fen": -300, "unearned_fen": 300},
        "REFUND": {"refunded_fen": 600, "unearned_fen": -600},
    }
