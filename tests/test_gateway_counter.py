"""What a store's counter and a back office do beside a sale, through the gateway with
the services' own stubs: a card reported lost and replaced at any till, cancelled on a
manager's key, frozen by HQ, the points mall at the till, a top-up refunded on a manager's key at the store
that took it, corrections and a member's statement, and the stores' settlement seen by
each office; and the `huiyuan pos` commands for them."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.type import date_pb2

from huiyuan.common.v1 import actor_pb2, credential_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import card_pb2, card_pb2_grpc
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from tests.support import STORE, Stubs, card_type, pos_args, refusal_of, rid
from tests.test_gateway import as_, chain, code_and_reason as refused, issue  # noqa: F401 - chain is the fixture these tests share
from tests.test_gateway_config import EAST, GZ, HQ, REGION, SOUTH, STORE_MANAGER, TERMINAL, office  # noqa: F401


@pytest.fixture(scope="module")
def tills(office):
    """A terminal key in the east (the office's) and one in the south."""
    stub, keys, ids_by_field = office
    hq_key = keys[HQ]
    return {EAST: keys[TERMINAL], SOUTH: issue(stub, hq_key, f"{GZ}/pos-1", pb.ROLE_TERMINAL).api_key}


def new_card(member_service, member_id: str, at: str) -> str:
    """A card issued to the member at a store, straight from the member service; its number."""
    stubs = Stubs(member_service.channel)
    return stubs.card.IssueCard(
        card_pb2.IssueCardRequest(
            request_id=rid(),
            member_id=member_id,
            card_type_id=card_type(stubs),
            actor=actor_pb2.Actor(operator_id="t", org_path=at),
        )
    ).card.card_number


def test_a_card_lost_is_reported_at_any_till_refused_there_and_replaced(office, tills, member_service):
    stub, keys, ids_by_field = office
    member_id = ids_by_field["member_id"][EAST]
    stubs = Stubs(member_service.channel)
    number = new_card(member_service, member_id, STORE)
    cards = card_pb2_grpc.CardServiceStub(stub.channel)  # the member service's stub, aimed at the gateway
    lookup = pb.LookupMemberRequest(card_number=number)

    no_reason = card_pb2.ReportCardLostRequest(request_id=rid(), card_number=number)
    with pytest.raises(grpc.RpcError) as caught:
        cards.ReportCardLost(no_reason, metadata=as_(tills[SOUTH]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and refusal_of(caught.value)[2] == {
        "reason": "REQUIRED"
    }  # the member service's own reason for a missing field
    assert stub.LookupMember(lookup, metadata=as_(tills[EAST])).member.member_id == member_id  # still a card that pays
    lost = card_pb2.ReportCardLostRequest(request_id=rid(), card_number=number, reason="顾客来电挂失")
    assert (
        cards.ReportCardLost(lost, metadata=as_(tills[SOUTH])).card.state == card_pb2.CARD_STATE_LOST
    )  # another region's till
    assert cards.ReportCardLost(lost, metadata=as_(tills[SOUTH])).card.state == card_pb2.CARD_STATE_LOST  # a retry
    assert refused(stub.LookupMember, lookup, tills[EAST]) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_LOST")
    event = stubs.card.ListCardEvents(card_pb2.ListCardEventsRequest(card_number=number)).card_events[-1]
    assert event.operator_id.startswith("key:") and event.org_path == f"{GZ}/pos-1"  # the credential, not a claim
    found = card_pb2.CancelCardLossRequest(request_id=rid(), card_number=number, reason="卡已找到")
    assert cards.CancelCardLoss(found, metadata=as_(tills[EAST])).card.state == card_pb2.CARD_STATE_ACTIVE
    assert stub.LookupMember(lookup, metadata=as_(tills[EAST])).member.member_id == member_id

    cards.ReportCardLost(
        card_pb2.ReportCardLostRequest(request_id=rid(), card_number=number, reason="再次丢失"),
        metadata=as_(tills[EAST]),
    )
    replaced = cards.ReplaceCard(
        card_pb2.ReplaceCardRequest(request_id=rid(), card_number=number, reason="补卡"), metadata=as_(tills[EAST])
    )
    assert replaced.old_card.state == card_pb2.CARD_STATE_REPLACED and replaced.new_card.card_number != number
    again = stub.LookupMember(
        pb.LookupMemberRequest(card_number=replaced.new_card.card_number), metadata=as_(tills[SOUTH])
    )
    assert (
        again.member.member_id == member_id and again.stored_value_available_fen >= 50_00
    )  # the balance is the member's
    assert refused(stub.LookupMember, lookup, tills[EAST]) == (grpc.StatusCode.FAILED_PRECONDITION, "CARD_REPLACED")
    assert refused(
        cards.ReportCardLost, card_pb2.ReportCardLostRequest(request_id=rid(), card_number=number, reason="x")
    ) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIAL_REQUIRED")


def test_only_hq_freezes_a_card(office, tills, member_service):
    stub, keys, ids_by_field = office
    number = new_card(member_service, ids_by_field["member_id"][SOUTH], GZ)
    cards = card_pb2_grpc.CardServiceStub(stub.channel)
    freeze = card_pb2.FreezeCardRequest(request_id=rid(), card_number=number, reason="疑似盗刷")
    for role in (REGION, STORE_MANAGER, TERMINAL):
        assert refused(cards.FreezeCard, freeze, keys[role]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert cards.FreezeCard(freeze, metadata=as_(keys[HQ])).card.state == card_pb2.CARD_STATE_FROZEN
    assert refused(stub.LookupMember, pb.LookupMemberRequest(card_number=number), tills[SOUTH]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CARD_FROZEN",
    )
    cards.UnfreezeCard(
        card_pb2.UnfreezeCardRequest(request_id=rid(), card_number=number, reason="核实无误"), metadata=as_(keys[HQ])
    )
    assert stub.LookupMember(pb.LookupMemberRequest(card_number=number), metadata=as_(tills[SOUTH])).member.member_id


def test_a_card_is_cancelled_on_a_manager_s_key_and_the_balances_stay_with_the_member(office, tills, member_service):
    stub, keys, ids_by_field = office
    number = new_card(member_service, ids_by_field["member_id"][SOUTH], GZ)
    cards = card_pb2_grpc.CardServiceStub(stub.channel)
    before = stub.LookupMember(pb.LookupMemberRequest(card_number=number), metadata=as_(keys[STORE_MANAGER]))
    cancel = card_pb2.CancelCardRequest(request_id=rid(), card_number=number, reason="顾客要求销卡")
    assert refused(cards.CancelCard, cancel, tills[EAST]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert (
        refused(
            cards.CancelCard, card_pb2.CancelCardRequest(request_id=rid(), card_number=number), keys[STORE_MANAGER]
        )[0]
        == grpc.StatusCode.INVALID_ARGUMENT
    )  # a reason, or nothing changes
    assert stub.LookupMember(pb.LookupMemberRequest(card_number=number), metadata=as_(tills[EAST])).member.member_id
    done = cards.CancelCard(cancel, metadata=as_(keys[STORE_MANAGER]))  # an east store, a south member's card
    assert done.card.state == card_pb2.CARD_STATE_CANCELLED
    assert cards.CancelCard(cancel, metadata=as_(keys[STORE_MANAGER])) == done  # a retry
    assert refused(stub.LookupMember, pb.LookupMemberRequest(card_number=number), tills[EAST]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "CARD_CANCELLED",
    )
    by_phone = stub.LookupMember(pb.LookupMemberRequest(phone=before.member.phone), metadata=as_(tills[EAST]))
    assert (by_phone.stored_value_available_fen, by_phone.points_available) == (
        before.stored_value_available_fen,
        before.points_available,
    ) and by_phone.stored_value_available_fen > 0


def test_a_top_up_is_refunded_on_a_manager_s_key_at_its_store_and_nowhere_else(office, tills):
    stub, keys, ids_by_field = office
    member_id = ids_by_field["member_id"][EAST]
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)  # the wallet's stub, aimed at the gateway
    loaded = stub.TopUp(
        pb.TopUpRequest(
            request_id=rid(),
            member_id=member_id,
            amount_fen=200_00,
            tender=pb.TENDER_KIND_WECHAT_PAY,
            tender_reference="WX-4242",
        ),
        metadata=as_(tills[EAST]),
    )
    get = wallet_pb2.GetTopUpRequest(top_up_id=loaded.top_up_id)
    refund = wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=loaded.top_up_id, reason="顾客退款")
    assert refused(wallet.GetTopUp, get, tills[EAST]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert refused(wallet.RefundTopUp, refund, tills[EAST]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")

    why_not = wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=loaded.top_up_id)
    with pytest.raises(grpc.RpcError) as caught:  # a refund says why, or nothing moves
        wallet.RefundTopUp(why_not, metadata=as_(keys[STORE_MANAGER]))
    assert refusal_of(caught.value)[2] == {"reason": "REASON_REQUIRED"}
    record = wallet.GetTopUp(get, metadata=as_(keys[STORE_MANAGER])).top_up
    assert (record.principal_fen, record.store_path, record.tender_reference) == (200_00, STORE, "WX-4242")
    assert record.operator_id.startswith("key:") and not record.HasField("refund_time")
    done = wallet.RefundTopUp(refund, metadata=as_(keys[STORE_MANAGER]))
    assert (done.principal_fen, done.tender, done.tender_reference) == (200_00, wallet_pb2.TENDER_WECHAT_PAY, "WX-4242")
    assert wallet.RefundTopUp(refund, metadata=as_(keys[STORE_MANAGER])) == done  # a retry: paid back once
    assert done.balance.available_fen == loaded.stored_value_available_fen - 200_00
    assert wallet.GetTopUp(get, metadata=as_(keys[REGION])).top_up.HasField("refund_time")

    south = ids_by_field["top_up_id"][SOUTH]
    for call, request in (
        (wallet.GetTopUp, wallet_pb2.GetTopUpRequest(top_up_id=south)),
        (wallet.RefundTopUp, wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=south, reason="x")),
    ):
        for role in (STORE_MANAGER, REGION):  # the south's top-up is not there for the east, as a missing one
            assert refused(call, request, keys[role]) == (grpc.StatusCode.NOT_FOUND, "TOP_UP_NOT_FOUND")
    missing = wallet_pb2.GetTopUpRequest(top_up_id="t_" + "9" * 26)
    assert refused(wallet.GetTopUp, missing, keys[HQ]) == (grpc.StatusCode.NOT_FOUND, "TOP_UP_NOT_FOUND")


def test_a_till_lists_the_gifts_its_store_offers_and_hands_one_over_for_points(
    office, tills, points_service, member_service
):
    stub, keys, ids_by_field = office
    member_id, gifts = ids_by_field["member_id"][EAST], ids_by_field["gift_id"]  # 100 points each, 5 in stock
    card = credential_pb2.PaymentCredential(card_number=new_card(member_service, member_id, STORE))  # the member's
    points_pb2_grpc.PointsServiceStub(points_service.channel).Grant(
        points_pb2.GrantRequest(
            request_id=rid(), member_id=member_id, points=250, source=points_pb2.LOT_SOURCE_CAMPAIGN, store_path=STORE
        )
    )
    points = points_pb2_grpc.PointsServiceStub(stub.channel)  # the points service's stub, aimed at the gateway
    offered = {g.gift_id for g in points.ListGifts(points_pb2.ListGiftsRequest(), metadata=as_(tills[EAST])).gifts}
    assert gifts[EAST] in offered and gifts[SOUTH] not in offered

    redeem = points_pb2.RedeemGiftRequest(
        request_id=rid(), member_id=member_id, gift_id=gifts[EAST], quantity=2, credential=card
    )
    done = points.RedeemGift(redeem, metadata=as_(tills[EAST]))  # no store given: the till's own
    assert (done.points, done.stock_left, done.balance.available_points) == (200, 3, 50)
    assert points.RedeemGift(redeem, metadata=as_(tills[EAST])) == done  # a retry: handed over once
    more = points_pb2.RedeemGiftRequest(request_id=rid(), member_id=member_id, gift_id=gifts[EAST], credential=card)
    assert refused(points.RedeemGift, more, tills[EAST]) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_POINTS")
    stock = {
        g.gift_id: g.stock for g in points.ListGifts(points_pb2.ListGiftsRequest(), metadata=as_(tills[EAST])).gifts
    }
    assert stock[gifts[EAST]] == 3  # the refused redemption took no item
    south = points_pb2.RedeemGiftRequest(request_id=rid(), member_id=member_id, gift_id=gifts[SOUTH])
    assert refused(points.RedeemGift, south, tills[EAST]) == (grpc.StatusCode.NOT_FOUND, "GIFT_NOT_FOUND")
    elsewhere = points_pb2.RedeemGiftRequest(request_id=rid(), member_id=member_id, gift_id=gifts[EAST], store_path=GZ)
    assert refused(points.RedeemGift, elsewhere, tills[EAST]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert refused(points.RedeemGift, more, keys[REGION]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")


def test_corrections_stored_value_by_hq_points_by_the_member_s_region_and_each_on_the_statement(office):
    stub, keys, ids_by_field = office
    east, south = ids_by_field["member_id"][EAST], ids_by_field["member_id"][SOUTH]
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)
    points = points_pb2_grpc.PointsServiceStub(stub.channel)
    bonus = wallet_pb2.AdjustRequest(request_id=rid(), member_id=east, bonus_delta_fen=5_00, reason="投诉补偿")
    for role in (REGION, STORE_MANAGER):
        assert refused(wallet.Adjust, bonus, keys[role]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    done = wallet.Adjust(bonus, metadata=as_(keys[HQ]))
    assert wallet.Adjust(bonus, metadata=as_(keys[HQ])) == done  # a retry: corrected once
    ghost = wallet_pb2.AdjustRequest(request_id=rid(), member_id="m_" + "9" * 26, bonus_delta_fen=1, reason="x")
    assert refused(wallet.Adjust, ghost, keys[HQ]) == (
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )  # no value for nobody

    grant = points_pb2.AdjustRequest(request_id=rid(), member_id=east, delta_points=300, reason="活动补发")
    assert points.Adjust(grant, metadata=as_(keys[REGION])).balance.available_points >= 300
    theirs = points_pb2.AdjustRequest(request_id=rid(), member_id=south, delta_points=300, reason="活动补发")
    assert refused(points.Adjust, theirs, keys[REGION]) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")
    assert refused(points.Adjust, grant, keys[STORE_MANAGER]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert points.Adjust(theirs, metadata=as_(keys[HQ])).balance.available_points >= 300

    # each correction shows on the member's statement, for the offices over their home store
    statement = wallet.ListEntries(wallet_pb2.ListEntriesRequest(member_id=east), metadata=as_(keys[STORE_MANAGER]))
    assert [(e.kind, e.bonus_delta_fen, e.memo) for e in statement.entries[:1]] == [
        (wallet_pb2.ENTRY_KIND_ADJUSTMENT, 5_00, "投诉补偿")
    ]
    history = points.ListHistory(points_pb2.ListHistoryRequest(member_id=east), metadata=as_(keys[REGION]))
    assert history.movements[0].delta_points == 300
    for call, request in (
        (wallet.ListEntries, wallet_pb2.ListEntriesRequest(member_id=south)),
        (points.ListHistory, points_pb2.ListHistoryRequest(member_id=south)),
    ):
        assert refused(call, request, keys[STORE_MANAGER]) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")
        assert refused(call, request, keys[TERMINAL]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")


def load_in_the_east_spend_in_the_south(wallet_service, amount: int) -> None:
    """A member of their own loads amount at the east's store and spends it all in the south."""
    service = wallet_pb2_grpc.WalletServiceStub(wallet_service.channel)
    member_id = new_id("m")
    service.TopUp(
        wallet_pb2.TopUpRequest(
            request_id=rid(),
            member_id=member_id,
            amount_fen=amount,
            tender=wallet_pb2.TENDER_CASH,
            store_path=STORE,
            actor=actor_pb2.Actor(operator_id="t", org_path=STORE),
        )
    )
    held = service.Hold(
        wallet_pb2.HoldRequest(
            request_id=rid(),
            member_id=member_id,
            amount_fen=amount,
            ttl=Duration(seconds=60),
            store_path=GZ,
            order_id=f"o-{rid()[:8]}",
        )
    ).hold
    service.Capture(wallet_pb2.CaptureRequest(request_id=rid(), hold_id=held.hold_id, amount_fen=amount))


def test_each_office_reads_the_settlement_of_the_stores_under_it(office, wallet_service):
    stub, keys, ids_by_field = office
    load_in_the_east_spend_in_the_south(wallet_service, 10_00)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    period = {"start_date": _date(today - timedelta(days=1)), "end_date": _date(today + timedelta(days=1))}
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)

    def settlement(role, org_path=""):
        return {
            p.store_path: p
            for p in wallet.GetSettlement(
                wallet_pb2.GetSettlementRequest(org_path=org_path, **period), metadata=as_(keys[role])
            ).positions
        }

    chain_wide = settlement(HQ, "hq")
    assert chain_wide[STORE].loaded_here_spent_elsewhere_fen >= 10_00
    assert chain_wide[GZ].loaded_elsewhere_spent_here_fen >= 10_00
    assert sum(p.net_fen for p in chain_wide.values()) == 0  # what one store owes, another is owed
    east = settlement(REGION)  # the region's own node when none is given
    assert STORE in east and not any(path.startswith(SOUTH) for path in east)
    assert east[STORE] == chain_wide[STORE]
    with pytest.raises(grpc.RpcError) as caught:
        wallet.GetSettlement(
            wallet_pb2.GetSettlementRequest(start_date=period["end_date"], end_date=period["start_date"]),
            metadata=as_(keys[REGION]),
        )
    assert refusal_of(caught.value)[2] == {"end_date": "DATES_REVERSED"}
    for role, org_path in ((REGION, "hq"), (REGION, SOUTH), (STORE_MANAGER, EAST)):
        assert refused(
            wallet.GetSettlement, wallet_pb2.GetSettlementRequest(org_path=org_path, **period), keys[role]
        ) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")


def _date(day) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def test_the_pos_command_at_the_counter_and_in_the_back_office(
    office, tills, member_service, wallet_service, points_service, monkeypatch, capsys
):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan_cli import pos

    stub, keys, ids_by_field = office
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    member_id = ids_by_field["member_id"][EAST]
    number = new_card(member_service, member_id, STORE)

    def run(*words, key=tills[EAST]):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out

    assert run("report-lost", "--card", number, "--reason", "丢失") == f"card {number} lost; it can no longer pay\n"
    assert run("cancel-loss", "--card", number, "--reason", "找到了") == f"card {number} active\n"
    replaced = run("replace-card", "--card", number, "--new-card", "6200000000000042", "--reason", "卡片磨损")
    assert replaced == f"card {number} replaced by 6200000000000042; stored value and points stay with the member\n"
    with pytest.raises(SystemExit, match="needs --card"):
        run("report-lost", "--reason", "x")
    with pytest.raises(grpc.RpcError) as caught:  # 销卡 is a manager's
        run("cancel-card", "--card", "6200000000000042", "--reason", "销卡")
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")

    loaded = run("top-up", "--card", "6200000000000042", "--amount", "30", "--tender", "alipay")
    top_up_id = loaded.splitlines()[0].removeprefix("top-up ")
    refunded = run("refund-top-up", top_up_id, "--reason", "顾客退款", key=keys[STORE_MANAGER]).splitlines()
    assert refunded[0].startswith(f"top-up {top_up_id}  ") and f"{STORE}  ¥30.00 (alipay)  bonus ¥0.00" in refunded[0]
    assert refunded[1:] == ["refund ¥30.00 to alipay", refunded[2]] and refunded[2].startswith("bonus taken back ¥0.00")
    with pytest.raises(grpc.RpcError) as caught:  # a till's key does not pay prepaid money back
        run("refund-top-up", top_up_id, "--reason", "x")
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")

    gift = ids_by_field["gift_id"][EAST]
    points_pb2_grpc.PointsServiceStub(points_service.channel).Grant(
        points_pb2.GrantRequest(
            request_id=rid(), member_id=member_id, points=100, source=points_pb2.LOT_SOURCE_CAMPAIGN, store_path=STORE
        )
    )
    assert f"gift {gift}  {EAST} 杯  100 points  " in run("gifts")
    handed = run("redeem-gift", "--card", "6200000000000042", "--gift", gift).splitlines()
    assert handed[0].startswith(f"矩阵会员: 1 x gift {gift} for 100 points; ") and handed[1].startswith("points left ")
    with pytest.raises(SystemExit, match="needs --gift"):
        run("redeem-gift", "--card", "6200000000000042")

    load_in_the_east_spend_in_the_south(wallet_service, 1_00)
    today = f"{datetime.now(ZoneInfo('Asia/Shanghai')).date():%Y-%m-%d}"
    table = run("settlement", "--from", today, "--to", today, key=keys[REGION]).splitlines()
    assert table[0] == f"{today} to {today}"
    assert table[1].split() == ["store", "owes", "others", "owed", "by", "others", "net"]
    assert [line.split()[0] for line in table[2:]] == [STORE]  # the east's own store; the south's is not the east's
    assert run("settlement", "--from", "today", key=keys[REGION]).splitlines()[1:] == table[1:]  # --to: today
    assert run("settlement", key=keys[REGION]).splitlines()[0] == f"{today[:8]}01 to {today}"  # this month so far
    with pytest.raises(SystemExit, match="--to needs --from"):
        run("settlement", "--to", today, key=keys[REGION])

    assert run("cancel-card", "--card", "6200000000000042", "--reason", "销卡", key=keys[STORE_MANAGER]) == (
        "card 6200000000000042 cancelled; stored value and points stay with the member\n"
    )

    history = run("card-history", "--card", number, key=keys[STORE_MANAGER]).splitlines()
    assert history[0] == f"card {number}  replaced  member {member_id}  issued at {STORE}"
    assert [line.split()[2:4] for line in history[1:]] == [
        ["issue", "active"],
        ["report-lost", "lost"],
        ["cancel-loss", "active"],
        ["replace", "replaced"],
    ]
    where, who = history[2].split()[4:6]  # reported lost at the till, on its key, with the reason given
    assert (where, who.startswith("key:k_"), history[2].endswith("  丢失")) == (f"{STORE}/pos-1", True, True)
    with pytest.raises(SystemExit, match="card-history needs --card"):
        run("card-history", key=keys[STORE_MANAGER])
    with pytest.raises(grpc.RpcError) as caught:  # a till's key does not read a card's history
        run("card-history", "--card", number)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
