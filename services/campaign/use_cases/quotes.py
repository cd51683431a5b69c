"""Quotes: an order priced with the active campaigns and the coupons presented. A quote
is only a price: it takes nothing (budgets are taken at reservation)."""

from collections.abc import Sequence
from datetime import datetime

from huiyuan.database import Database
from services.campaign.domain import pricing
from services.campaign.domain.campaigns import Campaign, Status
from services.campaign.domain.coupons import refusal
from services.campaign.storage import coupons, templates
from services.campaign.storage.campaigns import ActiveSet
from services.campaign.use_cases import campaigns


async def presented(database: Database, codes: list[str], member_id: str, at: datetime) -> list[pricing.Coupon]:
    """The pricing engine's view of the presented coupons, unusable ones with their reason."""
    rows = await coupons.presented(database, codes)
    terms = await templates.for_quote(database, {row.template_id for row in rows.values()})
    found = []
    for code in codes:
        row = rows.get(code)
        reason = refusal(row, member_id, at)
        if reason:
            found.append(pricing.Coupon(code, reject_reason=reason))
            continue
        t = terms[row.template_id]
        found.append(
            pricing.Coupon(
                code,
                t.kind,
                t.amount_fen,
                t.rate_bp,
                t.cap_fen,
                t.threshold_fen,
                t.categories,
                [t.org_path],
                name=t.name,
            )
        )
    return found


class Quotes:
    """Quoting for one process, with the active set it keeps (read at most once a
    second, storage/campaigns.py) and the chain's cap on an order's discounts."""

    def __init__(self, database: Database, max_discounts: int = pricing.MAX_DISCOUNTS):
        self.database = database
        self.active = ActiveSet(database)
        self.max_discounts = max_discounts

    async def quote(
        self,
        lines: list[pricing.Line],
        member: pricing.Member,
        store_path: str,
        at: datetime,
        codes: list[str],
        extra: Sequence[Campaign] = (),
    ) -> pricing.Quote:
        """The order priced; extra: campaigns priced as if they were active."""
        live = await self.active.campaigns()
        found = await presented(self.database, codes, member.member_id, at)
        return pricing.quote(lines, member, store_path, at, live + list(extra), found, self.max_discounts)

    async def simulate(
        self,
        campaign_id: str,
        lines: list[pricing.Line],
        member: pricing.Member,
        store_path: str,
        at: datetime,
        codes: list[str],
    ) -> pricing.Quote:
        """The order priced as if the campaign were active too."""
        campaign, status = await campaigns.get(self.database, campaign_id)
        extra = [] if status == Status.ACTIVE else [campaign]  # an active one is already in the quote
        return await self.quote(lines, member, store_path, at, codes, extra)
