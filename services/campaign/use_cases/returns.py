"""Giving back the discounts of returned goods to the campaigns that paid them
(domain/returns.py says how much)."""

from huiyuan.database import Transaction
from services.campaign.domain import budgets as rules, returns as domain
from services.campaign.domain.budgets import Adjusted
from services.campaign.storage import reservations, stats


async def give_back(tx: Transaction, order_id: str, adjustments: list[Adjusted]) -> dict[str, int]:
    """Give the adjustments back to the campaigns whose budgets paid them: the fen
    given back, by campaign id."""
    amounts = rules.booked(
        adjustments, await reservations.behind(tx, [a.coupon_code for a in adjustments if a.coupon_code])
    )
    reservation_id = domain.redeemed(order_id, await reservations.of_order(tx, order_id))
    uses = await reservations.uses_of(tx, reservation_id)
    domain.check_returns(order_id, uses, amounts)
    await reservations.give_back(tx, reservation_id, amounts)
    for campaign_id, deltas in domain.returned(uses, amounts):  # last, in id order: the hot rows (use_cases/budgets.py)
        await stats.book(tx, campaign_id, deltas)
    return amounts
