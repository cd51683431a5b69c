"""The wallet's rollups for the reports (docs/reports.md): the ROLLUPS the facts are
recorded to (storage/entries.py, top_ups.py, count_cards.py) and the raw records a
rebuild recomputes them from, with the same domain functions (domain/reports.py)."""

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import Tuple, select, tuple_

from huiyuan.database import Transaction
from huiyuan.database.rollups import Rollups
from huiyuan.runtime.rollups import Contribution
from services.wallet.domain import reports
from services.wallet.domain.homes import HomeMove
from services.wallet.storage.tables import (
    count_card_entries,
    count_card_value,
    count_cards,
    entries,
    home_moves,
    rollup_outbox,
    stored_value,
    stored_value_by_home,
    top_up_takings,
    top_ups,
)

ROLLUPS = Rollups(rollup_outbox, stored_value, stored_value_by_home, count_card_value, top_up_takings)
RAW_BATCH = 5000  # raw rows read per statement by a rebuild


def top_up_of_row(row: Any) -> Any:
    from services.wallet.storage.top_ups import to_top_up  # (top_ups imports this module)

    return to_top_up(row)


async def _keyset(tx: Transaction, query: Any, key: Any) -> AsyncIterator[list[Any]]:
    """query's rows in batches of RAW_BATCH, by key (a unique column, or a tuple_() of
    the columns of a unique key), on tx."""
    columns = list(key.clauses) if isinstance(key, Tuple) else [key]
    after = None
    while True:
        q = query if after is None else query.where(key > (tuple_(*after) if len(after) > 1 else after[0]))
        rows = (await tx.execute(q.order_by(*columns).limit(RAW_BATCH))).all()
        if not rows:
            return
        yield rows
        after = [getattr(rows[-1], c.name) for c in columns]


async def _each(
    tx: Transaction, query: Any, key: Any, contributions: Callable[[Any], list[Contribution]]
) -> AsyncIterator[list[Contribution]]:
    async for rows in _keyset(tx, query, key):
        yield [c for row in rows for c in contributions(row)]


async def raw_facts(tx: Any) -> AsyncIterator[list[Contribution]]:
    """Every fact's contributions, from the ledger's entries, the balances moved with
    members' homes, the top-ups and the count cards' entries, batch by batch (keyset by
    primary key)."""
    async for batch in _each(
        tx,
        select(
            entries.c.entry_id,
            entries.c.kind,
            entries.c.principal_delta_fen,
            entries.c.bonus_delta_fen,
            entries.c.loaded_store_path,
            entries.c.post_time,
            entries.c.home_store_path,
        ),
        entries.c.entry_id,
        lambda r: reports.entry_contributions(
            r.kind, r.principal_delta_fen, r.bonus_delta_fen, r.loaded_store_path, r.post_time, r.home_store_path
        ),
    ):
        yield batch
    moves = tuple_(home_moves.c.member_id, home_moves.c.change_id)
    async for batch in _each(tx, select(home_moves), moves, _home_move_facts):
        yield batch
    async for batch in _each(tx, select(top_ups), top_ups.c.top_up_id, _top_up_facts):
        yield batch
    k = count_card_entries.c
    async for batch in _each(
        tx,
        select(k.entry_id, k.kind, k.value_delta_fen, k.sold_store_path, k.post_time, count_cards.c.plan_id).join(
            count_cards, count_cards.c.card_id == k.card_id
        ),
        k.entry_id,
        lambda r: reports.card_entry_contributions(
            r.kind, r.value_delta_fen, r.sold_store_path, r.plan_id, r.post_time
        ),
    ):
        yield batch


def _top_up_facts(row: Any) -> list[Contribution]:
    top_up = top_up_of_row(row)
    made = reports.top_up_contributions(top_up)
    if top_up.refund_time is not None:
        made += reports.top_up_refund_contributions(top_up, top_up.refund_time)
    return made


def _home_move_facts(row: Any) -> list[Contribution]:
    return reports.home_move_contributions(
        HomeMove(
            row.change_id, row.member_id, row.from_path, row.to_path, row.principal_fen, row.bonus_fen, row.move_time
        )
    )
