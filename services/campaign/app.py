"""The campaign service process: its servicer, migrations, and the sweeper of lapsed reservations."""

import os
from pathlib import Path

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.runtime import holds
from huiyuan.database.idempotency import Idempotency
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from services.campaign import coupons, pricing, storage
from services.campaign.servicer import CampaignServicer

metadata = storage.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, storage.idempotency_keys, "campaign")
    max_discounts = int(os.environ.get("HUIYUAN_CAMPAIGN_MAX_DISCOUNTS", pricing.MAX_DISCOUNTS))
    campaign_pb2_grpc.add_CampaignServiceServicer_to_server(CampaignServicer(ctx, idempotency, max_discounts), server)


SPEC = ServiceSpec(
    name="campaign",
    service_names=[campaign_pb2.DESCRIPTOR.services_by_name["CampaignService"].full_name],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    background=[holds.sweeper(coupons.lapsed, coupons.expire)],  # lapsed reservations give coupons and budget back
)
