"""A member climbs a tier at the till: the checkout that reaches the tier's spend says so
on the receipt, and the next checkout is priced and earns points at the new tier; a
top-up that reaches a tier's top-ups (充值会员) says so too, and its refund takes the
tier back. A chain of its own: the ladder is the whole chain's."""

import pytest

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, tier_pb2
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from tests.support import ACTOR, STORE, Stubs, card_type, new_phone, rid
from tests.test_gateway import as_, chain, issue  # noqa: F401 - chain is the fixture these tests share


@pytest.fixture(scope="module")
def till(chain, member_service, points_service):
    """银卡 (九五折, 1.5倍积分) at ¥100 of spend; 储值金卡 at ¥500 of top-ups; 1 point a
    yuan; a terminal's key; a member with a card and no tier."""
    stub, hq_key = chain
    stubs = Stubs(member_service.channel)
    stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            actor=ACTOR,
            tier=tier_pb2.Tier(
                name="银卡", rank=2, price_rate_bp=9500, points_multiplier_bp=15000, upgrade_spend_fen=100_00
            ),
        )
    )
    stubs.tier.CreateTier(
        tier_pb2.CreateTierRequest(
            request_id=rid(),
            actor=ACTOR,
            tier=tier_pb2.Tier(
                name="储值金卡", rank=3, price_rate_bp=9000, points_multiplier_bp=10000, upgrade_top_up_fen=500_00
            ),
        )
    )
    points_pb2_grpc.PointsServiceStub(points_service.channel).CreateRule(
        points_pb2.CreateRuleRequest(
            request_id=rid(), rule=points_pb2.Rule(name="1元1分", org_path="hq", priority=1, points_per_yuan_bp=10_000)
        )
    )
    terminal = issue(stub, hq_key, f"{STORE}/pos-1", pb.ROLE_TERMINAL).api_key
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(
            request_id=rid(),
            member=member_pb2.Member(name="升级会员", phone=new_phone()),
            card_type_id=card_type(stubs),
        ),
        metadata=as_(terminal),
    )
    return stub, terminal, registered.member.member_id, registered.card.card_number


def pay_cash(stub, terminal, member_id, card, amount_fen):
    return stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            card_number=card,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=1, unit_price_fen=120_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=amount_fen)],
        ),
        metadata=as_(terminal),
    )


def test_the_checkout_that_reaches_a_tier_says_so_and_the_next_is_priced_at_it(till):
    stub, terminal, member_id, card = till
    first = pay_cash(stub, terminal, member_id, card, 120_00)
    assert first.receipt.tier_reached == "银卡" and "恭喜升级为 银卡" in first.receipt.lines
    assert first.receipt.points_earned == 120  # earned before the climb: 1x
    found = stub.LookupMember(pb.LookupMemberRequest(card_number=card), metadata=as_(terminal))
    assert found.tier.name == "银卡"
    second = pay_cash(stub, terminal, member_id, card, 114_00)  # 九五折 of ¥120.00
    assert second.receipt.discount_total_fen == 6_00 and second.receipt.tier_reached == ""
    assert second.receipt.points_earned == 171  # ¥114.00 at 银卡's 1.5倍积分
    order = stub.GetOrder(pb.GetOrderRequest(order_id=first.order_id), metadata=as_(terminal))
    assert order.receipt.tier_reached == "银卡"  # the stored receipt, as printed


def test_a_refund_takes_the_spend_back_and_the_tier_it_no_longer_pays_for(till):
    stub, terminal = till[:2]
    phone = new_phone()
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="退货会员", phone=phone)),
        metadata=as_(terminal),
    )
    member_id = registered.member.member_id
    paid = stub.Checkout(
        pb.CheckoutRequest(
            request_id=rid(),
            member_id=member_id,
            lines=[pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)],
            tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=120_00)],
        ),
        metadata=as_(terminal),
    )
    assert paid.receipt.tier_reached == "银卡"
    refund = pb.RefundRequest(request_id=rid(), order_id=paid.order_id, lines=[pb.RefundLine(line_id="1", quantity=1)])
    back = stub.Refund(refund, metadata=as_(terminal))
    assert back.spend_returned_fen == 60_00 and back.tenders[0].amount_fen == 60_00  # ¥60.00 left: below ¥100
    assert stub.Refund(refund, metadata=as_(terminal)) == back  # the retry: nothing comes off twice
    found = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(terminal))
    assert not found.HasField("tier")


def test_the_top_up_that_reaches_a_tier_says_so_and_its_refund_takes_the_tier_back(till, chain):
    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    stub, terminal = till[:2]
    manager = issue(stub, chain[1], STORE, pb.ROLE_STORE_MANAGER).api_key
    registered = stub.RegisterMember(
        pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name="储值会员", phone=new_phone())),
        metadata=as_(terminal),
    )
    member_id, phone = registered.member.member_id, registered.member.phone

    def top_up(amount_fen, request_id=None):
        return stub.TopUp(
            pb.TopUpRequest(
                request_id=request_id or rid(), member_id=member_id, amount_fen=amount_fen, tender=pb.TENDER_KIND_CASH
            ),
            metadata=as_(terminal),
        )

    def tier_name():
        found = stub.LookupMember(pb.LookupMemberRequest(phone=phone), metadata=as_(terminal))
        return found.tier.name if found.HasField("tier") else ""

    assert top_up(300_00).tier_reached == "" and tier_name() == ""
    request_id = rid()
    loaded = top_up(200_00, request_id)  # ¥500 paid in: 储值金卡
    assert loaded.tier_reached == "储值金卡" and loaded.receipt_lines[-1] == "恭喜升级为 储值金卡"
    assert top_up(200_00, request_id) == loaded and tier_name() == "储值金卡"  # the till's retry: once
    wallet = wallet_pb2_grpc.WalletServiceStub(stub.channel)  # the wallet's stub, aimed at the gateway
    refund = wallet_pb2.RefundTopUpRequest(request_id=rid(), top_up_id=loaded.top_up_id, reason="顾客退款")
    done = wallet.RefundTopUp(refund, metadata=as_(manager))
    assert done.principal_fen == 200_00 and tier_name() == ""  # ¥300 still counts: below ¥500
    assert wallet.RefundTopUp(refund, metadata=as_(manager)) == done
    history = Stubs(stub.channel)  # the member service's own stubs, through the gateway
    changes = history.tier.ListTierHistory(
        tier_pb2.ListTierHistoryRequest(member_id=member_id), metadata=as_(manager)
    ).tier_changes
    assert [c.operator_id for c in changes] == ["system:tier-return", "system:tier-climb"]
    assert changes[0].reason.startswith("充值退款后")
