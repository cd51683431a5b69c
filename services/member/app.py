"""The member service process: its servicers, migrations and name."""

from pathlib import Path

from huiyuan.common.v1 import rollup_pb2, rollup_pb2_grpc
from huiyuan.database import Idempotency
from huiyuan.member.v1 import (
    card_pb2,
    card_pb2_grpc,
    care_pb2,
    care_pb2_grpc,
    loyalty_pb2,
    loyalty_pb2_grpc,
    member_pb2,
    member_pb2_grpc,
    membership_pb2,
    membership_pb2_grpc,
    org_pb2,
    org_pb2_grpc,
    payment_pin_pb2,
    payment_pin_pb2_grpc,
    segment_pb2,
    segment_pb2_grpc,
    tier_pb2,
    tier_pb2_grpc,
)
from huiyuan.runtime.config import CALLER_KEYS, QR_SECRET
from huiyuan.runtime.rollup_service import RollupServicer, folder
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from services.member.servicers.card import CardServicer
from services.member.servicers.care import CareServicer
from services.member.servicers.loyalty import TierProgrammeServicer, ValueScoreServicer
from services.member.servicers.member import MemberServicer
from services.member.servicers.membership import BenefitServicer, MembershipPlanServicer
from services.member.servicers.org import OrgServicer
from services.member.servicers.pin import PaymentPinServicer
from services.member.servicers.segments import SegmentServicer
from services.member.servicers.tier import TierServicer
from services.member.storage.rollups import ROLLUPS
from services.member.storage.tables import idempotency_keys
from services.member.use_cases.loyalty import nightly
from services.member.use_cases.segments import job as tag_job


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, idempotency_keys, "member")
    org_pb2_grpc.add_OrgServiceServicer_to_server(OrgServicer(ctx, idempotency), server)
    member_pb2_grpc.add_MemberServiceServicer_to_server(MemberServicer(ctx, idempotency), server)
    card_pb2_grpc.add_CardServiceServicer_to_server(CardServicer(ctx, idempotency), server)
    tier_pb2_grpc.add_TierServiceServicer_to_server(TierServicer(ctx, idempotency), server)
    care_pb2_grpc.add_CareServiceServicer_to_server(CareServicer(ctx, idempotency), server)
    payment_pin_pb2_grpc.add_PaymentPinServiceServicer_to_server(PaymentPinServicer(ctx, idempotency), server)
    rollup_pb2_grpc.add_RollupServiceServicer_to_server(RollupServicer(ctx, ROLLUPS), server)
    membership_pb2_grpc.add_MembershipPlanServiceServicer_to_server(MembershipPlanServicer(ctx, idempotency), server)
    membership_pb2_grpc.add_BenefitServiceServicer_to_server(BenefitServicer(ctx, idempotency), server)
    loyalty_pb2_grpc.add_TierProgrammeServiceServicer_to_server(TierProgrammeServicer(ctx, idempotency), server)
    loyalty_pb2_grpc.add_ValueScoreServiceServicer_to_server(ValueScoreServicer(ctx, idempotency), server)
    segment_pb2_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(ctx, idempotency), server)


SPEC = ServiceSpec(
    name="member",
    service_names=[
        org_pb2.DESCRIPTOR.services_by_name["OrgService"].full_name,
        member_pb2.DESCRIPTOR.services_by_name["MemberService"].full_name,
        card_pb2.DESCRIPTOR.services_by_name["CardService"].full_name,
        tier_pb2.DESCRIPTOR.services_by_name["TierService"].full_name,
        care_pb2.DESCRIPTOR.services_by_name["CareService"].full_name,
        payment_pin_pb2.DESCRIPTOR.services_by_name["PaymentPinService"].full_name,
        rollup_pb2.DESCRIPTOR.services_by_name["RollupService"].full_name,
        membership_pb2.DESCRIPTOR.services_by_name["MembershipPlanService"].full_name,
        membership_pb2.DESCRIPTOR.services_by_name["BenefitService"].full_name,
        loyalty_pb2.DESCRIPTOR.services_by_name["TierProgrammeService"].full_name,
        loyalty_pb2.DESCRIPTOR.services_by_name["ValueScoreService"].full_name,
        segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name,
    ],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # the rollups' outbox into the counters (docs/reports.md); the tier re-evaluation and
    # value scores; the daily automatic tags
    background=[folder(ROLLUPS), nightly(), tag_job()],
    secrets=(CALLER_KEYS, QR_SECRET),  # QR_SECRET signs the members' QR codes
)
