"""A campaign's stats: orders, discount given, budget left, coupons issued and redeemed."""

from huiyuan.database import Database, Transaction
from services.campaign.domain import budgets
from services.campaign.domain.budgets import CampaignStats
from services.campaign.domain.campaigns import not_found
from services.campaign.storage import campaigns, stats


async def _read(tx: Transaction, campaign_id: str):
    budget = await campaigns.budget(tx, campaign_id)
    if budget is None:
        raise not_found(campaign_id)
    return await stats.of_campaign(tx, campaign_id), budget


async def of_campaign(database: Database, campaign_id: str) -> CampaignStats:
    async with database.reading() as tx:
        row, budget = await _read(tx, campaign_id)
    return budgets.stats_of(row, budget)


async def budget_spent(tx: Transaction, campaign_id: str) -> bool:
    """Is the campaign's budget given or held in full?"""
    row, budget = await _read(tx, campaign_id)
    return row is not None and budgets.spent(row, budget)
