"""Members' homes applied as the member service relays them (domain/homes.py)."""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.database import Transaction
from services.wallet.domain.homes import apply_home
from services.wallet.storage.accounts import lock_accounts_of
from services.wallet.storage.homes import add_moves, save_homes

MAX_HOMES = 5000  # homes an ApplyMemberHomes call carries: one transaction


@dataclass(frozen=True)
class HomeChange:
    change_id: int
    member_id: str
    home_store_path: str


async def apply_homes(tx: Transaction, changes: list[HomeChange], now: datetime) -> tuple[int, int]:
    """Each member's latest change applied under their accounts' lock (made where the
    member has none yet, so that their first top-up counts at their home): how many
    changed what the wallet knew, and how many of those moved a balance."""
    latest: dict[str, HomeChange] = {}
    for c in changes:  # a member's earlier changes in the batch would be overtaken at once
        if c.member_id not in latest or c.change_id > latest[c.member_id].change_id:
            latest[c.member_id] = c
    accounts = await lock_accounts_of(tx, latest, now)
    applied, moves = [], []
    for member_id, c in latest.items():
        move = apply_home(accounts[member_id], c.change_id, c.home_store_path, now)
        if move is not None:
            applied.append(accounts[member_id])
            if move.moves_money:
                moves.append(move)
    await save_homes(tx, applied)
    await add_moves(tx, moves)
    return len(applied), len(moves)
