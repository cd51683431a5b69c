"""Movements: the member's history of points, append-only, and a store's day."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, insert, select

from huiyuan.database import Transaction, send
from huiyuan.runtime.business_time import day_start
from huiyuan.runtime.ids import new_id
from services.points.domain.lots import MovementKind
from services.points.domain.reports import movement_contributions
from services.points.storage.rollups import ROLLUPS
from services.points.storage.tables import movements

_INSERT_MOVEMENT = insert(movements)  # built once (storage/lots.py)


def movement_row(member_id: str, kind: MovementKind, delta: int, now, *, order_id="", store_path="", memo="") -> dict:
    return {
        "movement_id": new_id("mv"),
        "member_id": member_id,
        "kind": kind.value,
        "delta_points": delta,
        "order_id": order_id,
        "store_path": store_path,
        "memo": memo[:200],
        "create_time": now,
    }


async def record(
    tx: Transaction, member_id: str, kind: MovementKind, delta: int, now, *, order_id="", store_path="", memo=""
) -> None:
    await record_all(
        tx, [movement_row(member_id, kind, delta, now, order_id=order_id, store_path=store_path, memo=memo)]
    )


async def record_all(tx: Transaction, rows: list[dict]) -> None:
    """Movements made by movement_row(), in one statement, with what they add to the
    reports' rollups (every movement but the expiry job's is written here)."""
    if not rows:
        return
    await send(tx, _INSERT_MOVEMENT, rows)
    await ROLLUPS.record(
        tx,
        [
            c
            for r in rows
            for c in movement_contributions(r["kind"], r["delta_points"], r["store_path"], r["create_time"])
        ],
    )


@dataclass(frozen=True)
class Movement:
    movement_id: str
    kind: str
    delta_points: int
    order_id: str
    store_path: str
    memo: str
    create_time: datetime


async def history(tx: Transaction, member_id: str, before: str | None, limit: int) -> list[Movement]:
    q = select(movements).where(movements.c.member_id == member_id)
    if before is not None:
        q = q.where(movements.c.movement_id < before)
    return [
        Movement(r.movement_id, r.kind, r.delta_points, r.order_id, r.store_path, r.memo, r.create_time)
        for r in (await tx.execute(q.order_by(movements.c.movement_id.desc()).limit(limit))).all()
    ]


async def store_day(tx: Transaction, store_path: str, day: date) -> dict[str, int]:
    """Points moved at one store on one business day, by kind of movement (grants and
    spends)."""
    c = movements.c
    rows = await tx.execute(
        select(c.kind, func.sum(c.delta_points))
        .where(
            c.store_path == store_path,
            c.create_time >= day_start(day),
            c.create_time < day_start(day + timedelta(days=1)),
            c.kind.in_([MovementKind.GRANT.value, MovementKind.SPEND.value]),
        )
        .group_by(c.kind)
    )
    return {kind: int(points) for kind, points in rows}
