from pathlib import Path

from huiyuan.campaign.v1 import campaign_pb2, campaign_pb2_grpc
from huiyuan.runtime.placeholder import placeholder_spec

SPEC, metadata = placeholder_spec("campaign", campaign_pb2, campaign_pb2_grpc, "CampaignService", Path(__file__).parent)
