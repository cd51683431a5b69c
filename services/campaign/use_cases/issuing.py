"""Issuing coupons of a template to members."""

from datetime import datetime

from huiyuan.database import Transaction
from huiyuan.runtime.ids import new_id
from services.campaign.domain import budgets, reports
from services.campaign.domain.coupons import AVAILABLE, MemberCoupon, new_code
from services.campaign.storage import campaigns, coupons, rollups, stats
from services.campaign.use_cases.templates import by_id


async def issue(
    tx: Transaction,
    *,
    template_id: str,
    member_ids: list[str],
    now: datetime,
    batch_id: str = "",
    issue_path: str = "",
) -> tuple[list[MemberCoupon], list[str]]:
    """Coupons of the template for these members: (the coupons issued, the members
    skipped). With a batch_id, a member who already holds a coupon of that batch is
    skipped. A template backed by a campaign whose budget is spent issues none.
    issue_path: the node that issues them (the reports count them there; none: the
    template's scope)."""
    t = await by_id(tx, template_id)
    valid_from, valid_until = t.validity(now)
    wanted = [
        MemberCoupon(new_id("cp"), new_code(), template_id, m, AVAILABLE, valid_from, valid_until, t)
        for m in member_ids
    ]
    path = issue_path or t.org_path
    issued = await coupons.add(tx, wanted, now, path, batch_id)
    await rollups.record(
        tx,
        reports.issued(reports.IssuedCoupon(template_id, path, now, t.face_fen, c.valid_until_time) for c in issued),
    )
    if t.campaign_id and issued:  # last, as a reservation does: the stats row is the hot one
        budget = await campaigns.budget(tx, t.campaign_id)
        row = await stats.add(tx, t.campaign_id, {"coupons_issued": len(issued)})
        if budgets.spent(row, budget or 0):
            raise budgets.budget_exhausted(t.campaign_id)
    given = {c.member_id for c in issued}
    skipped = list(dict.fromkeys(m for m in member_ids if m not in given))
    return issued, skipped
