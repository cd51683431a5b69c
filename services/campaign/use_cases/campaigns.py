"""Campaigns: create, read, list, move their status and reschedule them."""

from dataclasses import replace
from datetime import datetime

from huiyuan.database import Database, Transaction
from services.campaign.domain import campaigns as domain
from services.campaign.domain.campaigns import Campaign, Kind, Status
from services.campaign.storage import campaigns
from services.campaign.storage.campaigns import ActiveSet
from services.campaign.use_cases.templates import by_id as template_by_id


async def create(tx: Transaction, c: Campaign, now: datetime) -> tuple[Campaign, Status]:
    if c.kind == Kind.NEW_MEMBER_GIFT:
        domain.check_gift_template(c, (await template_by_id(tx, c.coupon_template_id)).org_path)
    if c.exclusive_group:
        domain.check_group(c, await campaigns.kinds_in_group(tx, c.exclusive_group))
    await campaigns.add(tx, c, Status.DRAFT, now)
    return c, Status.DRAFT


async def get(database: Database, campaign_id: str) -> tuple[Campaign, Status]:
    async with database.reading() as tx:
        found = await campaigns.get(tx, campaign_id)
    if found is None:
        raise domain.not_found(campaign_id)
    return found


async def set_status(
    tx: Transaction, campaign_id: str, wanted: Status, now: datetime, active: ActiveSet
) -> tuple[Campaign, Status]:
    """Move a campaign's status; the active set of this process sees it at once."""
    found = await campaigns.get(tx, campaign_id, lock=True)
    if found is None:
        raise domain.not_found(campaign_id)
    campaign, current = found
    status = domain.move(current, wanted)
    await campaigns.set_status(tx, campaign_id, status, now)
    active.forget()
    return campaign, status


async def reschedule(
    tx: Transaction,
    campaign_id: str,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    active: ActiveSet,
) -> tuple[Campaign, Status]:
    """Set when a campaign applies (not once it has ended - set ENDED, or its end_time
    passed - that is final: a campaign over is not reopened by a new end); the active
    set of this process sees it at once, the others' within their second."""
    found = await campaigns.get(tx, campaign_id, lock=True)
    if found is None:
        raise domain.not_found(campaign_id)
    campaign, status = found
    if status == Status.ENDED or (campaign.end_time is not None and campaign.end_time <= now):
        raise domain.ended(campaign_id)
    campaign = replace(campaign, start_time=start, end_time=end)
    await campaigns.set_body(tx, campaign, now)
    active.forget()
    return campaign, status


async def list_under(
    database: Database, org_path: str, status: Status | None, after: str | None, limit: int
) -> list[tuple[str, Campaign, Status]]:
    """Campaigns whose scope covers or lies under org_path, by id."""
    async with database.reading() as tx:
        return await campaigns.under(tx, org_path, status, after, limit)
