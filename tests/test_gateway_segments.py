"""A saved segment through the gateway (issue 40, item 5): a region saves it, counts it,
gives its members a coupon (counted first with validate_only), and a campaign for the
segment's tag prices the checkout of a member in it and not of one outside."""

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, segment_pb2, segment_pb2_grpc
from tests.support import new_phone, refusal_of, rid
from tests.test_gateway import as_, chain, issue, shop  # noqa: F401 - the fixtures these tests share

TEA = [pb.CheckoutLine(line_id="1", sku="tea-1", category="tea", quantity=2, unit_price_fen=60_00)]


def test_a_saved_segment_is_counted_given_coupons_and_targeted_by_a_campaign(chain, shop, campaign_service):
    stub, hq_key = chain
    _, terminal, *_ = shop
    region = as_(issue(stub, hq_key, "hq/east", pb.ROLE_REGIONAL_MANAGER).api_key)
    south = as_(issue(stub, hq_key, "hq/south", pb.ROLE_REGIONAL_MANAGER).api_key)
    segments = segment_pb2_grpc.SegmentServiceStub(stub.channel)  # the service's stub, aimed at the gateway
    since = Timestamp()
    since.GetCurrentTime()

    def register(name):
        return stub.RegisterMember(
            pb.RegisterMemberRequest(request_id=rid(), member=member_pb2.Member(name=name, phone=new_phone())),
            metadata=as_(terminal),
        ).member.member_id

    def pay(member_id, cash_fen):
        return stub.Checkout(
            pb.CheckoutRequest(
                request_id=rid(),
                member_id=member_id,
                lines=TEA,
                tenders=[pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=cash_fen)],
            ),
            metadata=as_(terminal),
        ).receipt

    regular, newcomer = register("常来"), register("新来")
    assert pay(regular, 100_00).discount_total_fen == 20_00  # 满100减20 (the shop's)
    tag = f"近客{rid()[:5]}"
    segment = segments.CreateSegment(
        segment_pb2.CreateSegmentRequest(
            request_id=rid(),
            segment=segment_pb2.Segment(
                org_path="hq/east",
                name="近30天来过",
                tag=tag,
                criteria=segment_pb2.SegmentCriteria(
                    filter=member_pb2.MemberFilter(registered_after=since),
                    visits=segment_pb2.VisitsCriterion(window_days=30, min_visits=1),
                ),
            ),
        ),
        metadata=region,
    ).segment
    count = segments.CountSegment(segment_pb2.CountSegmentRequest(segment_id=segment.segment_id), metadata=region)
    assert count.member_count == 1
    with pytest.raises(grpc.RpcError) as caught:  # the south never sees the east's segment
        segments.CountSegment(segment_pb2.CountSegmentRequest(segment_id=segment.segment_id), metadata=south)
    assert refusal_of(caught.value)[:2] == (grpc.StatusCode.NOT_FOUND, "SEGMENT_NOT_FOUND")

    campaigns = campaign_pb2_grpc.CampaignServiceStub(campaign_service.channel)
    template = campaigns.CreateCouponTemplate(
        campaign_pb2.CreateCouponTemplateRequest(
            request_id=rid(),
            template=campaign_pb2.CouponTemplate(
                name="回头客 3元券",
                kind=campaign_pb2.COUPON_KIND_FIXED,
                amount_fen=3_00,
                valid_days=7,
                org_path="hq/east",
            ),
        )
    ).template

    def coupons(**fields):
        return stub.IssueSegmentCoupons(
            pb.IssueSegmentCouponsRequest(template_id=template.template_id, segment_id=segment.segment_id, **fields),
            metadata=region,
        )

    counted = coupons(request_id=rid(), validate_only=True)
    assert (counted.member_count, counted.issued_count) == (1, 0)
    issued = coupons(request_id=rid())
    assert (issued.member_count, issued.issued_count) == (1, 1)
    held = {
        m: [
            c.template_id
            for c in campaigns.ListMemberCoupons(campaign_pb2.ListMemberCouponsRequest(member_id=m)).coupons
        ]
        for m in (regular, newcomer)
    }
    assert held == {regular: [template.template_id], newcomer: []}
    with pytest.raises(grpc.RpcError) as caught:
        stub.IssueSegmentCoupons(
            pb.IssueSegmentCouponsRequest(
                request_id=rid(),
                template_id=template.template_id,
                segment_id=segment.segment_id,
                segment=member_pb2.MemberFilter(org_path="hq/east"),
            ),
            metadata=region,
        )
    assert refusal_of(caught.value)[2] == {"segment_id": "SEGMENT_GIVEN_TWICE"}

    offer = campaigns.CreateCampaign(
        campaign_pb2.CreateCampaignRequest(
            request_id=rid(),
            campaign=campaign_pb2.Campaign(
                name="近客 茶9折",
                kind=campaign_pb2.CAMPAIGN_KIND_CATEGORY_DISCOUNT,
                org_path="hq/east",
                rate_bp=9_000,
                categories=["tea"],
                tags=[tag],
            ),
        )
    ).campaign
    campaigns.SetCampaignStatus(
        campaign_pb2.SetCampaignStatusRequest(
            request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ACTIVE
        )
    )
    try:
        # the segment's tag is on the member who came (set when the segment was saved)
        # 120.00 - 12.00 (9折) - 20.00 (满100减20 on the 108.00 left) = 88.00; outside it, 100.00
        assert pay(regular, 88_00).discount_total_fen == 32_00
        assert pay(newcomer, 100_00).discount_total_fen == 20_00
    finally:
        campaigns.SetCampaignStatus(
            campaign_pb2.SetCampaignStatusRequest(
                request_id=rid(), campaign_id=offer.campaign_id, status=campaign_pb2.CAMPAIGN_STATUS_ENDED
            )
        )
