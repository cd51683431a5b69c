"""Members' homes: where the liability report counts a member's stored value when it
asks "by home region" rather than "by the store that loaded it" (docs/reports.md).

The member service owns a member's home; the wallet learns each change a few seconds
later (the gateway relays them: WalletService.ApplyMemberHomes) and keeps the latest on
the member's accounts row. Each ledger entry counts at the home known when it is posted;
a change moves the member's whole posted balance from the old home to the new one when
it is applied, under the accounts' lock, so that at every moment the stored value by
home adds up to the members' posted balances, home by home as the wallet knows them.
Pure: no database, no clock."""

from dataclasses import dataclass
from datetime import datetime

from services.wallet.domain.accounts import MemberAccounts


@dataclass(frozen=True)
class HomeMove:
    """A member's posted balance moved from one home to another ("": not known before)."""

    change_id: int
    member_id: str
    from_path: str
    to_path: str
    principal: int
    bonus: int
    move_time: datetime

    @property
    def moves_money(self) -> bool:
        return self.from_path != self.to_path and bool(self.principal or self.bonus)


def counted_at(home: str, path: str) -> str:
    """The node where a member's stored value counts: their home, or where they have
    none (or the wallet does not know it yet) the chain (the root of any path: `path` is
    a store's, or the other home of a move) and no region."""
    return home or path.partition("/")[0]


def apply_home(accounts: MemberAccounts, change_id: int, home: str, now: datetime) -> HomeMove | None:
    """The member service's change change_id (their home is now `home`; "": none)
    applied to the accounts: None if it is not newer than the change applied last (a
    replay, or one relayed out of order); else the move of the posted balance it makes
    (which moves no money when the balance is zero or the home is the same)."""
    assert change_id > 0, change_id
    if change_id <= accounts.home_change_id:
        return None
    move = HomeMove(
        change_id, accounts.member_id, accounts.home_store_path, home, accounts.principal, accounts.bonus, now
    )
    accounts.home_store_path, accounts.home_change_id = home, change_id
    return move
