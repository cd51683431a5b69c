"""A member's balance: posted, held and available."""

from huiyuan.database import Transaction
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.storage import accounts


async def balance(tx: Transaction, member_id: str) -> MemberAccounts:
    return await accounts.read_accounts(tx, member_id)
