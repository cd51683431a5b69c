"""Member accounts: the totals row of each member, read, locked and saved."""

from sqlalchemy import bindparam, select, update

from huiyuan.database import Transaction, insert_new, lock_or_make, send
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.storage.tables import holds, member_accounts

# The statements every spend runs, built once (SQLAlchemy reuses their compiled form).
_ACCOUNTS = select(member_accounts).where(member_accounts.c.member_id == bindparam("member_id"))
_LOCK_ACCOUNTS = _ACCOUNTS.with_for_update()
_LOCK_MANY_ACCOUNTS = (
    select(member_accounts)
    .where(member_accounts.c.member_id.in_(bindparam("member_ids", expanding=True)))
    .order_by(member_accounts.c.member_id)
    .with_for_update()
)
# The accounts of a hold's member, locked: one statement where a lookup and a lock were two.
_LOCK_ACCOUNTS_OF_HOLD = (
    select(member_accounts)
    .where(
        member_accounts.c.member_id
        == select(holds.c.member_id).where(holds.c.hold_id == bindparam("hold_id")).scalar_subquery()
    )
    .with_for_update()
)
_SAVE_ACCOUNTS = (
    update(member_accounts)
    .where(member_accounts.c.member_id == bindparam("key"))
    .values(
        principal_fen=bindparam("principal"),
        bonus_fen=bindparam("bonus"),
        held_principal_fen=bindparam("held_principal"),
        held_bonus_fen=bindparam("held_bonus"),
        update_time=bindparam("now"),
        last_sequence=bindparam("last_sequence"),
    )
)


def to_accounts(row) -> MemberAccounts:
    return MemberAccounts(
        row.member_id,
        row.principal_fen,
        row.bonus_fen,
        row.held_principal_fen,
        row.held_bonus_fen,
        row.last_sequence,
        row.home_store_path,
        row.home_change_id,
    )


async def read_accounts(tx: Transaction, member_id: str) -> MemberAccounts:
    row = (await tx.execute(_ACCOUNTS, {"member_id": member_id})).one_or_none()
    return to_accounts(row) if row else MemberAccounts(member_id)


def _empty(member_id: str, now) -> dict:
    return {
        "member_id": member_id,
        "principal_fen": 0,
        "bonus_fen": 0,
        "held_principal_fen": 0,
        "held_bonus_fen": 0,
        "update_time": now,
        "last_sequence": 0,
        "home_store_path": "",
        "home_change_id": 0,
    }


async def lock_accounts(tx: Transaction, member_id: str, now) -> MemberAccounts:
    """The member's accounts, locked until the transaction ends (made on first use)."""
    return to_accounts(
        await lock_or_make(tx, _LOCK_ACCOUNTS, {"member_id": member_id}, member_accounts, _empty(member_id, now))
    )


async def lock_accounts_of(tx: Transaction, member_ids, now) -> dict[str, MemberAccounts]:
    """Many members' accounts, made where missing, then locked in one statement in
    member_id order: two batches that share members lock them in the same order, so
    neither waits for the other while holding what the other needs (a deadlock)."""
    ids = sorted(set(member_ids))
    await insert_new(tx, member_accounts, [_empty(m, now) for m in ids], conflict="member_id")
    return await lock_existing_accounts(tx, ids)


async def lock_accounts_of_hold(tx: Transaction, hold_id: str) -> MemberAccounts | None:
    """The accounts of the hold's member, locked; None if there is no such hold."""
    row = (await tx.execute(_LOCK_ACCOUNTS_OF_HOLD, {"hold_id": hold_id})).one_or_none()
    return None if row is None else to_accounts(row)


async def lock_existing_accounts(tx: Transaction, member_ids) -> dict[str, MemberAccounts]:
    """Many members' accounts, locked in one statement in member_id order; a member with
    none yet is empty and gets no row (a spend has nothing to take from it)."""
    rows = await tx.execute(_LOCK_MANY_ACCOUNTS, {"member_ids": sorted(set(member_ids))})
    found = {row.member_id: to_accounts(row) for row in rows}
    return {m: found.get(m) or MemberAccounts(m) for m in member_ids}


async def save_accounts(tx: Transaction, accounts: MemberAccounts, now) -> None:
    await save_all_accounts(tx, [accounts], now)


async def save_all_accounts(tx: Transaction, accounts: list[MemberAccounts], now) -> None:
    """Each member's totals, checked against the ledger invariant first."""
    for a in accounts:
        a.check()
    await send(
        tx,
        _SAVE_ACCOUNTS,
        [
            {
                "key": a.member_id,
                "principal": a.principal,
                "bonus": a.bonus,
                "held_principal": a.held_principal,
                "held_bonus": a.held_bonus,
                "now": now,
                "last_sequence": a.last_sequence,
            }
            for a in accounts
        ],
    )
