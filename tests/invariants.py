"""The ledgers' invariants, read straight from a service's tables: what every test
that moves money or points may end with."""

from sqlalchemy import func, select

from huiyuan.database.engines import make_sync_engine
from services.points.storage import tables as points_tables
from services.wallet.storage.tables import entries, holds, lots, member_accounts


def assert_books_balance(wallet_url: str) -> None:
    """Every member row is the sum of its entries and of its lots, and holds what its
    pending holds hold; the system accounts hold minus the members' total, so the sum
    over all accounts is zero. A member's entries are numbered 1 to its last_sequence."""
    engine = make_sync_engine(wallet_url, "wallet")
    with engine.connect() as db:
        by_entries = dict(
            db.execute(
                select(
                    entries.c.member_id, func.sum(entries.c.principal_delta_fen + entries.c.bonus_delta_fen)
                ).group_by(entries.c.member_id)
            ).all()
        )
        by_lots = dict(
            db.execute(
                select(lots.c.member_id, func.sum(lots.c.principal_left_fen + lots.c.bonus_left_fen)).group_by(
                    lots.c.member_id
                )
            ).all()
        )
        pending = {
            r.member_id: (r.principal, r.bonus)
            for r in db.execute(
                select(
                    holds.c.member_id,
                    func.sum(holds.c.principal_fen).label("principal"),
                    func.sum(holds.c.bonus_fen).label("bonus"),
                )
                .where(holds.c.state == "PENDING")
                .group_by(holds.c.member_id)
            )
        }
        numbered = {
            r.member_id: (r.first, r.last, r.count)
            for r in db.execute(
                select(
                    entries.c.member_id,
                    func.min(entries.c.sequence).label("first"),
                    func.max(entries.c.sequence).label("last"),
                    func.count().label("count"),
                ).group_by(entries.c.member_id)
            )
        }
        rows = db.execute(select(member_accounts)).all()
        system = (
            db.execute(select(func.sum(-(entries.c.principal_delta_fen + entries.c.bonus_delta_fen)))).scalar() or 0
        )
    engine.dispose()
    for row in rows:
        total = row.principal_fen + row.bonus_fen
        assert by_entries.get(row.member_id, 0) == total == by_lots.get(row.member_id, 0), row
        assert 0 <= row.held_principal_fen <= row.principal_fen and 0 <= row.held_bonus_fen <= row.bonus_fen
        assert (row.held_principal_fen, row.held_bonus_fen) == pending.get(row.member_id, (0, 0)), row
        assert numbered.get(row.member_id, (1, 0, 0)) == (1, row.last_sequence, row.last_sequence), row
    assert system + sum(r.principal_fen + r.bonus_fen for r in rows) == 0


def points_spent(points_url: str, member_id: str) -> int:
    """Points taken out of the member's lots (granted minus left), after checking that
    no lot is below zero or above what it was granted."""
    engine = make_sync_engine(points_url, "points")
    c = points_tables.lots.c
    with engine.connect() as db:
        rows = db.execute(select(c.granted_points, c.points_left).where(c.member_id == member_id)).all()
    engine.dispose()
    assert all(0 <= r.points_left <= r.granted_points for r in rows), rows
    return sum(r.granted_points - r.points_left for r in rows)


def assert_points_held(points_url: str) -> None:
    """Every member's held points are what its pending holds hold, and each pending
    hold's draws from lots add up to it."""
    engine = make_sync_engine(points_url, "points")
    holds, draws, members = points_tables.holds.c, points_tables.hold_draws.c, points_tables.member_points.c
    with engine.connect() as db:
        pending = dict(
            db.execute(
                select(holds.member_id, func.sum(holds.points))
                .where(holds.state == "PENDING")
                .group_by(holds.member_id)
            ).all()
        )
        held = dict(db.execute(select(members.member_id, members.held_points)).all())
        drawn = db.execute(
            select(holds.hold_id, holds.points, func.sum(draws.points))
            .join(points_tables.hold_draws, draws.hold_id == holds.hold_id)
            .where(holds.state == "PENDING")
            .group_by(holds.hold_id, holds.points)
        ).all()
        pending_holds = db.execute(select(func.count()).where(holds.state == "PENDING")).scalar()
    engine.dispose()
    assert {m: n for m, n in held.items() if n} == {m: int(n) for m, n in pending.items()}
    assert len(drawn) == pending_holds and all(points == int(total) for _, points, total in drawn), drawn
