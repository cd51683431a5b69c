"""HQ's adjustments of a member's stored value."""

from huiyuan.database import Transaction
from services.wallet.domain import adjustments as rules
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.lots import draw_from_lots
from services.wallet.domain.postings import NO_POLICY
from services.wallet.storage import accounts as stored_accounts, entries, lots


async def adjust(
    tx: Transaction,
    *,
    adjustment_id: str,
    member_id: str,
    principal_delta: int,
    bonus_delta: int,
    reason: str,
    operator_id: str,
    now,
) -> MemberAccounts:
    """A new entry against the adjustment account, never an edit. Value added is a lot
    loaded at HQ; value taken comes from the oldest lots."""
    accounts = await stored_accounts.lock_accounts(tx, member_id, now)
    take_p, take_b = rules.to_take(accounts, principal_delta, bonus_delta)
    postings = []
    if take_p or take_b:
        draws = draw_from_lots(await lots.open_lots(tx, member_id), take_p, take_b)
        await lots.move_lots(tx, draws, -1)
        postings += rules.taken(draws, reason)
    add_p, add_b = rules.to_add(principal_delta, bonus_delta)
    if add_p or add_b:
        await lots.add_lot(tx, adjustment_id, member_id, rules.HQ, add_p, add_b)
        postings.append(rules.added(add_p, add_b, reason))
    await entries.post(tx, accounts, adjustment_id, postings, operator_id=operator_id, policy=NO_POLICY, now=now)
    return accounts
