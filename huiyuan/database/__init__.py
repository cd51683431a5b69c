"""The database, behind one door.

Every service and the gateway reach their database through this package and nothing
else: it owns the connections (engines.py: SQLite embedded, PostgreSQL in production),
the transactions (`Database.transaction()`, `Database.reading()`), the statements'
way to the driver (direct.py, pipeline.py), idempotency keys
(idempotency.py), group commit (batching.py) and migrations (migrate.py).

Inside a service only its `storage/` modules (and migrations) import this package's
statement helpers or SQLAlchemy; a use case holds a `Transaction` and hands it to
storage functions, so it reads as "in one transaction, do these" (docs/architecture.md).
"""

from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable

from huiyuan.database.batching import Batcher
from huiyuan.database.direct import BUILT_ONCE, Database, Rows, send, together
from huiyuan.database.engines import (
    UtcDateTime,
    dialect_name,
    is_postgres,
    make_sync_engine,
    new_metadata,
    take_turn_on,
    under,
    violated_unique,
)
from huiyuan.database.idempotency import RUN_ALONE, Idempotency, request_digest
from huiyuan.database.rollups import Query as RollupQuery, Row as RollupRow
from huiyuan.database.upsert import insert_for, insert_new, lock_or_make


class Transaction(Protocol):
    """What `Database.transaction()` and `Database.reading()` yield: on PostgreSQL a
    connection of direct.py's pool, on SQLite SQLAlchemy's AsyncConnection. Storage
    functions take it as `tx` and run statements on it with `tx.execute()`, or with
    `send(tx, ...)` and `together(tx, ...)` where no answer is awaited one by one."""

    @property
    def dialect(self) -> Dialect:
        """Its database's dialect (`dialect_name(tx)`)."""
        ...

    async def execute(
        self, statement: Executable, params: dict[str, Any] | list[dict[str, Any]] | None = None
    ) -> Any: ...


__all__ = [
    "BUILT_ONCE",
    "RUN_ALONE",
    "Batcher",
    "Database",
    "Idempotency",
    "RollupQuery",
    "RollupRow",
    "Rows",
    "Transaction",
    "UtcDateTime",
    "dialect_name",
    "insert_for",
    "insert_new",
    "is_postgres",
    "lock_or_make",
    "make_sync_engine",
    "new_metadata",
    "request_digest",
    "send",
    "take_turn_on",
    "together",
    "under",
    "violated_unique",
]
