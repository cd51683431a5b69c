"""The coupons a member gets on registering (NEW_MEMBER_GIFT campaigns)."""

from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.business_time import local
from services.campaign.domain.campaigns import Kind
from services.campaign.domain.coupons import MemberCoupon
from services.campaign.domain.pricing import Member, targets
from services.campaign.storage import campaigns
from services.campaign.use_cases.issuing import issue
from services.campaign.use_cases.stats import budget_spent
from services.campaign.use_cases.templates import by_id as template_by_id


def gift_batch(campaign_id: str) -> str:
    """The batch a new-member gift's coupons are issued in: one coupon a member, ever."""
    return f"new-member:{campaign_id}"


async def give(tx: Transaction, member_id: str, tags: list[str], home_path: str, now: datetime) -> list[MemberCoupon]:
    """The coupons of every active NEW_MEMBER_GIFT campaign that targets a member just
    registered with these tags, whose home store lies under its scope, now: one per
    campaign, however often asked (its batch). A gift whose template's campaign has spent
    its budget is not given (issuing would refuse it)."""
    member = Member(member_id, tags=tags, register_time=now)
    day = local(now)
    given = []
    for c in await campaigns.active(tx, Kind.NEW_MEMBER_GIFT):
        if not targets(c, member, home_path, now, day):
            continue
        template = await template_by_id(tx, c.coupon_template_id)
        if template.campaign_id and await budget_spent(tx, template.campaign_id):
            continue
        issued, _ = await issue(
            tx,
            template_id=c.coupon_template_id,
            member_ids=[member_id],
            now=now,
            batch_id=gift_batch(c.campaign_id),
            issue_path=home_path,
        )
        given += issued
    return given
