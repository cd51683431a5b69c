"""A member's coupons, newest first; those usable at a store, or under an org node."""

from datetime import datetime

from huiyuan.database import Database
from services.campaign.domain.coupons import AVAILABLE, MemberCoupon, usable_at, usable_under
from services.campaign.storage import coupons


async def listed(
    database: Database, member_id: str, state: str | None, usable: bool, before: str | None, limit: int, now: datetime
) -> list[MemberCoupon]:
    """usable: only those AVAILABLE and valid now (usable() then says where)."""
    async with database.reading() as tx:
        return await coupons.of_member(
            tx, member_id, AVAILABLE if usable else state, before, limit, valid_at=now if usable else None
        )


def usable(page: list[MemberCoupon], store_path: str, org_path: str) -> list[MemberCoupon]:
    """The coupons of a page usable at the store (if given), or under the node (if
    given). Filtered after the page's token is taken: a page may hold fewer, never skip one."""
    if store_path:
        return [c for c in page if usable_at(c, store_path)]
    if org_path:
        return [c for c in page if usable_under(c, org_path)]
    return page
