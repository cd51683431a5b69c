"""The wallet service through its generated stub, on SQLite and on PostgreSQL."""

import csv
import io
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2
from hypothesis import HealthCheck, given, settings, strategies as st

from huiyuan.common.v1 import actor_pb2, file_pb2
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import wallet_pb2 as pb, wallet_pb2_grpc
from tests.invariants import assert_books_balance
from tests.support import refusal, refusal_of, rid

SH, GZ = "hq/east/sh-001", "hq/south/gz-001"  # the package tests give these stores packages
BJ = "hq/north/bj-001"  # no package applies here
CASHIER = actor_pb2.Actor(operator_id="cashier-07", org_path=f"{SH}/pos-1")
HQ = actor_pb2.Actor(operator_id="hq-finance", org_path="hq")


@pytest.fixture(scope="module")
def wallet(wallet_service):
    stub = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    stub.url = wallet_service.settings.database_url
    return stub


def top_up(wallet, member_id, amount, store=BJ, **kw):
    return wallet.TopUp(
        pb.TopUpRequest(
            request_id=rid(),
            member_id=member_id,
            amount_fen=amount,
            tender=pb.TENDER_WECHAT_PAY,
            store_path=store,
            actor=CASHIER,
            **kw,
        )
    )


def hold(wallet, member_id, amount, ttl_s=60, store=BJ, request_id=None):
    request_id = request_id or rid()
    return wallet.Hold(
        pb.HoldRequest(
            request_id=request_id,
            member_id=member_id,
            amount_fen=amount,
            ttl=Duration(seconds=ttl_s),
            store_path=store,
            order_id=f"o-{request_id[:8]}",
        )
    ).hold


def capture(wallet, hold_id, amount):
    return wallet.Capture(pb.CaptureRequest(request_id=rid(), hold_id=hold_id, amount_fen=amount))


def balance(wallet, member_id):
    return wallet.GetBalance(pb.GetBalanceRequest(member_id=member_id)).balance


def test_top_up_applies_the_best_package_and_funds_are_usable_at_once(wallet):
    wallet.CreateTopUpPackage(
        pb.CreateTopUpPackageRequest(
            request_id=rid(),
            actor=HQ,
            package=pb.TopUpPackage(
                name="充100送20",
                org_path="hq/east",
                steps=[
                    pb.PackageStep(threshold_fen=100_00, bonus_fen=20_00),
                    pb.PackageStep(threshold_fen=500_00, bonus_fen=150_00),
                ],
            ),
        )
    )
    member = new_id("m")
    done = top_up(wallet, member, 300_00, store=SH)
    assert (done.principal_fen, done.bonus_fen) == (300_00, 20_00)
    assert [(p.name, p.bonus_fen) for p in done.applied_packages] == [("充100送20", 20_00)]
    recorded = wallet.GetTopUp(pb.GetTopUpRequest(top_up_id=done.top_up_id)).top_up
    assert (recorded.bonus_fen, list(recorded.applied_packages)) == (20_00, list(done.applied_packages))
    assert done.balance.available_fen == 320_00
    elsewhere = top_up(wallet, member, 300_00, store=GZ)  # the east package does not apply in the south
    assert elsewhere.bonus_fen == 0 and elsewhere.balance.available_fen == 620_00
    statement = wallet.ListEntries(pb.ListEntriesRequest(member_id=member)).entries
    assert [(e.kind, e.balance_after_fen) for e in statement] == [
        (pb.ENTRY_KIND_TOP_UP, 620_00),
        (pb.ENTRY_KIND_TOP_UP_BONUS, 320_00),
        (pb.ENTRY_KIND_TOP_UP, 300_00),
    ]
    assert_books_balance(wallet.url)


def test_a_package_ended_early_gives_no_bonus_from_then_and_each_office_lists_its_line(wallet):
    west, store = "hq/west", "hq/west/cd-001"
    region = actor_pb2.Actor(operator_id="west-ops", org_path=west)

    def create(name, org_path, threshold, bonus, **window):
        return wallet.CreateTopUpPackage(
            pb.CreateTopUpPackageRequest(
                request_id=rid(),
                actor=region,
                package=pb.TopUpPackage(
                    name=name,
                    org_path=org_path,
                    steps=[pb.PackageStep(threshold_fen=threshold, bonus_fen=bonus)],
                    **window,
                ),
            )
        ).package

    def listed(**where):
        return [p.package_id for p in wallet.ListTopUpPackages(pb.ListTopUpPackagesRequest(**where)).packages]

    tomorrow = Timestamp(seconds=int(time.time()) + 86_400)
    regional = create("充200送50", west, 200_00, 50_00)
    scheduled = create("本店充100送5", store, 100_00, 5_00, start_time=tomorrow)
    assert listed(org_path=west) == listed(org_path=store) == sorted([regional.package_id, scheduled.package_id])
    assert listed(store_path=store) == [regional.package_id]  # the till's view: what applies now
    assert not {regional.package_id, scheduled.package_id} & set(listed(org_path="hq/south"))

    member = new_id("m")
    first = top_up(wallet, member, 200_00, store=store)
    assert first.bonus_fen == 50_00 and first.applied_packages[0].package_id == regional.package_id
    end = pb.EndTopUpPackageRequest(request_id=rid(), package_id=regional.package_id, actor=region)
    ended = wallet.EndTopUpPackage(end).package
    assert ended.ended_by == "west-ops" and ended.end_time.seconds <= time.time() and ended.steps == regional.steps
    assert wallet.EndTopUpPackage(end).package == ended  # a replay
    assert wallet.GetTopUpPackage(pb.GetTopUpPackageRequest(package_id=regional.package_id)).package == ended
    assert top_up(wallet, member, 200_00, store=store).bonus_fen == 0
    assert regional.package_id not in listed(org_path=west) and regional.package_id in listed(
        org_path=west, show_ended=True
    )
    assert balance(wallet, member).bonus_fen == 50_00  # what it gave stands

    assert refusal(
        wallet.EndTopUpPackage,
        pb.EndTopUpPackageRequest(request_id=rid(), package_id=regional.package_id, actor=region),
    )[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "PACKAGE_ENDED")
    elsewhere = actor_pb2.Actor(operator_id="s", org_path="hq/south")
    assert refusal(
        wallet.EndTopUpPackage,
        pb.EndTopUpPackageRequest(request_id=rid(), package_id=scheduled.package_id, actor=elsewhere),
    )[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert refusal(
        wallet.EndTopUpPackage,
        pb.EndTopUpPackageRequest(
            request_id=rid(), package_id=scheduled.package_id, end_time=Timestamp(seconds=int(time.time()) - 60)
        ),
    )[2] == {"end_time": "END_TIME_PAST", "actor": "ACTOR_REQUIRED"}
    assert refusal(
        wallet.EndTopUpPackage, pb.EndTopUpPackageRequest(request_id=rid(), package_id=new_id("pk"), actor=region)
    )[:2] == (grpc.StatusCode.NOT_FOUND, "PACKAGE_NOT_FOUND")
    assert refusal(wallet.ListTopUpPackages, pb.ListTopUpPackagesRequest(store_path=store, org_path=west))[2] == {
        "org_path": "FILTERS_EXCLUSIVE"
    }
    cancelled = wallet.EndTopUpPackage(
        pb.EndTopUpPackageRequest(request_id=rid(), package_id=scheduled.package_id, actor=region)
    ).package
    assert cancelled.end_time == cancelled.start_time == tomorrow  # ended before it began: it never applied


def test_hold_capture_release(wallet):
    member = new_id("m")
    top_up(wallet, member, 100_00)
    first = hold(wallet, member, 60_00)
    assert balance(wallet, member).available_fen == 40_00
    refused = refusal(hold, wallet, member, 50_00)
    assert refused[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
    captured = capture(wallet, first.hold_id, 45_00)  # the other 15.00 goes back
    assert captured.hold.state == pb.HOLD_STATE_CAPTURED and captured.balance.available_fen == 55_00
    assert refusal(capture, wallet, first.hold_id, 1)[1] == "HOLD_ALREADY_CAPTURED"
    second = hold(wallet, member, 55_00)
    assert refusal(capture, wallet, second.hold_id, 55_01)[2] == {"amount_fen": "CAPTURE_EXCEEDS_HOLD"}
    released = wallet.Release(pb.ReleaseRequest(request_id=rid(), hold_id=second.hold_id)).hold
    assert released.state == pb.HOLD_STATE_RELEASED and balance(wallet, member).available_fen == 55_00
    assert refusal(capture, wallet, second.hold_id, 1)[1] == "HOLD_RELEASED"
    assert refusal(capture, wallet, "h_nope", 1)[:2] == (grpc.StatusCode.NOT_FOUND, "HOLD_NOT_FOUND")
    assert_books_balance(wallet.url)


def test_a_hold_lapses_at_its_deadline(wallet):
    member = new_id("m")
    top_up(wallet, member, 10_00)
    lapsing = hold(wallet, member, 10_00, ttl_s=1)
    time.sleep(1.2)
    assert refusal(capture, wallet, lapsing.hold_id, 10_00)[1] == "HOLD_EXPIRED"
    deadline = time.monotonic() + 5  # the sweeper gives the amount back within about a second
    while balance(wallet, member).held_fen and time.monotonic() < deadline:
        time.sleep(0.2)
    assert balance(wallet, member).available_fen == 10_00
    assert_books_balance(wallet.url)


def test_a_failed_request_id_stays_failed_and_a_replay_moves_nothing(wallet):
    member = new_id("m")
    request_id = rid()
    assert refusal(hold, wallet, member, 5_00, request_id=request_id)[1] == "INSUFFICIENT_BALANCE"
    top_up(wallet, member, 10_00)
    assert refusal(hold, wallet, member, 5_00, request_id=request_id)[1] == "INSUFFICIENT_BALANCE"  # sticky
    request = pb.TopUpRequest(
        request_id=rid(), member_id=member, amount_fen=1_00, tender=pb.TENDER_CASH, store_path=BJ, actor=CASHIER
    )
    first, again = wallet.TopUp(request), wallet.TopUp(request)
    assert first == again and balance(wallet, member).principal_fen == 11_00
    request.amount_fen = 2_00
    assert refusal(wallet.TopUp, request)[1] == "REQUEST_ID_REUSED"


def test_a_replayed_hold_or_capture_answers_as_the_first_did_and_moves_nothing(wallet):
    # A replay runs its effect again in a transaction that cannot commit: the hold's
    # replay could place a second hold, the capture's is refused (already captured).
    member, request_id = new_id("m"), rid()
    top_up(wallet, member, 10_00)
    first = hold(wallet, member, 4_00, request_id=request_id)
    assert hold(wallet, member, 4_00, request_id=request_id) == first
    assert balance(wallet, member).held_fen == 4_00
    request = pb.CaptureRequest(request_id=rid(), hold_id=first.hold_id, amount_fen=3_00)
    captured = wallet.Capture(request)
    assert wallet.Capture(request) == captured
    after = balance(wallet, member)
    assert (after.principal_fen, after.held_fen, after.available_fen) == (7_00, 0, 7_00)
    assert_books_balance(wallet.url)


def test_consumption_refunds_return_principal_and_bonus_in_the_proportions_taken(wallet):
    wallet.CreateTopUpPackage(
        pb.CreateTopUpPackageRequest(
            request_id=rid(),
            actor=HQ,
            package=pb.TopUpPackage(
                name="充50送10 华南", org_path="hq/south", steps=[pb.PackageStep(threshold_fen=50_00, bonus_fen=10_00)]
            ),
        )
    )
    member = new_id("m")
    top_up(wallet, member, 50_00, store=GZ)  # 50.00 principal + 10.00 bonus
    spent = capture(wallet, hold(wallet, member, 10_00, store=GZ).hold_id, 10_00)
    assert (spent.principal_fen, spent.bonus_fen) == (8_33, 1_67)
    back = [
        wallet.RefundConsumption(
            pb.RefundConsumptionRequest(request_id=rid(), hold_id=spent.hold.hold_id, amount_fen=amount, store_path=GZ)
        )
        for amount in (3_33, 3_33, 3_34)
    ]
    assert sum(r.principal_fen for r in back) == 8_33 and sum(r.bonus_fen for r in back) == 1_67
    after = balance(wallet, member)
    assert (after.principal_fen, after.bonus_fen) == (50_00, 10_00)
    more = pb.RefundConsumptionRequest(request_id=rid(), hold_id=spent.hold.hold_id, amount_fen=1, store_path=GZ)
    assert refusal(wallet.RefundConsumption, more)[1] == "REFUND_EXCEEDS_CAPTURE"
    assert_books_balance(wallet.url)


def test_a_top_up_refund_needs_the_value_to_still_be_there(wallet):
    member = new_id("m")
    first = top_up(wallet, member, 100_00, tender_reference="WX-889")
    record = wallet.GetTopUp(pb.GetTopUpRequest(top_up_id=first.top_up_id)).top_up
    assert (
        record.member_id,
        record.principal_fen,
        record.tender,
        record.tender_reference,
        record.store_path,
        record.operator_id,
    ) == (member, 100_00, pb.TENDER_WECHAT_PAY, "WX-889", BJ, "cashier-07")
    assert record.create_time.seconds > 0 and not record.HasField("refund_time")
    refund = pb.RefundTopUpRequest(request_id=rid(), top_up_id=first.top_up_id, reason="顾客退卡", actor=CASHIER)
    done = wallet.RefundTopUp(refund)
    assert (done.principal_fen, done.tender, done.tender_reference) == (100_00, pb.TENDER_WECHAT_PAY, "WX-889")
    assert done.balance.available_fen == 0
    refunded = wallet.GetTopUp(pb.GetTopUpRequest(top_up_id=first.top_up_id)).top_up
    assert refunded.refund_time.seconds >= record.create_time.seconds
    assert refusal(wallet.GetTopUp, pb.GetTopUpRequest(top_up_id="t_nope"))[:2] == (
        grpc.StatusCode.NOT_FOUND,
        "TOP_UP_NOT_FOUND",
    )
    assert refusal(wallet.GetTopUp, pb.GetTopUpRequest())[2] == {"top_up_id": "TOP_UP_ID_REQUIRED"}
    again = pb.RefundTopUpRequest(request_id=rid(), top_up_id=first.top_up_id, reason="again", actor=CASHIER)
    assert refusal(wallet.RefundTopUp, again)[1] == "TOP_UP_ALREADY_REFUNDED"
    second = top_up(wallet, member, 100_00)
    capture(wallet, hold(wallet, member, 30_00).hold_id, 30_00)
    spent = pb.RefundTopUpRequest(request_id=rid(), top_up_id=second.top_up_id, reason="退卡", actor=CASHIER)
    assert refusal(wallet.RefundTopUp, spent)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_BALANCE")
    assert_books_balance(wallet.url)


def test_adjustments_are_hq_only_and_need_a_reason(wallet):
    member = new_id("m")
    request = pb.AdjustRequest(request_id=rid(), member_id=member, bonus_delta_fen=5_00, reason="补偿", actor=CASHIER)
    assert refusal(wallet.Adjust, request)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ADJUSTMENT_HQ_ONLY")
    no_reason = pb.AdjustRequest(request_id=rid(), member_id=member, bonus_delta_fen=5_00, actor=HQ)
    assert refusal(wallet.Adjust, no_reason)[2] == {"reason": "REASON_REQUIRED"}
    done = wallet.Adjust(
        pb.AdjustRequest(request_id=rid(), member_id=member, bonus_delta_fen=5_00, reason="投诉补偿", actor=HQ)
    )
    assert done.balance.bonus_fen == 5_00
    take = pb.AdjustRequest(request_id=rid(), member_id=member, principal_delta_fen=-1, reason="x", actor=HQ)
    assert refusal(wallet.Adjust, take)[1] == "INSUFFICIENT_BALANCE"
    entry = wallet.ListEntries(pb.ListEntriesRequest(member_id=member)).entries[0]
    assert (entry.kind, entry.memo, entry.operator_id) == (pb.ENTRY_KIND_ADJUSTMENT, "投诉补偿", "hq-finance")


def test_a_statement_is_newest_first_across_kinds_and_pages_the_same_way(wallet):
    """Each kind of operation has its own id prefix (a_ adjustment, r_ refund, t_ top-up,
    ...): the statement follows time, not the ids, and its pages follow the same order."""
    member = new_id("m")
    top_up(wallet, member, 100_00)
    spent = capture(wallet, hold(wallet, member, 30_00).hold_id, 30_00)
    wallet.Adjust(pb.AdjustRequest(request_id=rid(), member_id=member, bonus_delta_fen=5_00, reason="补偿", actor=HQ))
    wallet.RefundConsumption(
        pb.RefundConsumptionRequest(request_id=rid(), hold_id=spent.hold.hold_id, amount_fen=10_00, store_path=BJ)
    )
    top_up(wallet, member, 1_00)
    newest_first = [
        pb.ENTRY_KIND_TOP_UP,
        pb.ENTRY_KIND_CONSUMPTION_REFUND,
        pb.ENTRY_KIND_ADJUSTMENT,
        pb.ENTRY_KIND_CONSUMPTION,
        pb.ENTRY_KIND_TOP_UP,
    ]
    statement = wallet.ListEntries(pb.ListEntriesRequest(member_id=member)).entries
    assert [e.kind for e in statement] == newest_first
    assert [e.balance_after_fen for e in statement] == [86_00, 85_00, 75_00, 70_00, 100_00]
    paged, token = [], ""
    while True:
        page = wallet.ListEntries(pb.ListEntriesRequest(member_id=member, page_size=2, page_token=token))
        paged += page.entries
        if not (token := page.next_page_token):
            break
    assert paged == list(statement)


def test_a_spend_across_twelve_lots_lists_its_entries_in_their_order(wallet):
    """A spend posts an entry per lot it draws on; with ten or more, the statement still
    follows them one by one (9 before 10), each with the balance after it."""
    member = new_id("m")
    for _ in range(12):
        top_up(wallet, member, 10_00)
    capture(wallet, hold(wallet, member, 120_00).hold_id, 120_00)
    statement = wallet.ListEntries(pb.ListEntriesRequest(member_id=member, kind=pb.ENTRY_KIND_CONSUMPTION)).entries
    assert [e.balance_after_fen for e in statement] == [n * 10_00 for n in range(12)]


def read_statement_in_posting_order(wallet, member, page_size=7) -> list:
    """The member's statement read page by page, after checking that it is newest first
    in posting order: numbered down to 1, each balance the one before it plus its
    change, from zero up to the member's balance now."""
    paged, token = [], ""
    while True:
        page = wallet.ListEntries(pb.ListEntriesRequest(member_id=member, page_size=page_size, page_token=token))
        paged += page.entries
        if not (token := page.next_page_token):
            break
    oldest_first = paged[::-1]
    balances = [0] + [e.balance_after_fen for e in oldest_first]
    assert [b + e.principal_delta_fen + e.bonus_delta_fen for b, e in zip(balances, oldest_first)] == balances[1:]
    now = balance(wallet, member)
    assert balances[-1] == now.principal_fen + now.bonus_fen
    assert [e.sequence for e in oldest_first] == list(range(1, len(paged) + 1))
    return paged


def test_concurrent_top_ups_and_spends_list_in_posting_order_page_by_page(wallet):
    """Top-ups and spends of one member at once, the spends captured in batches: the
    statement, read page by page, lists the entries newest first in the order they were
    posted, each balance the one before it plus its change."""
    member = new_id("m")
    top_up(wallet, member, 1_000_00)

    def spend(n):
        held = hold(wallet, member, 1_00 + n)
        capture(wallet, held.hold_id, 1_00 + n)

    work = [lambda n=n: top_up(wallet, member, 10_00 + n) for n in range(60)] + [
        lambda n=n: spend(n) for n in range(60)
    ]
    with ThreadPoolExecutor(24) as pool:
        for done in [pool.submit(w) for w in work]:
            done.result()
    statement = read_statement_in_posting_order(wallet, member)
    assert statement[0].balance_after_fen == 1_000_00 + sum(range(10_00, 10_60)) - sum(range(1_00, 1_60))
    assert sum(e.kind == pb.ENTRY_KIND_TOP_UP for e in statement) == 61
    assert len({e.entry_id for e in statement}) == len(statement)
    assert_books_balance(wallet.url)


def test_a_member_s_rows_of_one_batch_top_up_list_in_the_file_s_order(wallet):
    """Rows of a company's file that name one member are posted in one transaction, at
    one time: the statement still lists them in the file's order."""
    member = new_id("m")
    content = "member_id,amount_fen\n" + "".join(f"{member},{n * 100}\n" for n in range(1, 13))
    wallet.BatchTopUp(
        pb.BatchTopUpRequest(
            request_id=rid(),
            batch_id=f"corp-{rid()[:8]}",
            content=content.encode(),
            format=file_pb2.FILE_FORMAT_CSV,
            store_path=BJ,
            actor=CASHIER,
        )
    )
    statement = read_statement_in_posting_order(wallet, member, page_size=5)
    assert [e.principal_delta_fen for e in statement] == [n * 100 for n in range(12, 0, -1)]


def test_bad_input_names_every_bad_field_and_writes_nothing(wallet):
    member = new_id("m")
    bad = pb.HoldRequest(request_id="", member_id="someone", amount_fen=-5, ttl=Duration(seconds=7200), store_path="hq")
    assert refusal(wallet.Hold, bad)[2] == {
        "request_id": "REQUEST_ID_INVALID",
        "member_id": "MEMBER_ID_INVALID",
        "amount_fen": "AMOUNT_INVALID",
        "ttl": "TTL_OUT_OF_RANGE",
        "store_path": "STORE_PATH_INVALID",
    }
    bad_top_up = pb.TopUpRequest(request_id=rid(), member_id=member, amount_fen=1_00, tender=99, store_path=SH)
    assert refusal(wallet.TopUp, bad_top_up)[2] == {"tender": "TENDER_INVALID", "actor": "ACTOR_REQUIRED"}
    assert balance(wallet, member).available_fen == 0
    assert not wallet.ListEntries(pb.ListEntriesRequest(member_id=member)).entries
    assert refusal(wallet.ListEntries, pb.ListEntriesRequest(member_id=member, page_token="zz"))[2] == {
        "page_token": "PAGE_TOKEN_INVALID"
    }


def test_fifty_concurrent_holds_against_a_balance_for_ten(wallet):
    member = new_id("m")
    top_up(wallet, member, 10 * 7_00)
    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(lambda _: _try_hold(wallet, member, 7_00), range(50)))
    assert outcomes.count("ok") == 10 and outcomes.count("INSUFFICIENT_BALANCE") == 40
    after = balance(wallet, member)
    assert (after.held_fen, after.available_fen) == (70_00, 0)
    assert_books_balance(wallet.url)


def _try_hold(wallet, member, amount):
    try:
        hold(wallet, member, amount)
        return "ok"
    except grpc.RpcError as error:
        return refusal_of(error, "wallet.huiyuan")[1]


def test_batch_top_up_reports_each_row_and_a_rerun_applies_nothing_twice(wallet):
    members = [new_id("m") for _ in range(3)]
    out = io.StringIO()
    csv.writer(out).writerows(
        [["member_id", "amount_fen"], [members[0], "500"], [members[1], "abc"], ["nobody", "100"], [members[2], "700"]]
    )
    request = pb.BatchTopUpRequest(
        request_id=rid(),
        batch_id=f"corp-{rid()[:8]}",
        content=out.getvalue().encode(),
        format=file_pb2.FILE_FORMAT_CSV,
        store_path=BJ,
        actor=CASHIER,
    )
    report = wallet.BatchTopUp(request)
    assert (report.applied_rows, report.rejected_rows, report.total_fen) == (2, 2, 1200)
    assert [r.reject_reason for r in report.rows] == ["", "AMOUNT_INVALID", "MEMBER_ID_INVALID", ""]
    request.request_id = rid()  # the same batch again, as a new call
    rerun = wallet.BatchTopUp(request)
    assert rerun.applied_rows == 0 and [r.reject_reason for r in rerun.rows][::3] == ["ALREADY_APPLIED"] * 2
    assert balance(wallet, members[0]).principal_fen == 500 and balance(wallet, members[2]).principal_fen == 700


def test_runs_of_one_batch_at_the_same_time_apply_each_row_once(wallet):
    """A back office that sends its file twice at once: one run applies the rows, the
    others wait for it and report them ALREADY_APPLIED (no error, nothing twice)."""
    members = [new_id("m") for _ in range(100)]
    content = "member_id,amount_fen\n" + "".join(f"{m},100\n" for m in members)
    batch_id = f"corp-{rid()[:8]}"

    def run(_):
        return wallet.BatchTopUp(
            pb.BatchTopUpRequest(
                request_id=rid(),
                batch_id=batch_id,
                content=content.encode(),
                format=file_pb2.FILE_FORMAT_CSV,
                store_path=BJ,
                actor=CASHIER,
            )
        )

    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(run, range(4)))
    assert sorted(r.applied_rows for r in reports) == [0, 0, 0, 100]
    assert all({row.reject_reason for row in r.rows} == {"ALREADY_APPLIED"} for r in reports if not r.applied_rows)
    assert {balance(wallet, m).principal_fen for m in members} == {100}
    assert_books_balance(wallet.url)


def test_two_companies_batches_sharing_staff_run_at_once_without_a_deadlock(wallet):
    """Two batches at the same moment naming the same members in opposite orders (half
    of them new to the wallet). Each locks its members in member_id order, so neither
    waits for the other while holding what the other needs. Before, each locked them
    in file order and PostgreSQL broke the deadlock by failing one (UNAVAILABLE)."""
    members = [new_id("m") for _ in range(200)]
    for m in members[::2]:
        top_up(wallet, m, 1)

    def run(order):
        content = "member_id,amount_fen\n" + "".join(f"{m},100\n" for m in order)
        return wallet.BatchTopUp(
            pb.BatchTopUpRequest(
                request_id=rid(),
                batch_id=f"corp-{rid()[:8]}",
                content=content.encode(),
                format=file_pb2.FILE_FORMAT_CSV,
                store_path=BJ,
                actor=CASHIER,
            )
        )

    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(run, [members, members[::-1]]))
        assert [r.applied_rows for r in reports] == [200, 200]
    assert [balance(wallet, m).principal_fen for m in members] == [601 if i % 2 == 0 else 600 for i in range(200)]
    assert_books_balance(wallet.url)


def test_a_new_members_first_top_ups_at_once_all_land(wallet):
    """A member the wallet has never seen, topped up at the till and online at the same
    moment: each makes the member's accounts if they are missing. Before, the second
    failed on the accounts' key (INTERNAL on PostgreSQL)."""
    for _ in range(3):
        member = new_id("m")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: top_up(wallet, member, 100), range(8)))
        assert balance(wallet, member).principal_fen == 800
    assert_books_balance(wallet.url)


def test_a_company_batch_gets_only_the_package_made_for_companies(wallet):
    store, region = "hq/central/wh-001", actor_pb2.Actor(operator_id="central-ops", org_path="hq/central")

    def create(name, bonus, tenders=()):
        return wallet.CreateTopUpPackage(
            pb.CreateTopUpPackageRequest(
                request_id=rid(),
                actor=region,
                package=pb.TopUpPackage(
                    name=name,
                    org_path=store,
                    steps=[pb.PackageStep(threshold_fen=100_00, bonus_fen=bonus)],
                    tenders=tenders,
                ),
            )
        ).package

    shelf = create("充100送20", 20_00)
    assert list(shelf.tenders) == []
    member = new_id("m")

    def batch():
        content = f"member_id,amount_fen\n{member},10000\n".encode()
        return wallet.BatchTopUp(
            pb.BatchTopUpRequest(
                request_id=rid(),
                batch_id=f"corp-{rid()[:8]}",
                content=content,
                format=file_pb2.FILE_FORMAT_CSV,
                store_path=store,
                actor=region,
            )
        )

    first = batch()
    assert (first.applied_rows, first.bonus_fen) == (1, 0) and balance(
        wallet, member
    ).bonus_fen == 0  # not the company's
    assert top_up(wallet, member, 100_00, store=store).bonus_fen == 20_00  # while a member at the till gets it
    corporate = create("企业充100送3", 3_00, [pb.TENDER_ENTERPRISE])
    assert list(corporate.tenders) == [pb.TENDER_ENTERPRISE]
    assert wallet.GetTopUpPackage(pb.GetTopUpPackageRequest(package_id=corporate.package_id)).package == corporate
    report = batch()
    assert (report.applied_rows, report.bonus_fen, report.rows[0].bonus_fen) == (1, 3_00, 3_00)
    assert balance(wallet, member).bonus_fen == 23_00
    entries = wallet.ListEntries(pb.ListEntriesRequest(member_id=member, kind=pb.ENTRY_KIND_TOP_UP_BONUS)).entries
    assert [(e.bonus_delta_fen, e.memo) for e in entries] == [(3_00, "企业充100送3"), (20_00, "充100送20")]

    bad = pb.CreateTopUpPackageRequest(
        request_id=rid(),
        actor=region,
        package=pb.TopUpPackage(
            name="x",
            org_path=store,
            steps=[pb.PackageStep(threshold_fen=1, bonus_fen=1)],
            tenders=[pb.TENDER_CASH, pb.TENDER_UNSPECIFIED],
        ),
    )
    assert refusal(wallet.CreateTopUpPackage, bad)[2] == {"package.tenders": "TENDER_INVALID"}
    bad.package.tenders[:] = [pb.TENDER_CASH, pb.TENDER_CASH]
    assert refusal(wallet.CreateTopUpPackage, bad)[2] == {"package.tenders": "TENDERS_REPEATED"}
    assert [
        p.package_id for p in wallet.ListTopUpPackages(pb.ListTopUpPackagesRequest(org_path=store)).packages
    ] == sorted([shelf.package_id, corporate.package_id])  # the refused ones wrote nothing


def test_settlement_shows_who_owes_whom(wallet):
    member = new_id("m")
    top_up(wallet, member, 40_00, store="hq/west/cd-001")  # loaded in the west
    capture(
        wallet, hold(wallet, member, 30_00, store="hq/west/xa-001").hold_id, 30_00
    )  # spent at another western store
    today = date_pb2.Date(year=time.gmtime().tm_year, month=1, day=1)
    end = date_pb2.Date(year=time.gmtime().tm_year + 1, month=12, day=31)
    report = wallet.GetSettlement(pb.GetSettlementRequest(org_path="hq/west", start_date=today, end_date=end))
    assert [
        (p.store_path, p.loaded_here_spent_elsewhere_fen, p.loaded_elsewhere_spent_here_fen, p.net_fen)
        for p in report.positions
    ] == [("hq/west/cd-001", 30_00, 0, -30_00), ("hq/west/xa-001", 0, 30_00, 30_00)]
    reversed_dates = pb.GetSettlementRequest(org_path="hq/west", start_date=end, end_date=today)
    assert refusal(wallet.GetSettlement, reversed_dates)[2] == {"end_date": "DATES_REVERSED"}


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "hold", "capture", "release", "refund", "refund_top_up", "adjust"]),
        st.integers(1, 300_00),
    ),
    min_size=1,
    max_size=12,
)
ALLOWED_REFUSALS = {
    "INSUFFICIENT_BALANCE",
    "HOLD_ALREADY_CAPTURED",
    "HOLD_RELEASED",
    "REFUND_EXCEEDS_CAPTURE",
    "TOP_UP_ALREADY_REFUNDED",
    "HOLD_NOT_CAPTURED",
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_any_sequence_of_operations_keeps_the_books_balanced(wallet, operations):
    """Random sequences through the real service: a refusal is one of the expected
    reasons (never INTERNAL), the balance matches a model, and the books balance."""
    member = new_id("m")
    holds, captured, top_ups, expected = [], [], [], 0
    for op, amount in operations:
        try:
            if op == "top_up":
                top_ups.append(top_up(wallet, member, amount).top_up_id)
                expected += amount
            elif op == "hold":
                holds.append(hold(wallet, member, amount))
            elif op == "capture" and holds:
                done = capture(wallet, holds[-1].hold_id, min(amount, holds[-1].amount_fen))
                captured.append(done.hold.hold_id)
                expected -= done.principal_fen + done.bonus_fen
            elif op == "release" and holds:
                wallet.Release(pb.ReleaseRequest(request_id=rid(), hold_id=holds.pop().hold_id))
            elif op == "refund" and captured:
                back = wallet.RefundConsumption(
                    pb.RefundConsumptionRequest(
                        request_id=rid(), hold_id=captured[-1], amount_fen=amount, store_path=BJ
                    )
                )
                expected += back.principal_fen + back.bonus_fen
            elif op == "refund_top_up" and top_ups:
                back = wallet.RefundTopUp(
                    pb.RefundTopUpRequest(request_id=rid(), top_up_id=top_ups[-1], reason="r", actor=CASHIER)
                )
                expected -= back.principal_fen + back.bonus_fen
            elif op == "adjust":
                sign = -1 if amount % 2 else 1
                wallet.Adjust(
                    pb.AdjustRequest(
                        request_id=rid(), member_id=member, bonus_delta_fen=sign * amount, reason="盘点调整", actor=HQ
                    )
                )
                expected += sign * amount
        except grpc.RpcError as error:
            assert refusal_of(error, "wallet.huiyuan")[1] in ALLOWED_REFUSALS
        now = balance(wallet, member)
        assert now.principal_fen + now.bonus_fen == expected and now.available_fen >= 0
    assert_books_balance(wallet.url)


def test_entries_posted_before_the_sequence_are_numbered_in_the_statement_s_old_order(database_url, tmp_path, request):
    """Migration 0007: each member's entries numbered 1, 2, ... by (post time, entry id),
    the order the statement listed them in before, and the member's last_sequence set."""
    import sqlalchemy as sa

    from huiyuan.database import engines as db, migrate
    from services.wallet.app import SPEC
    from tests.conftest import database_of_its_own

    url = database_of_its_own(database_url, tmp_path, request, "wallet")
    migrate.upgrade(SPEC.migrations_dir, url, "wallet", "0006")
    engine = db.make_sync_engine(url, "wallet")
    t0, t1 = "2026-11-01 10:00:00", "2026-11-01 10:00:05"
    posted = [("t_2:0000", "m_a", t1), ("t_1:0001", "m_a", t0), ("t_1:0000", "m_a", t0), ("t_3:0000", "m_b", t0)]
    try:
        with engine.begin() as connection:
            for entry_id, member, at in posted:
                connection.execute(
                    sa.text(
                        "INSERT INTO entries (entry_id, operation_id, member_id, kind, principal_delta_fen, bonus_delta_fen,"
                        " balance_after_fen, counter_account, loaded_store_path, store_path, operator_id, policy, memo,"
                        " post_time) VALUES (:e, :o, :m, 'TOP_UP', 1, 0, 1, 'TENDER:x', 'x', 'x', 'op', '-', '', :t)"
                    ),
                    {"e": entry_id, "o": entry_id[:3], "m": member, "t": at},
                )
            for member in ("m_a", "m_b", "m_c"):
                connection.execute(
                    sa.text(
                        "INSERT INTO member_accounts (member_id, principal_fen, bonus_fen, held_principal_fen, held_bonus_fen,"
                        " update_time) VALUES (:m, 0, 0, 0, 0, :t)"
                    ),
                    {"m": member, "t": t0},
                )
        migrate.upgrade(SPEC.migrations_dir, url, "wallet")
        with engine.connect() as connection:
            numbered = connection.execute(sa.text("SELECT entry_id, sequence FROM entries ORDER BY entry_id")).all()
            last = connection.execute(
                sa.text("SELECT member_id, last_sequence FROM member_accounts ORDER BY member_id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in numbered] == [("t_1:0000", 1), ("t_1:0001", 2), ("t_2:0000", 3), ("t_3:0000", 1)]
    assert [tuple(r) for r in last] == [("m_a", 3), ("m_b", 1), ("m_c", 0)]
