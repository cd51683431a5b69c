"""Value coming in and going back out: a top-up with the best package, and its refund."""

from dataclasses import replace

from huiyuan.database import Transaction
from services.wallet.domain import lots as lot_rules, top_ups as rules
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.packages import TopUpPackage, applying, best_package
from services.wallet.domain.postings import NO_POLICY
from services.wallet.domain.top_ups import Tender, TopUp
from services.wallet.storage import accounts as stored_accounts, entries, lots, packages as stored_packages, top_ups


async def top_up_by_id(tx: Transaction, top_up_id: str) -> TopUp:
    found = await top_ups.top_up_by_id(tx, top_up_id)
    if found is None:
        raise rules.top_up_not_found(top_up_id)
    return found


async def top_up(
    tx: Transaction,
    *,
    top_up_id: str,
    member_id: str,
    amount: int,
    tender: Tender,
    tender_reference: str,
    store_path: str,
    operator_id: str,
    now,
    packages: list[TopUpPackage] | None = None,
    accounts: MemberAccounts | None = None,
    cashier_id: str = "",
    till_path: str = "",
) -> tuple[TopUp, MemberAccounts]:
    """Load amount as principal, plus the bonus of the best package; usable at once.
    A batch passes what it has already read: the packages at this store now, and the
    member's accounts, locked."""
    if packages is None:
        packages = applying(await stored_packages.all_packages(tx), store_path, now)
    offer = best_package(packages, store_path, amount, now, tender)
    bonus = offer[1] if offer else 0
    applied = [{"package_id": offer[0].package_id, "name": offer[0].name, "bonus_fen": bonus}] if offer else []
    if accounts is None:
        accounts = await stored_accounts.lock_accounts(tx, member_id, now)
    loaded = TopUp(
        top_up_id,
        member_id,
        amount,
        bonus,
        tender,
        tender_reference,
        store_path,
        applied,
        operator_id,
        now,
        cashier_id=cashier_id,
        till_path=till_path,
    )
    await lots.add_lot(tx, top_up_id, member_id, store_path, amount, bonus)
    await entries.post(
        tx, accounts, top_up_id, rules.postings(loaded), operator_id=operator_id, policy=NO_POLICY, now=now
    )
    await top_ups.add_top_up(tx, loaded, now)
    return loaded, accounts


async def refund_top_up(
    tx: Transaction, *, top_up_id: str, refund_id: str, reason: str, operator_id: str, now
) -> tuple[TopUp, MemberAccounts]:
    """Return the principal to the original tender and take the bonus back, from its own
    lot first, then the oldest."""
    found = await top_up_by_id(tx, top_up_id)
    accounts = await stored_accounts.lock_accounts(tx, found.member_id, now)
    # Read again after the accounts' lock, as every writer takes them.
    row = await top_ups.top_up_by_id(tx, top_up_id, lock=True)
    if row is None:
        raise rules.top_up_not_found(top_up_id)
    rules.check_refundable(row, accounts)
    open_lots = await lots.open_lots(tx, row.member_id)
    open_lots.sort(key=lambda lot: lot.lot_id != top_up_id)  # its own lot first, then the oldest
    draws = lot_rules.draw_from_lots(open_lots, row.principal, row.bonus)
    await lots.move_lots(tx, draws, -1)
    await entries.post(
        tx,
        accounts,
        refund_id,
        rules.refund_postings(row, draws, reason),
        operator_id=operator_id,
        policy=NO_POLICY,
        now=now,
    )
    await top_ups.set_refunded(tx, row, now)
    return replace(row, refund_time=now), accounts
