"""The campaign service's gRPC layer: campaign.py serves CampaignService."""
