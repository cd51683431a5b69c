"""Wallet rules alone: splitting money to the fen, lots, packages."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, strategies as st

from huiyuan.runtime.errors import Violations
from huiyuan.runtime.money import split_proportionally, yuan
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.lots import Lot, draw_from_lots, undraw
from services.wallet.domain.packages import PackageStep, TopUpPackage, best_package, check_package
from services.wallet.domain.spend_policy import SpendPolicy, split_capture, split_refund, split_spend
from services.wallet.domain.top_ups import Tender

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "fen, printed",
    [(0, "¥0.00"), (5, "¥0.05"), (120_00, "¥120.00"), (123_456_78, "¥123,456.78"), (-5_00, "-¥5.00"), (-1, "-¥0.01")],
)
def test_an_amount_prints_as_a_till_prints_it(fen, printed):
    assert yuan(fen) == printed


@given(st.integers(-(10**15), 10**15))
def test_a_printed_amount_is_exact_to_the_fen_however_large(fen):  # a float would round the fen of 10**15
    assert int(yuan(fen).replace("¥", "").replace(",", "").replace(".", "")) == fen


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=6))
def test_a_proportional_split_adds_up_and_each_part_is_within_a_fen(amount, weights):
    parts = split_proportionally(amount, weights)
    assert sum(parts) == amount and all(p >= 0 for p in parts)
    if sum(weights):
        for part, weight in zip(parts, weights):
            assert abs(part - amount * weight / sum(weights)) < 1


@pytest.mark.parametrize(
    "policy, expected",
    [
        (SpendPolicy.PROPORTIONAL, (50, 10)),  # 100 principal : 20 bonus
        (SpendPolicy.PRINCIPAL_FIRST, (60, 0)),
        (SpendPolicy.BONUS_FIRST, (40, 20)),
    ],
)
def test_spend_policies(policy, expected):
    assert split_spend(60, MemberAccounts("m", principal=100, bonus=20), policy) == expected


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.data())
def test_a_spend_never_takes_more_than_either_account_has(principal, bonus, data):
    accounts = MemberAccounts("m", principal=principal, bonus=bonus)
    amount = data.draw(st.integers(0, principal + bonus))
    for policy in SpendPolicy:
        p, b = split_spend(amount, accounts, policy)
        assert p + b == amount and 0 <= p <= principal and 0 <= b <= bonus


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.data())
def test_partial_refunds_return_exactly_what_was_taken(captured_principal, captured_bonus, data):
    captured = captured_principal + captured_bonus
    refunded, back_p, back_b = 0, 0, 0
    for i in range(8):  # up to seven partial refunds, then the rest
        if refunded == captured:
            break
        amount = captured - refunded if i == 7 else data.draw(st.integers(1, captured - refunded))
        p, b = split_refund(refunded, amount, captured_principal, captured_bonus)
        assert p >= 0 and b >= 0 and p + b == amount
        refunded, back_p, back_b = refunded + amount, back_p + p, back_b + b
        assert back_p <= captured_principal and back_b <= captured_bonus
    assert (back_p, back_b) == (captured_principal, captured_bonus)


def test_three_refunds_of_a_third_lose_no_fen():
    # 100.00 taken as 83.33 principal and 16.67 bonus, refunded 33.33 + 33.33 + 33.34
    parts = [split_refund(before, amount, 8333, 1667) for before, amount in [(0, 3333), (3333, 3333), (6666, 3334)]]
    assert sum(p for p, _ in parts) == 8333 and sum(b for _, b in parts) == 1667


def test_lots_are_drawn_oldest_first_and_refunds_go_back_to_them():
    lots = [Lot("t1", "hq/east/a", 100, 20), Lot("t2", "hq/south/b", 100, 0)]
    draws = draw_from_lots(lots, 150, 20)
    assert [(d.lot_id, d.loaded_store_path, d.principal, d.bonus) for d in draws] == [
        ("t1", "hq/east/a", 100, 20),
        ("t2", "hq/south/b", 50, 0),
    ]
    back = undraw(draws, 60, 5)
    assert [(d.lot_id, d.principal, d.bonus) for d in back] == [("t2", 50, 0), ("t1", 10, 5)]


def _package(package_id, org_path, steps, **kw):
    return TopUpPackage(package_id, f"充值{package_id}", org_path, [PackageStep(t, b) for t, b in steps], **kw)


def test_the_highest_step_reached_applies_and_packages_do_not_stack():
    stepped = _package("p1", "hq", [(100_00, 20_00), (500_00, 150_00)])
    region = _package("p2", "hq/east", [(100_00, 25_00)])
    assert stepped.bonus_for(99_99) == 0 and stepped.bonus_for(300_00) == 20_00 and stepped.bonus_for(500_00) == 150_00
    cash = Tender.CASH
    assert best_package([stepped, region], "hq/east/sh-001", 300_00, NOW, cash) == (region, 25_00)
    assert best_package([stepped, region], "hq/south/gz-001", 300_00, NOW, cash) == (stepped, 20_00)
    assert best_package([stepped, region], "hq/east/sh-001", 600_00, NOW, cash) == (stepped, 150_00)


def test_a_company_batch_gets_only_a_package_that_names_it():
    shelf = _package("p1", "hq", [(100_00, 20_00)])  # no tenders named: the till's and online
    corporate = _package("p2", "hq", [(100_00, 5_00)], tenders=(Tender.ENTERPRISE,))
    online_only = _package("p3", "hq", [(100_00, 30_00)], tenders=(Tender.ONLINE,))

    def offer(tender, *packages):
        return best_package(list(packages), "hq/east/sh-001", 100_00, NOW, tender)

    assert offer(Tender.ENTERPRISE, shelf) is None
    assert offer(Tender.ENTERPRISE, shelf, corporate, online_only) == (corporate, 5_00)
    assert offer(Tender.ALIPAY, shelf, corporate, online_only) == (shelf, 20_00)
    assert offer(Tender.ONLINE, shelf, corporate, online_only) == (online_only, 30_00)


def test_a_package_applies_only_in_its_dates_and_stores():
    package = _package("p", "hq/east", [(100, 10)], start_time=NOW, end_time=NOW + timedelta(days=7))
    assert package.applies("hq/east/sh-001", NOW)
    assert not package.applies("hq/east/sh-001", NOW - timedelta(seconds=1))
    assert not package.applies("hq/east/sh-001", NOW + timedelta(days=7))
    assert not package.applies("hq/eastern/x-1", NOW)


def test_bad_packages_list_every_problem():
    v = Violations()
    check_package(
        v, _package("p", "hq", [(100, 200), (50, 10)], start_time=NOW, end_time=NOW, tenders=(Tender.CASH, Tender.CASH))
    )
    assert {(x.field, x.reason) for x in v.items} == {
        ("package.steps[0].bonus_fen", "BONUS_INVALID"),
        ("package.steps", "STEPS_NOT_ASCENDING"),
        ("package.steps", "BONUS_NOT_ASCENDING"),
        ("package.end_time", "DATES_REVERSED"),
        ("package.tenders", "TENDERS_REPEATED"),
    }


@given(
    st.lists(st.tuples(st.sampled_from(["top_up", "hold", "capture", "release"]), st.integers(1, 50_00)), max_size=40)
)
def test_accounts_and_lots_agree_over_any_sequence(operations):
    """A model of the wallet's bookkeeping: whatever happens, no account goes below
    zero and the lots hold exactly the posted balance."""
    accounts, lots, holds = MemberAccounts("m"), [], []
    for i, (op, amount) in enumerate(operations):
        if op == "top_up":
            accounts.principal += amount
            accounts.bonus += amount // 5
            lots.append(Lot(f"t{i:03d}", "hq/east/a", amount, amount // 5))
        elif op == "hold" and accounts.available >= amount:
            p, b = split_spend(amount, accounts, SpendPolicy.PROPORTIONAL)
            accounts.held_principal += p
            accounts.held_bonus += b
            holds.append((p, b))
        elif op in ("capture", "release") and holds:
            p, b = holds.pop(0)
            accounts.held_principal -= p
            accounts.held_bonus -= b
            if op == "capture":
                cp, cb = split_capture(min(amount, p + b), p, b)
                draw_from_lots(lots, cp, cb)
                accounts.principal -= cp
                accounts.bonus -= cb
        accounts.check()
        assert sum(lot.principal_left for lot in lots) == accounts.principal
        assert sum(lot.bonus_left for lot in lots) == accounts.bonus
