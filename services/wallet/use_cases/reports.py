"""Reads: the statement, cross-store settlement and a store's day, by business day
(huiyuan.runtime.clock)."""

from dataclasses import dataclass
from datetime import date

from huiyuan.database import Database, Transaction
from services.wallet.domain import reports as rules
from services.wallet.domain.postings import Entry, StatementQuery
from services.wallet.domain.reports import StorePosition, TopUpTakings
from services.wallet.storage import entries, reports as sums
from services.wallet.storage.rollups import ROLLUPS, raw_facts


async def statement(tx: Transaction, query: StatementQuery, before: int | None, limit: int) -> list[Entry]:
    """The member's entries newest first, those before the entry with sequence `before`."""
    return await entries.statement(tx, query, before, limit)


async def settlement(tx: Transaction, org_path: str, start: date, end: date) -> list[StorePosition]:
    """Each store's cross-store position over the period (domain/reports.py settle)."""
    spent, card_used = await sums.spent_across_stores(tx, start, end)
    return rules.settle(org_path, spent, card_used)


@dataclass(frozen=True)
class StoreActivity:
    top_up: int  # principal loaded
    bonus: int  # bonus given
    spent: int  # stored value spent
    count_card_sold: int
    count_card_used: int
    takings: list[TopUpTakings]


async def store_activity(tx: Transaction, store_path: str, day: date) -> StoreActivity:
    """One store's business day: what was loaded, given, spent, sold and used, and what
    each tender took for top-ups and count cards and gave back for their refunds made
    that day (a refund goes back to the tender that paid, from the store that took it):
    what a till's drawer or a payment provider's statement shows at closing."""
    loaded, bonus, spent = rules.store_day(*await sums.store_day_entries(tx, store_path, day))
    cards_sold, cards_used = rules.count_card_day(await sums.store_day_card_entries(tx, store_path, day))
    takings = rules.takings(*await sums.store_day_tenders(tx, store_path, day))
    return StoreActivity(loaded, bonus, spent, cards_sold, cards_used, takings)


async def rebuild(database: Database) -> int:
    """Recompute the reports' rollups from the ledger, the top-ups and the count cards'
    entries (storage/rollups.py); how many contributions were counted."""
    return await ROLLUPS.rebuild(database, raw_facts)
