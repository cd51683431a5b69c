"""Top-ups: the record of each, refunded at most once."""

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database import Transaction, send
from services.wallet.domain.reports import top_up_contributions, top_up_refund_contributions
from services.wallet.domain.top_ups import Tender, TopUp
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.storage.tables import top_ups

_INSERT_TOP_UP = insert(top_ups)


_SET_REFUNDED = (  # built once: compiled once (docs/decisions/0004)
    update(top_ups).where(top_ups.c.top_up_id == bindparam("key")).values(refund_time=bindparam("at"))
)


def to_top_up(row) -> TopUp:
    return TopUp(
        row.top_up_id,
        row.member_id,
        row.principal_fen,
        row.bonus_fen,
        Tender(row.tender),
        row.tender_reference,
        row.store_path,
        row.packages,
        row.operator_id,
        row.create_time,
        row.refund_time,
        row.cashier_id,
        row.till_path,
    )


async def top_up_by_id(tx: Transaction, top_up_id: str, lock: bool = False) -> TopUp | None:
    query = select(top_ups).where(top_ups.c.top_up_id == top_up_id)
    row = (await tx.execute(query.with_for_update() if lock else query)).one_or_none()
    return None if row is None else to_top_up(row)


async def add_top_up(tx: Transaction, top_up: TopUp, now) -> None:
    await send(
        tx,
        _INSERT_TOP_UP,
        {
            "top_up_id": top_up.top_up_id,
            "member_id": top_up.member_id,
            "principal_fen": top_up.principal,
            "bonus_fen": top_up.bonus,
            "tender": top_up.tender.value,
            "tender_reference": top_up.tender_reference,
            "store_path": top_up.store_path,
            "packages": top_up.packages,
            "operator_id": top_up.operator_id,
            "refund_time": None,
            "create_time": now,
            "cashier_id": top_up.cashier_id,
            "till_path": top_up.till_path,
        },
    )
    await ROLLUPS.record(tx, top_up_contributions(top_up))


async def set_refunded(tx: Transaction, top_up: TopUp, now) -> None:
    await send(tx, _SET_REFUNDED, {"key": top_up.top_up_id, "at": now})
    await ROLLUPS.record(tx, top_up_refund_contributions(top_up, now))
