"""The campaign service process: its servicers (campaigns, the reports' rollups), migrations, the
sweeper of lapsed reservations and the fold of the reports' outbox."""

import os
from pathlib import Path

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.common.v1 import rollup_pb2, rollup_pb2_grpc
from huiyuan.database import Idempotency
from huiyuan.runtime.rollup_service import RollupServicer, folder
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from huiyuan.runtime.sweeper import sweeper
from services.campaign.domain.pricing import MAX_DISCOUNTS
from services.campaign.servicers.campaign import CampaignServicer
from services.campaign.storage import tables
from services.campaign.storage.rollups import ROLLUPS
from services.campaign.use_cases import reservations

metadata = tables.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, tables.idempotency_keys, "campaign")
    max_discounts = int(os.environ.get("HUIYUAN_CAMPAIGN_MAX_DISCOUNTS", MAX_DISCOUNTS))
    campaign_pb2_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(ctx, idempotency, max_discounts), server)
    rollup_pb2_grpc.add_RollupServiceServicer_to_server(RollupServicer(ctx, ROLLUPS), server)


SPEC = ServiceSpec(
    name="campaign",
    service_names=[
        campaign_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name,
        rollup_pb2.DESCRIPTOR.services_by_name["RollupService"].full_name,
    ],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # lapsed reservations give coupons and budget back; the reports' outbox is folded
    background=[sweeper(reservations.lapsed, reservations.expire), folder(ROLLUPS)],
)
