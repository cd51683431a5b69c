"""Reservations and redemptions that arrive together run as one batch
(database/batching.py): each after the ones before it, each with its own outcome, and a
campaign's stats row added to once per batch. Driven through the service's own batch
functions, on its database, so that what goes together is certain; concurrency through
gRPC is test_campaign_service's."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from huiyuan.campaign.v1 import campaign_pb2 as pb
from huiyuan.database.engines import make_sync_engine
from huiyuan.database.idempotency import Idempotency
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.ids import new_id
from huiyuan.runtime.serving import serving_rpc
from services.campaign.domain.reservations import ReserveAsk
from services.campaign.servicers.campaign import CampaignServicer
from services.campaign.storage import tables
from tests.support import rid
from tests.test_campaign_service import STORE, campaign, create, issue, template  # noqa: F401 - the fixture


@pytest.fixture(scope="module")
def servicer(campaign_service):
    ctx = campaign_service.app.context
    return CampaignServicer(ctx, Idempotency(ctx.database, tables.idempotency_keys, "campaign"))


def _reserve_item(member, codes=(), adjustments=()):
    request = pb.ReserveCouponsRequest(
        request_id=rid(),
        member_id=member,
        coupon_codes=list(codes),
        order_id=rid(),
        store_path=STORE,
        ttl={"seconds": 60},
        adjustments=list(adjustments),
    )
    return request, ReserveAsk(
        new_id("rs"), member, list(codes), request.order_id, STORE, timedelta(seconds=60), list(adjustments)
    )


async def _serving(method: str, work):
    """Run a batch as the server runs it: within the RPC its idempotency keys record."""
    serving_rpc.set(f"/huiyuan.campaign.v1.CampaignService/{method}")
    return await work


def _redeem_item(reservation_id):
    return pb.RedeemCouponsRequest(request_id=rid(), reservation_id=reservation_id), reservation_id


def _reason(outcome) -> str:
    assert isinstance(outcome, DomainError), outcome
    return outcome.reason


def _reserved(campaign_service, campaign_id) -> int:
    """What the campaign's stats row holds as reserved (no call reports it: budget_left does)."""
    engine = make_sync_engine(campaign_service.settings.database_url, "campaign")
    with engine.connect() as db:
        reserved = db.execute(
            select(tables.campaign_stats.c.reserved_fen).where(tables.campaign_stats.c.campaign_id == campaign_id)
        ).scalar_one()
    engine.dispose()
    return reserved


def _stats(campaign, campaign_id):
    s = campaign.GetCampaignStats(pb.GetCampaignStatsRequest(campaign_id=campaign_id))
    return s.orders, s.discount_fen, s.budget_left_fen, s.coupons_redeemed


def test_reservations_together_take_coupons_in_order_and_check_budgets_alone(campaign, campaign_service, servicer):
    open_offer = create(campaign, name="不限预算", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq")
    budgeted = create(campaign, name="预算10元", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq", budget_fen=10_00)
    five = template(
        campaign, name="5元券", kind=pb.COUPON_KIND_FIXED, amount_fen=5_00, campaign_id=open_offer.campaign_id
    )
    member = "m_" + "7" * 26
    (coupon,) = issue(campaign, five.template_id, member)
    code = coupon.coupon_code
    with_coupon = _reserve_item(member, [code], [pb.Adjustment(coupon_code=code, amount_fen=5_00)])
    items = [
        with_coupon,
        _reserve_item(member, [code]),  # the same coupon again: reserved by the one before
        _reserve_item(member, adjustments=[pb.Adjustment(campaign_id=open_offer.campaign_id, amount_fen=2_00)]),
        _reserve_item(member, adjustments=[pb.Adjustment(campaign_id=budgeted.campaign_id, amount_fen=6_00)]),
        _reserve_item(member, adjustments=[pb.Adjustment(campaign_id=budgeted.campaign_id, amount_fen=6_00)]),
        _reserve_item(member, adjustments=[pb.Adjustment(campaign_id="c_nope", amount_fen=1_00)]),
    ]
    outcomes = campaign_service.run(_serving("ReserveCoupons", servicer._reserve(items)))
    assert outcomes[0].reservation_id == with_coupon[1].reservation_id
    assert _reason(outcomes[1]) == "COUPON_RESERVED"
    assert outcomes[2].reservation_id and outcomes[3].reservation_id
    assert _reason(outcomes[4]) == "BUDGET_EXHAUSTED"  # checked alone, under the stats row's lock: 6 + 6 > 10
    assert _reason(outcomes[5]) == "CAMPAIGN_NOT_FOUND"
    assert _reserved(campaign_service, open_offer.campaign_id) == 7_00  # the coupon's 5 and the discount's 2
    assert _stats(campaign, budgeted.campaign_id)[2] == 4_00
    again = campaign_service.run(_serving("ReserveCoupons", servicer._reserve([items[1]])))[0]
    assert _reason(again) == "COUPON_RESERVED"  # refused in a batch stays refused


def test_redemptions_together_book_each_reservation_once(campaign, campaign_service, servicer):
    offer = create(campaign, name="兑现统计", kind=pb.CAMPAIGN_KIND_COUPONS, org_path="hq", budget_fen=100_00)
    four = template(campaign, name="4元券", kind=pb.COUPON_KIND_FIXED, amount_fen=4_00, campaign_id=offer.campaign_id)
    member = "m_" + "8" * 26
    first, second = issue(campaign, four.template_id, member, member)
    held = [
        campaign.ReserveCoupons(request).reservation_id
        for request, _ in (
            _reserve_item(member, [c.coupon_code], [pb.Adjustment(coupon_code=c.coupon_code, amount_fen=4_00)])
            for c in (first, second)
        )
    ]
    twice = _redeem_item(held[0])
    batch = [twice, _redeem_item(held[1]), _redeem_item(held[0]), _redeem_item("rs_nope"), twice]
    outcomes = campaign_service.run(_serving("RedeemCoupons", servicer._redeem(batch)))
    assert [c.coupon_code for c in outcomes[0].coupons] == [first.coupon_code]
    assert [c.coupon_code for c in outcomes[1].coupons] == [second.coupon_code]
    assert list(outcomes[2].coupons) == []  # redeemed just before, by another request: nothing moves twice
    assert _reason(outcomes[3]) == "RESERVATION_NOT_FOUND"
    assert outcomes[4] == outcomes[0]  # a replay answers as the first did
    assert _stats(campaign, offer.campaign_id) == (2, 8_00, 92_00, 2)
