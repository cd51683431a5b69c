"""Reads: the statement, cross-store settlement and a store's day, by business day
(huiyuan.runtime.clock). Count cards (计次卡) are prepaid value too: a card sold at one
store and used at another settles as stored value does, and their sales are in the
till's takings."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from huiyuan.runtime.clock import day_start
from huiyuan.database.engines import under
from huiyuan.runtime.requests import is_under
from services.wallet.domain.count_cards import EntryKind as CardEntry
from services.wallet.domain.accounts import EntryKind, Tender
from services.wallet.storage.tables import count_card_entries, count_cards, entries, top_ups

SPENDS = [EntryKind.CONSUMPTION.value, EntryKind.CONSUMPTION_REFUND.value]
CARD_USES = [CardEntry.USE.value, CardEntry.USE_UNDONE.value]
CARD_MONEY = [CardEntry.SALE.value, CardEntry.REFUND.value]


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


async def statement(db, query: StatementQuery, before: int | None, limit: int) -> list:
    """The member's entries newest first, those posted before the entry with sequence
    `before` (the last one of the page before). By sequence, not by time: two calls on
    one member take a time stamp each before they queue for its lock, so the later stamp
    can be posted first; and the entries of a batch share one."""
    c = entries.c
    q = select(entries).where(*query.where())
    if before is not None:
        q = q.where(c.sequence < before)
    return (await db.execute(q.order_by(c.sequence.desc()).limit(limit))).all()


@dataclass
class StorePosition:
    store_path: str
    loaded_here_spent_elsewhere: int = 0
    loaded_elsewhere_spent_here: int = 0
    card_sold_here_used_elsewhere: int = 0  # count cards: the value their uses earned
    card_sold_elsewhere_used_here: int = 0

    @property
    def net(self) -> int:
        return (self.loaded_elsewhere_spent_here + self.card_sold_elsewhere_used_here
                - self.loaded_here_spent_elsewhere - self.card_sold_here_used_elsewhere)


async def settlement(db, org_path: str, start: date, end: date) -> list[StorePosition]:
    """Each store's cross-store position over the period: value loaded at one store and
    spent (net of refunds) at another is owed by the loading store to the spending one;
    so is a count card's use (net of undone uses) at a store other than the one that
    sold it, for the share of the price the use earned."""
    c, k = entries.c, count_card_entries.c
    since, until = day_start(start), day_start(end + timedelta(days=1))
    spent = -(func.sum(c.principal_delta_fen + c.bonus_delta_fen))
    rows = await db.execute(
        select(c.loaded_store_path, c.store_path, spent.label("spent"))
        .where(c.kind.in_(SPENDS), c.loaded_store_path != c.store_path, c.post_time >= since, c.post_time < until)
        .group_by(c.loaded_store_path, c.store_path))
    card_rows = await db.execute(
        select(k.sold_store_path, k.store_path, -func.sum(k.value_delta_fen))
        .where(k.kind.in_(CARD_USES), k.sold_store_path != k.store_path, k.post_time >= since, k.post_time < until)
        .group_by(k.sold_store_path, k.store_path))
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
    for sold, used_at, amount in card_rows:
        amount = int(amount)
        if (p := position(sold)) is not None:
            p.card_sold_here_used_elsewhere += amount
        if (p := position(used_at)) is not None:
            p.card_sold_elsewhere_used_here += amount
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


async def count_card_day(db, store_path: str, day: date) -> tuple[int, int]:
    """(count cards sold net of the refunds made, value earned by the uses punched net of
    those undone) at one store on one business day."""
    k = count_card_entries.c
    rows = await db.execute(select(k.kind, func.sum(k.value_delta_fen)).where(
        k.store_path == store_path, k.post_time >= day_start(day), k.post_time < day_start(day + timedelta(days=1)))
        .group_by(k.kind))
    value = {kind: int(fen) for kind, fen in rows}
    sold = value.get(CardEntry.SALE.value, 0) + value.get(CardEntry.REFUND.value, 0)
    return sold, -(value.get(CardEntry.USE.value, 0) + value.get(CardEntry.USE_UNDONE.value, 0))


@dataclass
class TopUpTakings:
    tender: Tender
    top_up: int = 0  # principal paid with it that day
    refunded: int = 0  # principal given back to it that day
    count_card: int = 0  # paid for count cards that day
    count_card_refunded: int = 0  # given back for count cards refunded that day


async def store_day_takings(db, store_path: str, day: date) -> list[TopUpTakings]:
    """What each tender took for top-ups and count cards at one store on one business
    day, and gave back for their refunds made that day (a refund goes back to the
    tender that paid, from the store that took it), in the enum's order: what a till's
    drawer or a payment provider's statement shows at closing."""
    c = top_ups.c
    start, end = day_start(day), day_start(day + timedelta(days=1))
    by_tender: dict[str, TopUpTakings] = {}
    for time_column, field in ((c.create_time, "top_up"), (c.refund_time, "refunded")):
        rows = await db.execute(select(c.tender, func.sum(c.principal_fen)).where(
            c.store_path == store_path, time_column >= start, time_column < end).group_by(c.tender))
        for tender, fen in rows:
            takings = by_tender.setdefault(tender, TopUpTakings(Tender(tender)))
            setattr(takings, field, int(fen))  # PostgreSQL sums bigints as numeric
    k = count_card_entries.c
    rows = await db.execute(
        select(count_cards.c.tender, k.kind, func.sum(k.value_delta_fen))
        .join(count_cards, count_cards.c.card_id == k.card_id)
        .where(k.kind.in_(CARD_MONEY), k.store_path == store_path, k.post_time >= start, k.post_time < end)
        .group_by(count_cards.c.tender, k.kind))
    for tender, kind, fen in rows:
        takings = by_tender.setdefault(tender, TopUpTakings(Tender(tender)))
        if kind == CardEntry.SALE.value:
            takings.count_card += int(fen)
        else:
            takings.count_card_refunded -= int(fen)
    order = list(Tender)
    return sorted(by_tender.values(), key=lambda t: order.index(t.tender))
