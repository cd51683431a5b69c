"""Coupon templates: made once, never changed."""

from datetime import datetime

from huiyuan.database import Database, Transaction
from services.campaign.domain.campaigns import not_found as campaign_not_found
from services.campaign.domain.coupons import Template, template_not_found
from services.campaign.storage import campaigns, templates


async def create(tx: Transaction, t: Template, now: datetime) -> Template:
    if t.campaign_id and not await campaigns.exists(tx, t.campaign_id):
        raise campaign_not_found(t.campaign_id)
    await templates.add(tx, t, now)
    return t


async def by_id(tx: Transaction, template_id: str) -> Template:
    found = await templates.get(tx, template_id)
    if found is None:
        raise template_not_found(template_id)
    return found


async def list_under(database: Database, org_path: str, after: str | None, limit: int) -> list[Template]:
    async with database.reading() as tx:
        return await templates.under(tx, org_path, after, limit)


async def get(database: Database, template_id: str) -> Template:
    async with database.reading() as tx:
        return await by_id(tx, template_id)
