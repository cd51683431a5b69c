"""Top-ups as the tiers count them."""

from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from huiyuan.database import Transaction, send
from services.member.domain.top_ups import TopUp
from services.member.storage.tables import top_ups

_TOP_UP = select(top_ups).where(top_ups.c.top_up_id == bindparam("top_up_id"))
_INSERT = insert(top_ups)
_REFUNDED = update(top_ups).where(top_ups.c.top_up_id == bindparam("key")).values(refund_time=bindparam("at"))


async def get(tx: Transaction, top_up_id: str) -> TopUp | None:
    row = (await tx.execute(_TOP_UP, {"top_up_id": top_up_id})).one_or_none()
    if row is None:
        return None
    return TopUp(row.top_up_id, row.member_id, row.store_path, row.amount_fen, row.top_up_time, row.refund_time)


async def insert_top_up(tx: Transaction, top_up: TopUp) -> None:
    await send(
        tx,
        _INSERT,
        {
            "top_up_id": top_up.top_up_id,
            "member_id": top_up.member_id,
            "store_path": top_up.store_path,
            "amount_fen": top_up.amount_fen,
            "top_up_time": top_up.top_up_time,
            "refund_time": None,
        },
    )


async def refunded(tx: Transaction, top_up_id: str, when: datetime) -> None:
    await send(tx, _REFUNDED, {"key": top_up_id, "at": when})
