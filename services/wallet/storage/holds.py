"""Holds and the lots each capture drew from (hold_draws)."""

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database import Transaction, send, together
from huiyuan.runtime.holds import HoldState
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.holds import Hold
from services.wallet.domain.lots import Draw, Lot
from services.wallet.storage.accounts import to_accounts
from services.wallet.storage.tables import hold_draws, holds, lots, member_accounts

_LOCK_HOLD = select(holds).where(holds.c.hold_id == bindparam("hold_id")).with_for_update()
_END_HOLD = (
    update(holds)
    .where(holds.c.hold_id == bindparam("key"))
    .values(
        state=bindparam("new_state"),
        captured_principal_fen=bindparam("principal"),
        captured_bonus_fen=bindparam("bonus"),
    )
)
_INSERT_HOLD = insert(holds)
_INSERT_DRAWS = insert(hold_draws)
# A batch of captures: its holds' members' accounts, locked in member_id order (as
# storage/accounts.py locks many), then the holds, in hold_id order, then those members' lots.
_MEMBERS_OF_HOLDS = select(holds.c.member_id).where(holds.c.hold_id.in_(bindparam("hold_ids", expanding=True)))
_LOCK_ACCOUNTS_OF_HOLDS = (
    select(member_accounts)
    .where(member_accounts.c.member_id.in_(_MEMBERS_OF_HOLDS))
    .order_by(member_accounts.c.member_id)
    .with_for_update()
)
_LOCK_HOLDS = (
    select(holds)
    .where(holds.c.hold_id.in_(bindparam("hold_ids", expanding=True)))
    .order_by(holds.c.hold_id)
    .with_for_update()
)
_LOTS_OF_HOLDS = (
    select(lots)
    .where(lots.c.member_id.in_(_MEMBERS_OF_HOLDS), (lots.c.principal_left_fen > 0) | (lots.c.bonus_left_fen > 0))
    .order_by(lots.c.member_id, lots.c.lot_id)
)


# built once: compiled once (docs/decisions/0004)
_REFUND_DRAW = (
    update(hold_draws)
    .where(hold_draws.c.hold_id == bindparam("key"), hold_draws.c.lot_id == bindparam("lot"))
    .values(
        refunded_principal_fen=hold_draws.c.refunded_principal_fen + bindparam("principal"),
        refunded_bonus_fen=hold_draws.c.refunded_bonus_fen + bindparam("bonus"),
    )
)
_SET_REFUNDED = update(holds).where(holds.c.hold_id == bindparam("key")).values(refunded_fen=bindparam("refunded"))


def to_hold(row) -> Hold:
    return Hold(
        row.hold_id,
        row.member_id,
        row.amount_fen,
        row.principal_fen,
        row.bonus_fen,
        row.captured_principal_fen,
        row.captured_bonus_fen,
        row.refunded_fen,
        HoldState(row.state),
        row.store_path,
        row.order_id,
        row.policy,
        row.expire_time,
    )


async def lock_hold(tx: Transaction, hold_id: str) -> Hold:
    """The hold, locked (after its member's accounts: storage/accounts.py lock_accounts_of_hold)."""
    return to_hold((await tx.execute(_LOCK_HOLD, {"hold_id": hold_id})).one())


async def lock_holds_to_capture(
    tx: Transaction, hold_ids
) -> tuple[dict[str, MemberAccounts], dict[str, Hold], dict[str, list[Lot]]]:
    """The holds' members' accounts (by member), the holds (by id) and the members' lots
    with value left (by member, oldest first): the accounts locked in member_id order,
    then the holds in hold_id order, as every spend locks; sent together, answered in
    one round trip."""
    ids = {"hold_ids": sorted(set(hold_ids))}
    accounts, held, open_lots = (
        rows.all()
        for rows in await together(tx, (_LOCK_ACCOUNTS_OF_HOLDS, ids), (_LOCK_HOLDS, ids), (_LOTS_OF_HOLDS, ids))
    )
    by_member: dict[str, list[Lot]] = {row.member_id: [] for row in accounts}
    for r in open_lots:
        by_member[r.member_id].append(Lot(r.lot_id, r.loaded_store_path, r.principal_left_fen, r.bonus_left_fen))
    return (
        {row.member_id: to_accounts(row) for row in accounts},
        {row.hold_id: to_hold(row) for row in held},
        by_member,
    )


async def pending_lapsed_of(tx: Transaction, member_id: str, now) -> list[Hold]:
    """The member's pending holds past their deadline."""
    rows = await tx.execute(
        select(holds).where(
            holds.c.member_id == member_id, holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now
        )
    )
    return [to_hold(row) for row in rows.all()]


async def lapsed_holds(tx: Transaction, now, limit: int) -> list[str]:
    rows = await tx.execute(
        select(holds.c.hold_id)
        .where(holds.c.state == HoldState.PENDING.value, holds.c.expire_time <= now)
        .order_by(holds.c.expire_time)
        .limit(limit)
    )
    return list(rows.scalars())


async def add_holds(tx: Transaction, placed: list[Hold], now) -> None:
    await send(
        tx,
        _INSERT_HOLD,
        [
            {
                "hold_id": h.hold_id,
                "member_id": h.member_id,
                "amount_fen": h.amount,
                "principal_fen": h.principal,
                "bonus_fen": h.bonus,
                "captured_principal_fen": 0,
                "captured_bonus_fen": 0,
                "refunded_fen": 0,
                "state": h.state.value,
                "store_path": h.store_path,
                "order_id": h.order_id,
                "policy": h.policy,
                "expire_time": h.expire_time,
                "create_time": now,
            }
            for h in placed
        ],
    )


def _ended_row(hold: Hold) -> dict:
    return {
        "key": hold.hold_id,
        "new_state": hold.state.value,
        "principal": hold.captured_principal,
        "bonus": hold.captured_bonus,
    }


async def save_end(tx: Transaction, hold: Hold) -> None:
    """The hold's final state and what it captured."""
    await send(tx, _END_HOLD, _ended_row(hold))


async def save_ended(tx: Transaction, ended: list[Hold]) -> None:
    """save_end() of several holds, in one statement."""
    await send(tx, _END_HOLD, [_ended_row(h) for h in ended])


async def add_draws(tx: Transaction, draws: list[tuple[str, Draw]]) -> None:
    """What each capture (hold id) drew from each lot."""
    await send(
        tx,
        _INSERT_DRAWS,
        [
            {
                "hold_id": hold_id,
                "lot_id": d.lot_id,
                "loaded_store_path": d.loaded_store_path,
                "principal_fen": d.principal,
                "bonus_fen": d.bonus,
                "refunded_principal_fen": 0,
                "refunded_bonus_fen": 0,
            }
            for hold_id, d in draws
        ],
    )


async def draws_left(tx: Transaction, hold_id: str) -> list[Draw]:
    """What the capture drew from each lot, less what refunds gave back, by lot."""
    rows = (
        await tx.execute(select(hold_draws).where(hold_draws.c.hold_id == hold_id).order_by(hold_draws.c.lot_id))
    ).all()
    return [
        Draw(
            r.lot_id,
            r.loaded_store_path,
            r.principal_fen - r.refunded_principal_fen,
            r.bonus_fen - r.refunded_bonus_fen,
        )
        for r in rows
    ]


async def refund_draws(tx: Transaction, hold_id: str, back: list[Draw]) -> None:
    """What a refund gave back to each lot the capture drew from."""
    for d in back:
        await send(tx, _REFUND_DRAW, {"key": hold_id, "lot": d.lot_id, "principal": d.principal, "bonus": d.bonus})


async def set_refunded(tx: Transaction, hold_id: str, refunded: int) -> None:
    await send(tx, _SET_REFUNDED, {"key": hold_id, "refunded": refunded})
