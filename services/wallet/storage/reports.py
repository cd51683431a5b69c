"""The sums behind reports, by business day (huiyuan.runtime.clock): spends across
stores, a store's day of entries and count card entries, its tenders' takings.
PostgreSQL sums bigints as numeric: every sum comes back as an int."""

from datetime import date, timedelta

from sqlalchemy import func, select

from huiyuan.database import Transaction
from huiyuan.runtime.business_time import day_start
from services.wallet.domain.reports import CARD_MONEY, CARD_USES, SPENDS
from services.wallet.storage.tables import count_card_entries, count_cards, entries, top_ups


def _days(start: date, end: date):
    return day_start(start), day_start(end + timedelta(days=1))


async def spent_across_stores(tx: Transaction, start: date, end: date) -> tuple[list, list]:
    """Over the period: (loaded at, spent at, stored value spent net of refunds) for value
    spent at a store other than the one that loaded it; and (sold at, used at, value
    earned net of undone uses) for count cards used at a store other than the seller."""
    c, k = entries.c, count_card_entries.c
    since, until = _days(start, end)
    spent = -(func.sum(c.principal_delta_fen + c.bonus_delta_fen))
    rows = await tx.execute(
        select(c.loaded_store_path, c.store_path, spent.label("spent"))
        .where(c.kind.in_(SPENDS), c.loaded_store_path != c.store_path, c.post_time >= since, c.post_time < until)
        .group_by(c.loaded_store_path, c.store_path)
    )
    card_rows = await tx.execute(
        select(k.sold_store_path, k.store_path, -func.sum(k.value_delta_fen))
        .where(k.kind.in_(CARD_USES), k.sold_store_path != k.store_path, k.post_time >= since, k.post_time < until)
        .group_by(k.sold_store_path, k.store_path)
    )
    return (
        [(loaded, at, int(amount)) for loaded, at, amount in rows],
        [(sold, at, int(amount)) for sold, at, amount in card_rows],
    )


async def store_day_entries(tx: Transaction, store_path: str, day: date) -> tuple[dict[str, int], dict[str, int]]:
    """The principal and the bonus of one store's entries on one business day, by kind."""
    c = entries.c
    rows = (
        await tx.execute(
            select(c.kind, func.sum(c.principal_delta_fen), func.sum(c.bonus_delta_fen))
            .where(
                c.store_path == store_path,
                c.post_time >= day_start(day),
                c.post_time < day_start(day + timedelta(days=1)),
            )
            .group_by(c.kind)
        )
    ).all()
    return {kind: int(p) for kind, p, _ in rows}, {kind: int(b) for kind, _, b in rows}


async def store_day_card_entries(tx: Transaction, store_path: str, day: date) -> dict[str, int]:
    """The value of one store's count card entries on one business day, by kind."""
    k = count_card_entries.c
    rows = await tx.execute(
        select(k.kind, func.sum(k.value_delta_fen))
        .where(
            k.store_path == store_path, k.post_time >= day_start(day), k.post_time < day_start(day + timedelta(days=1))
        )
        .group_by(k.kind)
    )
    return {kind: int(fen) for kind, fen in rows}


async def store_day_tenders(tx: Transaction, store_path: str, day: date) -> tuple[list, list]:
    """At one store on one business day: (tender, "top_up" or "refunded", principal) of
    the top-ups paid and refunded; (tender, SALE or REFUND, value) of count cards."""
    c = top_ups.c
    start, end = _days(day, day)
    top_up_sums = []
    for time_column, field in ((c.create_time, "top_up"), (c.refund_time, "refunded")):
        rows = await tx.execute(
            select(c.tender, func.sum(c.principal_fen))
            .where(c.store_path == store_path, time_column >= start, time_column < end)
            .group_by(c.tender)
        )
        top_up_sums += [(tender, field, int(fen)) for tender, fen in rows]
    k = count_card_entries.c
    rows = await tx.execute(
        select(count_cards.c.tender, k.kind, func.sum(k.value_delta_fen))
        .join(count_cards, count_cards.c.card_id == k.card_id)
        .where(k.kind.in_(CARD_MONEY), k.store_path == store_path, k.post_time >= start, k.post_time < end)
        .group_by(count_cards.c.tender, k.kind)
    )
    return top_up_sums, [(tender, kind, int(fen)) for tender, kind, fen in rows]
