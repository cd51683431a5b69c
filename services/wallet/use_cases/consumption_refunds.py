"""Refunds of a spend: part or all of a capture given back."""

from huiyuan.database import Transaction
from services.wallet.domain import holds as rules
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.lots import undraw
from services.wallet.domain.spend_policy import split_refund
from services.wallet.storage import entries, holds, lots
from services.wallet.use_cases.holds import lock_hold


async def refund_consumption(
    tx: Transaction, *, hold_id: str, amount: int, store_path: str, operator_id: str, refund_id: str, now
) -> tuple[MemberAccounts, int, int]:
    """Return part or all of a capture, principal and bonus in the proportions taken,
    to the lots it came from."""
    hold, accounts = await lock_hold(tx, hold_id)
    rules.check_refundable(hold, amount)
    principal, bonus = split_refund(hold.refunded, amount, hold.captured_principal, hold.captured_bonus)
    back = undraw(await holds.draws_left(tx, hold_id), principal, bonus)
    await lots.move_lots(tx, back, +1)
    await holds.refund_draws(tx, hold_id, back)
    await entries.post(
        tx,
        accounts,
        refund_id,
        rules.consumption_refund(hold, back, store_path),
        operator_id=operator_id,
        policy=hold.policy,
        now=now,
    )
    await holds.set_refunded(tx, hold_id, hold.refunded + amount)
    return accounts, principal, bonus
