"""Reads: the statement and cross-store settlement, by business day (huiyuan.runtime.clock)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select

from huiyuan.runtime.clock import day_start
from huiyuan.runtime.db import under
from huiyuan.runtime.requests import is_under
from services.wallet.domain import EntryKind, Tender
from services.wallet.storage import entries, top_ups

SPENDS = [EntryKind.CONSUMPTION.value, EntryKind.CONSUMPTION_REFUND.value]


@dataclass
class StatementQuery:
    member_id: str
    start_date: date | None = None
    end_date: date | None = None
    store_path: str = ""
    kind: EntryKind | None = None

    def where(self):
        c = entries.c
        conditions = [c.member_id == self.member_id]
        if self.start_date:
            conditions.append(c.post_time >= day_start(self.start_date))
        if self.end_date:
            conditions.append(c.post_time < day_start(self.end_date + timedelta(days=1)))
        if self.store_path:
            conditions.append(under(c.store_path, self.store_path))
        if self.kind:
            conditions.append(c.kind == self.kind.value)
        return conditions


async def statement(db, query: StatementQuery, before: tuple[datetime, str] | None, limit: int) -> list:
    """Entries newest first, after the (post_time, entry_id) position `before`. By time
    first: an entry id starts with its operation's, whose prefix says its kind (t_ a
    top-up, a_ an adjustment, ...), so ids sort by time only within one kind. Entries of
    one operation share their time and follow their place in it."""
    c = entries.c
    q = select(entries).where(*query.where())
    if before is not None:
        q = q.where(or_(c.post_time < before[0], and_(c.post_time == before[0], c.entry_id < before[1])))
    return (await db.execute(q.order_by(c.post_time.desc(), c.entry_id.desc()).limit(limit))).all()


@dataclass
class StorePosition:
    store_path: str
    loaded_here_spent_elsewhere: int = 0
    loaded_elsewhere_spent_here: int = 0

    @property
    def net(self) -> int:
        return self.loaded_elsewhere_spent_here - self.loaded_here_spent_elsewhere


async def settlement(db, org_path: str, start: date, end: date) -> list[StorePosition]:
    """Each store's cross-store position over the period: value loaded at one store and
    spent (net of refunds) at another is owed by the loading store to the spending one."""
    c = entries.c
    spent = -(func.sum(c.principal_delta_fen + c.bonus_delta_fen))
    rows = await db.execute(
        select(c.loaded_store_path, c.store_path, spent.label("spent"))
        .where(c.kind.in_(SPENDS), c.loaded_store_path != c.store_path,
               c.post_time >= day_start(start), c.post_time < day_start(end + timedelta(days=1)))
        .group_by(c.loaded_store_path, c.store_path))
    positions: dict[str, StorePosition] = {}

    def position(store: str) -> StorePosition | None:
        if is_under(store, org_path):
            return positions.setdefault(store, StorePosition(store))
        return None

    for loaded, spent_at, amount in rows:
        amount = int(amount)  # PostgreSQL sums bigints as numeric
        if (p := position(loaded)) is not None:
            p.loaded_here_spent_elsewhere += amount
        if (p := position(spent_at)) is not None:
            p.loaded_elsewhere_spent_here += amount
    return sorted(positions.values(), key=lambda p: p.store_path)


async def store_day(db, store_path: str, day: date) -> tuple[int, int, int]:
    """(principal loaded, bonus given, stored value spent) at one store on one business day."""
    c = entries.c
    rows = (await db.execute(
        select(c.kind, func.sum(c.principal_delta_fen), func.sum(c.bonus_delta_fen))
        .where(c.store_path == store_path, c.post_time >= day_start(day), c.post_time < day_start(day + timedelta(days=1)))
        .group_by(c.kind))).all()
    principal = {kind: int(p) for kind, p, _ in rows}
    bonus = {kind: int(b) for kind, _, b in rows}

    def both(kind: EntryKind) -> int:
        return principal.get(kind.value, 0) + bonus.get(kind.value, 0)

    loaded = principal.get(EntryKind.TOP_UP.value, 0) + principal.get(EntryKind.TOP_UP_REFUND.value, 0)
    spent = -(both(EntryKind.CONSUMPTION) + both(EntryKind.CONSUMPTION_REFUND))
    return loaded, bonus.get(EntryKind.TOP_UP_BONUS.value, 0), spent


@dataclass
class TopUpTakings:
    tender: Tender
    top_up: int = 0  # principal paid with it that day
    refunded: int = 0  # principal given back to it that day


async def store_day_takings(db, store_path: str, day: date) -> list[TopUpTakings]:
    """What each tender took for top-ups at one store on one business day, and gave
    back for top-up refunds made that day (a refund goes back to its top-up's tender,
    from its top-up's store), in the enum's order: what a till's drawer or a payment
    provider's statement shows at closing."""
    c = top_ups.c
    start, end = day_start(day), day_start(day + timedelta(days=1))
    by_tender: dict[str, TopUpTakings] = {}
    for time_column, field in ((c.create_time, "top_up"), (c.refund_time, "refunded")):
        rows = await db.execute(select(c.tender, func.sum(c.principal_fen)).where(
            c.store_path == store_path, time_column >= start, time_column < end).group_by(c.tender))
        for tender, fen in rows:
            takings = by_tender.setdefault(tender, TopUpTakings(Tender(tender)))
            setattr(takings, field, int(fen))  # PostgreSQL sums bigints as numeric
    order = list(Tender)
    return sorted(by_tender.values(), key=lambda t: order.index(t.tender))
