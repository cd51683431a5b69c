"""Members' homes as the wallet knows them (domain/homes.py): saved on the accounts row,
and the balances moved with them kept in home_moves and counted in the rollups."""

from sqlalchemy import bindparam, insert, update

from huiyuan.database import Transaction, send
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.homes import HomeMove
from services.wallet.domain.reports import home_move_contributions
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.storage.tables import home_moves, member_accounts

_SAVE_HOMES = (
    update(member_accounts)
    .where(member_accounts.c.member_id == bindparam("key"))
    .values(home_store_path=bindparam("home"), home_change_id=bindparam("change_id"))
)
_INSERT_MOVES = insert(home_moves)


async def save_homes(tx: Transaction, accounts: list[MemberAccounts]) -> None:
    if accounts:
        await send(
            tx,
            _SAVE_HOMES,
            [{"key": a.member_id, "home": a.home_store_path, "change_id": a.home_change_id} for a in accounts],
        )


async def add_moves(tx: Transaction, moves: list[HomeMove]) -> None:
    """Balances moved with their members' homes, and what they add to the rollups."""
    if not moves:
        return
    await send(
        tx,
        _INSERT_MOVES,
        [
            {
                "change_id": m.change_id,
                "member_id": m.member_id,
                "from_path": m.from_path,
                "to_path": m.to_path,
                "principal_fen": m.principal,
                "bonus_fen": m.bonus,
                "move_time": m.move_time,
            }
            for m in moves
        ],
    )
    await ROLLUPS.record(tx, [c for m in moves for c in home_move_contributions(m)])
