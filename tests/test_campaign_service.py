"""The campaign service through its generated stub, on SQLite and on PostgreSQL."""

from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.campaign.v1 import campaign_pb2 as pb
from huiyuan.campaign.v1 import campaign_pb2_grpc
from tests.support import refusal, rid

STORE = "hq/east/sh-001"
WEDNESDAY = datetime(2026, 11, 25, 7, tzinfo=timezone.utc)  # 15:00 in Shanghai


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@pytest.fixture(scope="module")
def campaign(campaign_service):
    return campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)


def create(campaign, **fields):
    return campaign.CreateCampaign(pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(**fields))).campaign


def activate(campaign, campaign_id):
    return campaign.SetCampaignStatus(pb.SetCampaignStatusRequest(
        request_id=rid(), campaign_id=campaign_id, status=pb.CAMPAIGN_STATUS_ACTIVE)).campaign


def order(store=STORE, at=WEDNESDAY, codes=()):
    return pb.QuoteRequest(
        member=pb.MemberContext(member_id="m_1", tier_id="silver", tier_price_rate_bp=9_500), store_path=store,
        at_time=ts(at), coupon_codes=list(codes),
        lines=[pb.OrderLine(line_id="1", sku="tea", category="tea", quantity=2, unit_price_fen=50_00),
               pb.OrderLine(line_id="2", sku="cup", category="ware", quantity=1, unit_price_fen=33_33)])


def test_a_campaign_prices_orders_only_while_active_and_simulate_tries_a_draft(campaign):
    offer = create(campaign, name="华东 满100减20", kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, org_path="hq/east",
                   steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=20_00)])
    assert offer.status == pb.CAMPAIGN_STATUS_DRAFT
    before = campaign.Quote(order())
    assert [a.explanation for a in before.adjustments] == ["会员价"] and before.payable_fen == 126_66
    simulated = campaign.Simulate(pb.SimulateRequest(campaign_id=offer.campaign_id, order=order())).quote
    assert simulated.payable_fen == 106_66 and simulated.adjustments[1].campaign_id == offer.campaign_id
    activate(campaign, offer.campaign_id)
    live = campaign.Quote(order())
    assert live.payable_fen == 106_66 and sum(s.amount_fen for s in live.adjustments[1].line_shares) == 20_00
    assert campaign.Quote(order(store="hq/south/gz-001")).payable_fen == 126_66  # outside its scope
    listed = campaign.ListCampaigns(pb.ListCampaignsRequest(org_path="hq/east/sh-001", status=pb.CAMPAIGN_STATUS_ACTIVE))
    assert offer.campaign_id in [c.campaign_id for c in listed.campaigns]
    campaign.SetCampaignStatus(pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=offer.campaign_id,
                                                           status=pb.CAMPAIGN_STATUS_ENDED))
    again = pb.SetCampaignStatusRequest(request_id=rid(), campaign_id=offer.campaign_id, status=pb.CAMPAIGN_STATUS_ACTIVE)
    assert refusal(campaign.SetCampaignStatus, again)[1] == "STATUS_TRANSITION_INVALID"
    assert campaign.Quote(order()).payable_fen == 126_66


def test_unknown_coupons_are_named_and_the_order_is_priced_without_them(campaign):
    quoted = campaign.Quote(order(codes=["NOPE-1"]))
    assert [(r.coupon_code, r.reason) for r in quoted.rejected_coupons] == [("NOPE-1", "COUPON_NOT_FOUND")]
    assert quoted.payable_fen == campaign.Quote(order()).payable_fen


def test_campaigns_that_make_no_sense_are_refused(campaign):
    bad = pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(
        name="", kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, org_path="hq",
        steps=[pb.ThresholdStep(threshold_fen=50_00, reduction_fen=80_00)], start_time=ts(WEDNESDAY),
        end_time=ts(WEDNESDAY - timedelta(days=1))))
    assert refusal(campaign.CreateCampaign, bad)[2] == {
        "campaign.name": "NAME_REQUIRED", "campaign.steps[0].reduction_fen": "THRESHOLD_BELOW_REDUCTION",
        "campaign.end_time": "SCHEDULE_REVERSED"}
    over = pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(
        name="120%", kind=pb.CAMPAIGN_KIND_MEMBER_DAY, org_path="hq", rate_bp=12_000, weekdays=[3]))
    assert refusal(campaign.CreateCampaign, over)[2] == {"campaign.rate_bp": "RATE_INVALID"}
    create(campaign, name="满减A", kind=pb.CAMPAIGN_KIND_THRESHOLD_REDUCTION, org_path="hq", exclusive_group="g1",
           steps=[pb.ThresholdStep(threshold_fen=100_00, reduction_fen=10_00)])
    mixed = pb.CreateCampaignRequest(request_id=rid(), campaign=pb.Campaign(
        name="会员日B", kind=pb.CAMPAIGN_KIND_MEMBER_DAY, org_path="hq", rate_bp=9_000, weekdays=[3], exclusive_group="g1"))
    assert refusal(campaign.CreateCampaign, mixed)[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "EXCLUSIVE_GROUP_CONFLICT")
    no_lines = pb.QuoteRequest(store_path=STORE)
    assert refusal(campaign.Quote, no_lines)[2] == {"lines": "LINES_REQUIRED"}
    assert refusal(campaign.GetCampaign, pb.GetCampaignRequest(campaign_id="c_nope"))[1] == "CAMPAIGN_NOT_FOUND"
