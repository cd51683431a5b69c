"""Payment PINs: a member's row holds the slow hash and the wrong tries in a row."""

from sqlalchemy import delete, select

from huiyuan.database import Transaction, insert_for
from services.member.domain.pins import PinState
from services.member.storage.tables import payment_pins


async def state_of(tx: Transaction, member_id: str, *, for_update: bool = False) -> PinState:
    query = select(payment_pins).where(payment_pins.c.member_id == member_id)
    row = (await tx.execute(query.with_for_update() if for_update else query)).one_or_none()
    if row is None:
        return PinState(member_id, None)
    return PinState(member_id, row.pin_hash, row.failed_tries, row.locked_until, row.update_time)


async def save(tx: Transaction, state: PinState) -> None:
    """The member's PIN row as state says, made on the first PIN (two first PINs set at
    once: the later one stands, as if it came second)."""
    values = {
        "pin_hash": state.pin_hash,
        "failed_tries": state.failed_tries,
        "locked_until": state.locked_until,
        "update_time": state.update_time,
    }
    await tx.execute(
        insert_for(tx)(payment_pins)
        .values(member_id=state.member_id, **values)
        .on_conflict_do_update(index_elements=["member_id"], set_=values)
    )


async def clear(tx: Transaction, member_id: str) -> None:
    await tx.execute(delete(payment_pins).where(payment_pins.c.member_id == member_id))
