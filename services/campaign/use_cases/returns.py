"""Giving back the discounts of returned goods to the campaigns that paid them
(domain/returns.py says how much)."""

from datetime import datetime

from huiyuan.database import Transaction
from services.campaign.domain import budgets as rules, reports, returns as domain
from services.campaign.domain.budgets import Adjusted
from services.campaign.storage import reservations, rollups, stats


async def give_back(tx: Transaction, order_id: str, adjustments: list[Adjusted], now: datetime) -> dict[str, int]:
    """Give the adjustments back to the campaigns whose budgets paid them: the fen
    given back, by campaign id. The campaigns' own part is kept and reported (on the
    return's day, at the order's node)."""
    amounts = rules.booked(
        adjustments, await reservations.behind(tx, [a.coupon_code for a in adjustments if a.coupon_code])
    )
    found = await reservations.of_order(tx, order_id)
    reservation_id = domain.redeemed(order_id, found)
    uses = await reservations.uses_of(tx, reservation_id)
    domain.check_returns(order_id, uses, amounts)
    pairs = [(a.campaign_id, a.amount_fen) for a in adjustments]
    own = {c: reports.own_fen(c, pairs) for c in sorted({a.campaign_id for a in adjustments if a.campaign_id})}
    await reservations.give_back(tx, reservation_id, amounts, own, now)
    (path,) = [r.store_path for r in found if r.reservation_id == reservation_id]
    await rollups.record(tx, reports.returned(path, now, own))  # sent, before the hot rows
    for campaign_id, deltas in domain.returned(uses, amounts):  # last, in id order: the hot rows (use_cases/budgets.py)
        await stats.book(tx, campaign_id, deltas)
    return amounts
