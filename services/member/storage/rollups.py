"""The member service's rollups (docs/reports.md; what each fact adds:
domain/reports.py), and the raw records their rebuild reads.

ROLLUPS.record() is called where each fact is written, in its transaction:
members.insert_member and insert_new_members (registrations, imports),
members.update_member (a home store moved), visits.count_visit and take_back (visits,
returns), tiers.move (every tier change: climbs, falls after returns, HQ's assignments,
a card type's default tier).
"""

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import and_, bindparam, func, select

from huiyuan.database import BUILT_ONCE, Transaction
from huiyuan.database.rollups import Rollups
from huiyuan.runtime.rollups import Contribution
from services.member.domain import reports
from services.member.storage.tables import (
    first_visits,
    home_store_moves,
    members,
    outbox,
    registrars,
    registrations,
    tier_changes,
    tier_counts,
    tier_moves,
    visit_returns,
    visitors,
    visits,
)

ROLLUPS = Rollups(outbox, registrations, registrars, visitors, first_visits, tier_counts, tier_moves)
BATCH = 5_000  # raw rows per read of the rebuild


async def record(tx: Transaction, contributions: list[Contribution]) -> None:
    await ROLLUPS.record(tx, contributions)


def as_visit(row: Any) -> reports.Visit:
    return reports.Visit(row.order_id, row.member_id, row.store_path, row.amount_fen, row.visit_time)


# the first of a member's visits (Visit.order: the earliest, ties by order_id): one probe
# of ix_visits_member_id_visit_time, read with each visit recorded (storage/visits.py)
FIRST_VISIT = (
    select(visits)
    .where(visits.c.member_id == bindparam("member_id"))
    .order_by(visits.c.visit_time, visits.c.order_id)
    .limit(1)
    .execution_options(**{BUILT_ONCE: True})
)


# ---------------------------------------------------------------- the rebuild


async def raw_facts(tx: Any) -> AsyncIterator[list[Contribution]]:
    """The contributions of every fact the raw records hold, batch by batch, read on tx
    by keyset (members, with their first visits; visits; returns; tier changes; home
    store moves): a batch costs the same however deep it is."""
    async for batch in _members(tx):
        yield batch
    async for batch in _pages(tx, select(visits), visits.c.order_id, lambda r: reports.visited(as_visit(r))):
        yield batch
    x = visit_returns.c  # the visit's member (the return's own member_id is the same since migration 0012)
    returns = select(
        x.return_id,
        x.order_id,
        x.amount_fen,
        x.return_time,
        visits.c.member_id,
        visits.c.store_path,
        visits.c.visit_time,
    ).join(visits, visits.c.order_id == visit_returns.c.order_id)
    async for batch in _pages(
        tx,
        returns,
        visit_returns.c.return_id,
        lambda r: reports.returned(
            reports.Visit(r.order_id, r.member_id, r.store_path, 0, r.visit_time), r.amount_fen, r.return_time
        ),
    ):
        yield batch
    async for batch in _pages(
        tx,
        select(tier_changes),
        tier_changes.c.change_id,
        lambda r: reports.tier_moved(
            reports.TierMove(r.member_id, r.home_store_path, r.from_tier_id or "", r.to_tier_id, r.change_time)
        ),
    ):
        yield batch
    async for batch in _pages(
        tx,
        select(home_store_moves),
        home_store_moves.c.move_id,
        lambda r: reports.home_moved(reports.HomeMove(r.member_id, r.from_path, r.to_path, r.tier_id, r.move_time)),
    ):
        yield batch


async def _pages(tx: Any, statement: Any, key: Any, contributions: Any) -> AsyncIterator[list[Contribution]]:
    last = None
    while True:
        page = statement.order_by(key).limit(BATCH)
        if last is not None:
            page = page.where(key > last)
        rows = (await tx.execute(page)).all()
        if not rows:
            return
        yield [c for r in rows for c in contributions(r)]
        last = getattr(rows[-1], key.name)


async def _members(tx: Any) -> AsyncIterator[list[Contribution]]:
    """Each member's registration - homed and tiered as they were then: where their first
    home store move left from, the tier their first change left (else as they are) -
    and their first visit ever."""
    m = members.c
    first_home = (
        select(home_store_moves.c.from_path)
        .where(home_store_moves.c.member_id == m.member_id)
        .order_by(home_store_moves.c.move_id)
        .limit(1)
        .scalar_subquery()
    )
    first_tier = (
        select(func.coalesce(tier_changes.c.from_tier_id, ""))
        .where(tier_changes.c.member_id == m.member_id)
        .order_by(tier_changes.c.change_id)
        .limit(1)
        .scalar_subquery()
    )
    statement = select(
        m.member_id,
        m.registered_org_path,
        m.channel,
        m.cashier_id,
        func.coalesce(first_home, m.home_store_path).label("home_store_path"),
        func.coalesce(first_tier, m.tier_id, "").label("tier_id"),
        m.create_time,
    )
    last = None
    while True:
        page = statement.order_by(m.member_id).limit(BATCH)
        if last is not None:
            page = page.where(m.member_id > last)
        rows = (await tx.execute(page)).all()
        if not rows:
            return
        out = [
            c
            for r in rows
            for c in reports.registered(
                reports.Registration(
                    r.member_id,
                    r.registered_org_path,
                    r.channel,
                    r.cashier_id,
                    r.home_store_path,
                    r.tier_id,
                    r.create_time,
                )
            )
        ]
        # their first visits: the visits at each member's earliest time, ties by order_id
        first, upto = rows[0].member_id, rows[-1].member_id
        in_page = and_(visits.c.member_id >= first, visits.c.member_id <= upto)
        earliest = (
            select(visits.c.member_id, func.min(visits.c.visit_time).label("visit_time"))
            .where(in_page)
            .group_by(visits.c.member_id)
            .subquery()
        )
        tied: dict[str, list[reports.Visit]] = {}
        for r in await tx.execute(
            select(visits).join(
                earliest,
                and_(visits.c.member_id == earliest.c.member_id, visits.c.visit_time == earliest.c.visit_time),
            )
        ):
            tied.setdefault(r.member_id, []).append(as_visit(r))
        for candidates in tied.values():
            visit = reports.earliest(candidates)
            assert visit is not None
            out += reports.first_visit(visit)
        yield out
        last = upto
