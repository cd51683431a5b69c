"""Count cards (计次卡) through the gateway, with the wallet's own CountCardService stub:
HQ sets up a plan, a till sells a card and punches it, another region's till does not
see it, a manager undoes a use and refunds the card, and the store's day counts the
money. A store of its own, so that every figure is exact."""

from datetime import datetime

import grpc
import pytest
from google.type import date_pb2

from huiyuan.common.v1 import credential_pb2
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, org_pb2
from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.ids import new_id
from huiyuan.wallet.v1 import count_card_pb2 as cc, count_card_pb2_grpc, wallet_pb2
from tests.support import Stubs, card_type, new_phone, pos_args, refusal_of, rid
from tests.test_gateway import as_, chain, code_and_reason as refused, issue  # noqa: F401 - chain is the fixture these tests share

SWIM_STORE, NORTH_STORE, WASH_STORE = "hq/east/sh-swim", "hq/north/bj-swim", "hq/east/sh-wash"


@pytest.fixture(scope="module")
def pool(chain, member_service):
    """Two stores in the east and one in the north, a till in each, the east stores' managers."""
    stub, hq_key = chain
    org = Stubs(member_service.channel).org
    for parent, code, kind in (
        ("hq", "north", org_pb2.ORG_NODE_KIND_REGION),
        ("hq/east", "sh-swim", org_pb2.ORG_NODE_KIND_STORE),
        (SWIM_STORE, "pos-1", org_pb2.ORG_NODE_KIND_TERMINAL),
        ("hq/north", "bj-swim", org_pb2.ORG_NODE_KIND_STORE),
        (NORTH_STORE, "pos-1", org_pb2.ORG_NODE_KIND_TERMINAL),
        ("hq/east", "sh-wash", org_pb2.ORG_NODE_KIND_STORE),
        (WASH_STORE, "pos-1", org_pb2.ORG_NODE_KIND_TERMINAL),
    ):
        org.CreateOrgNode(
            org_pb2.CreateOrgNodeRequest(
                request_id=f"org-cc-{parent.replace('/', '.')}-{code}",
                parent_path=parent,
                org_node=org_pb2.OrgNode(code=code, name=code, kind=kind, time_zone="Asia/Shanghai"),
            )
        )
    keys = {
        "hq": hq_key,
        "manager": issue(stub, hq_key, SWIM_STORE, pb.ROLE_STORE_MANAGER).api_key,
        "till": issue(stub, hq_key, f"{SWIM_STORE}/pos-1", pb.ROLE_TERMINAL).api_key,
        "north till": issue(stub, hq_key, f"{NORTH_STORE}/pos-1", pb.ROLE_TERMINAL).api_key,
        # a store of the pos test's own, so that its day's figures are exact
        "wash till": issue(stub, hq_key, f"{WASH_STORE}/pos-1", pb.ROLE_TERMINAL).api_key,
        "wash manager": issue(stub, hq_key, WASH_STORE, pb.ROLE_STORE_MANAGER).api_key,
    }
    keys["card type"] = card_type(Stubs(member_service.channel))  # what members show to punch their count cards
    return stub, count_card_pb2_grpc.CountCardServiceStub(stub.channel), keys


def test_a_count_card_is_sold_punched_undone_and_refunded_within_each_key_s_scope(pool):
    stub, cards, keys = pool
    plan = cards.CreateCountCardPlan(
        cc.CreateCountCardPlanRequest(
            request_id=rid(),
            plan=cc.CountCardPlan(
                name="游泳10次卡", org_path="hq/east", uses=10, price_fen=800_00, valid_days=365, skus=["swim"]
            ),
        ),
        metadata=as_(keys["hq"]),
    ).plan
    assert plan.plan_id in [
        p.plan_id for p in cards.ListCountCardPlans(cc.ListCountCardPlansRequest(), metadata=as_(keys["till"])).plans
    ]
    assert plan.plan_id not in [
        p.plan_id
        for p in cards.ListCountCardPlans(cc.ListCountCardPlansRequest(), metadata=as_(keys["north till"])).plans
    ]
    phone = new_phone()
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), member=member_pb2.Member(name="游泳会员", phone=phone), card_type_id=keys["card type"]
        ),
        metadata=as_(keys["till"]),
    )
    member = registered.member
    shown = credential_pb2.PaymentCredential(card_number=registered.card.card_number)  # the member's own card

    def sale(member_id):
        return cc.SellCountCardRequest(
            request_id=rid(), member_id=member_id, plan_id=plan.plan_id, tender=wallet_pb2.TENDER_CASH
        )

    assert refused(cards.SellCountCard, sale(new_id("m")), keys["till"]) == (
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )
    card = cards.SellCountCard(sale(member.member_id), metadata=as_(keys["till"])).card
    assert (card.sold_store_path, card.uses_left, card.value_left_fen) == (SWIM_STORE, 10, 800_00)
    seen = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(keys["till"]))
    assert [(c.card_id, c.uses_left) for c in seen.usable_count_cards] == [(card.card_id, 10)]
    # In the north the card is not usable, and not even there to find.
    assert not stub.LookupMember(
        pb.LookupMemberRequest(phone=phone), metadata=as_(keys["north till"])
    ).usable_count_cards

    def punch(request_id=None):
        return cc.UseCountCardRequest(
            request_id=request_id or rid(), card_id=card.card_id, sku="swim", credential=shown
        )

    assert refused(cards.UseCountCard, punch(), keys["north till"]) == (
        grpc.StatusCode.NOT_FOUND,
        "COUNT_CARD_NOT_FOUND",
    )
    once = punch()
    first = cards.UseCountCard(once, metadata=as_(keys["till"]))
    assert cards.UseCountCard(once, metadata=as_(keys["till"])) == first  # a retry of the same punch
    assert (first.card.uses_left, first.use.store_path) == (9, SWIM_STORE)
    assert first.use.operator_id.startswith("key:")  # the credential, not what the client claims

    undo = cc.UndoCountCardUseRequest(request_id=rid(), use_id=first.use.entry_id, reason="顾客未入场")
    assert refused(cards.UndoCountCardUse, undo, keys["till"]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert cards.UndoCountCardUse(undo, metadata=as_(keys["manager"])).card.uses_left == 10
    cards.UseCountCard(punch(), metadata=as_(keys["till"]))
    refund = cc.RefundCountCardRequest(request_id=rid(), card_id=card.card_id, reason="顾客搬家")
    assert refused(cards.RefundCountCard, refund, keys["till"]) == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    back = cards.RefundCountCard(refund, metadata=as_(keys["manager"]))
    assert (back.refund_fen, back.tender, back.card.state) == (
        720_00,
        wallet_pb2.TENDER_CASH,
        cc.COUNT_CARD_STATE_REFUNDED,
    )
    history = cards.ListCountCardEntries(
        cc.ListCountCardEntriesRequest(card_id=card.card_id), metadata=as_(keys["manager"])
    ).entries
    assert [e.kind for e in history] == [
        cc.COUNT_CARD_ENTRY_KIND_REFUND,
        cc.COUNT_CARD_ENTRY_KIND_USE,
        cc.COUNT_CARD_ENTRY_KIND_USE_UNDONE,
        cc.COUNT_CARD_ENTRY_KIND_USE,
        cc.COUNT_CARD_ENTRY_KIND_SALE,
    ]

    today = datetime.now(CHAIN_ZONE)
    day = stub.GetStoreDailySummary(
        pb.GetStoreDailySummaryRequest(date=date_pb2.Date(year=today.year, month=today.month, day=today.day)),
        metadata=as_(keys["manager"]),
    )
    assert [(t.kind, t.count_card_fen, t.refunded_fen, t.net_fen) for t in day.takings] == [
        (pb.TENDER_KIND_CASH, 800_00, 720_00, 80_00)
    ]
    assert (day.count_card_sold_fen, day.count_card_used_fen) == (80_00, 80_00)


def test_the_pos_commands_sell_punch_undo_refund_and_read_a_count_card(pool, monkeypatch, capsys):
    monkeypatch.setenv("HUIYUAN_LANG", "en")  # what it prints in English (Chinese by default)
    from huiyuan_cli import pos

    stub, cards, keys = pool
    monkeypatch.setenv("HUIYUAN_GATEWAY_ADDR", stub.address)
    plan = cards.CreateCountCardPlan(
        cc.CreateCountCardPlanRequest(
            request_id=rid(),
            plan=cc.CountCardPlan(name="洗车12次卡", org_path="hq/east", uses=12, price_fen=300_00, skus=["wash"]),
        ),
        metadata=as_(keys["hq"]),
    ).plan
    phone = new_phone()
    number = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(), member=member_pb2.Member(name="洗车会员", phone=phone), card_type_id=keys["card type"]
        ),
        metadata=as_(keys["wash till"]),
    ).card.card_number

    def run(*words, key=keys["wash till"]):
        assert pos.run(pos_args(*words, "--key", key)) == 0
        return capsys.readouterr().out.splitlines()

    assert f"plan {plan.plan_id}  洗车12次卡  12 uses for ¥300.00  never expires  for wash" in run("count-card-plans")
    assert not any(plan.plan_id in line for line in run("count-card-plans", key=keys["north till"]))
    with pytest.raises(SystemExit, match="needs --plan"):
        run("sell-count-card", "--phone", phone)
    sold = run("sell-count-card", "--phone", phone, "--plan", plan.plan_id, "--tender", "wechat-pay")
    assert sold[0] == "洗车会员: sold 洗车12次卡 for ¥300.00 (wechat-pay)"
    card_id = sold[1].split()[2]
    assert sold[1] == f"count card {card_id}  洗车12次卡  12/12 uses left  value left ¥300.00"
    assert f"  count card {card_id}  洗车12次卡  12/12 uses left  value left ¥300.00" in run("lookup", "--phone", phone)

    punched = run("punch", card_id, "--sku", "wash", "--quantity", "2", "--card", number)
    use_id = punched[0].split()[-1]
    assert punched == [
        f"punched 2 use(s)  use {use_id}",
        f"count card {card_id}  洗车12次卡  10/12 uses left  value left ¥250.00",
    ]
    with pytest.raises(grpc.RpcError) as caught:  # the card names its services
        run("punch", card_id, "--sku", "swim", "--card", number)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SKU_NOT_COVERED")
    with pytest.raises(grpc.RpcError) as caught:  # a till does not undo
        run("undo-punch", use_id, "--reason", "多扣一次")
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_SCOPE")
    assert run("undo-punch", use_id, "--reason", "多扣一次", key=keys["wash manager"]) == [
        f"use {use_id} undone: 2 use(s) back",
        f"count card {card_id}  洗车12次卡  12/12 uses left  value left ¥300.00",
    ]
    run("punch", card_id, "--sku", "wash", "--card", number)
    assert run("refund-count-card", card_id, "--reason", "顾客搬家", key=keys["wash manager"]) == [
        "refund ¥275.00 to wechat-pay",
        f"count card {card_id}  洗车12次卡  0/12 uses left  value left ¥0.00  refunded",
    ]
    with pytest.raises(SystemExit, match="count card's id"):
        run("punch")

    history = run("count-card-history", card_id, key=keys["wash manager"])
    assert history[0] == f"count card {card_id}  洗车12次卡  0/12 uses left  value left ¥0.00  refunded"
    assert [line.split()[2] for line in history[1:]] == ["refund", "use", "use-undone", "use", "sale"]
    assert history[3].endswith("  wash  多扣一次") and history[4].endswith("  wash  (undone)")  # the use given back
    assert history[5].endswith("  wechat-pay")  # what paid the sale

    day = run("day", key=keys["wash manager"])
    assert day[4] == "  count cards sold ¥25.00 (net of refunds), uses punched ¥25.00"
    assert day[5].split() == ["takings", "sales", "top-ups", "count", "cards", "refunded", "net"]
    assert next(line for line in day if line.startswith("  wechat-pay")).split() == [
        "wechat-pay",
        "¥0.00",
        "¥0.00",
        "¥300.00",
        "¥275.00",
        "¥25.00",
    ]
