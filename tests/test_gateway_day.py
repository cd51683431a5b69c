"""A store's day (日结) through the gateway: what each till tender took and gave back,
so that the drawer and each payment provider's statement can be checked at closing.
A store of its own, so that every figure is exact."""

from datetime import datetime

import grpc
import pytest
from google.type import date_pb2

from huiyuan.common.v1 import file_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, org_pb2
from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.money import yuan
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.support import Stubs, new_phone, pos_args, refusal_of, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share

DAY_STORE = "hq/east/sh-day"


@pytest.fixture(scope="module")
def day_store(chain, member_service):
    """A store with a till, its manager's and its terminal's keys."""
    stub, hq_key = chain
    org = Stubs(member_service.channel).org
    for parent, code, kind in (
        ("hq/east", "sh-day", org_pb2.ORG_NODE_KIND_STORE),
        (DAY_STORE, "pos-1", org_pb2.ORG_NODE_KIND_TERMINAL),
    ):
        org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=f"org-day-{code}",
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=code, name=code, kind=kind, time_zone="Asia/Shanghai"),
            )
        )
    manager = issue(stub, hq_key, DAY_STORE, pb.ROLE_STORE_MANAGER).api_key
    terminal = issue(stub, hq_key, f"{DAY_STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    return stub, manager, terminal, hq_key


def _today() -> date_pb2.Date:
    today = datetime.now(CHAIN_ZONE)
    return date_pb2.Date(year=today.year, month=today.month, day=today.day)


def test_a_store_s_day_says_what_each_tender_took_and_gave_back(day_store, member_service, monkeypatch, capsys):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    stub, manager, terminal, hq_key = day_store
    phone = new_phone()
    member = stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="日结会员", phone=phone)),
        metadata=as_(terminal),
    ).member

    def top_up(fen, tender):
        return stub.TopUp(
            pb.TopUpRequest(request_id=rid(), member_id=member.member_id, amount_fen=fen, tender=tender),
            metadata=as_(terminal),
        )

    by_wechat = top_up(100_00, pb.TENDER_KIND_WECHAT_PAY)
    assert by_wechat.receipt_lines[0] == "充值 ¥100.00 (微信支付)"
    in_cash = top_up(50_00, pb.TENDER_KIND_CASH)
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)
    wallet.RefundTopUp(
        wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=in_cash.top_up_id, reason="顾客退款"),
        metadata=as_(manager),
    )  # the ¥50 goes back to the drawer
    qr = (
        Stubs(member_service.channel)
        .member.IssueQrToken(
            member_pb2.IssueQrTokenRequest(  # the member app's
                member_id=member.member_id
            )
        )
        .qr_token
    )
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member.member_id,
            qr_token=qr,
            lines=[pb.CheckoutLine(line_id="1", sku="bun", category="bakery", quantity=2, unit_price_fen=15_00)],
            tenders=[
                pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=20_00),
                pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=10_00),
            ],
        ),
        metadata=as_(terminal),
    )
    back = stub.Refund(
        pb.RefundRequest(
            request_id=rid(), order_id=paid.receipt.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)]
        ),
        metadata=as_(terminal),
    )
    assert (back.stored_value_fen, [(t.kind, t.amount_fen) for t in back.tenders]) == (
        5_00,
        [(pb.TENDER_KIND_CASH, 10_00)],
    )  # each tender its share: cash paid two thirds
    batch = stub.BatchTopUp(
        pb.BatchTopUpRequest(
            request_id=rid(),
            batch_id=f"ACME-{rid()[:6]}",
            format=file_pb2.FILE_FORMAT_CSV,
            content=f"手机,金额(分)\n{phone},8800\n".encode(),
        ),
        metadata=as_(manager),
    )
    assert batch.applied_rows == 1

    request = pb.GetStoreDailySummaryRequest(date=_today())  # a manager's own store
    day = stub.GetStoreDailySummary(request, metadata=as_(manager))
    assert (day.store_path, day.orders, day.sales_fen) == (DAY_STORE, 1, 30_00)
    assert [(t.kind, t.sales_fen, t.top_up_fen, t.refunded_fen, t.net_fen) for t in day.takings] == [
        (pb.TENDER_KIND_CASH, 20_00, 50_00, 50_00 + 10_00, 10_00),
        (pb.TENDER_KIND_WECHAT_PAY, 0, 100_00, 0, 100_00),
    ]
    assert (day.enterprise_top_up_fen, day.online_top_up_fen) == (88_00, 0)
    assert day.top_up_fen == 100_00 + 88_00  # loaded, net of the refunded top-up
    assert day.top_up_bonus_fen == by_wechat.bonus_fen + in_cash.bonus_fen + batch.bonus_fen
    assert (
        stub.GetStoreDailySummary(
            pb.GetStoreDailySummaryRequest(store_path=DAY_STORE, date=_today()), metadata=as_(hq_key)
        )
        == day
    )

    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    from huiyuan_cli import pos

    assert pos.run(pos_args("day", "--key", manager)) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{DAY_STORE}  ")
    assert printed[1:3] == [
        "  orders 1  sales ¥30.00  discounts ¥0.00",
        f"  stored value loaded ¥188.00 (+ bonus {yuan(day.top_up_bonus_fen)}), spent ¥5.00",
    ]
    assert printed[4:] == [
        "  takings            sales     top-ups    refunded         net",
        "  cash              ¥20.00      ¥50.00      ¥60.00      ¥10.00",
        "  wechat-pay         ¥0.00     ¥100.00       ¥0.00     ¥100.00",
        "  not at a till: companies' batches ¥88.00, online ¥0.00",
    ]


def test_a_day_needs_a_store_and_a_whole_date_and_stays_in_scope(day_store):
    stub, manager, terminal, hq_key = day_store

    def refused(request, key):
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetStoreDailySummary(request, metadata=as_(key))
        return refusal_of(caught.value)

    assert refused(pb.GetStoreDailySummaryRequest(date=date_pb2.Date(year=2026, month=11)), hq_key)[2] == {
        "store_path": "STORE_PATH_REQUIRED",
        "date": "DATE_INVALID",
    }  # HQ names the store
    assert refused(pb.GetStoreDailySummaryRequest(store_path="hq/east/sh-001", date=_today()), manager)[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )
    assert refused(pb.GetStoreDailySummaryRequest(date=_today()), terminal)[:2] == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OUT_OF_SCOPE",
    )
