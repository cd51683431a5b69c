"""Alembic migrations, one chain per service, applied by `huiyuan migrate` and at start.

Each service keeps its scripts in services/<name>/migrations/ with an env.py that calls
run_env() below; no alembic.ini is needed.

Alembic has no lock of its own, and several processes migrate at once in a deployment:
every pod of a Deployment runs `huiyuan migrate <service>` as it starts, and the regions
of a chain share a service's database. On PostgreSQL an upgrade therefore holds an
advisory lock named after the service's schema: a second migration of the same schema
waits for the first, then finds the database at head and does nothing.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from huiyuan.database import engines

log = logging.getLogger("huiyuan.migrate")


def alembic_config(migrations_dir: Path, url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["huiyuan_url"] = url
    config.attributes["huiyuan_schema"] = schema
    return config


def upgrade(migrations_dir: Path, url: str, schema: str, revision: str = "head") -> None:
    with one_migration_at_a_time(url, schema):
        engines.ensure_schema(url, schema)
        command.upgrade(alembic_config(migrations_dir, url, schema), revision)


@contextmanager
def one_migration_at_a_time(url: str, schema: str) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock for migrating this schema (SQLite: a
    no-op; its files belong to one machine's processes). The lock lives on a connection
    of its own, in autocommit so it is never idle in a transaction, and ends with that
    connection, closed by dispose(): a migration that fails or is killed half-way frees
    it too, and PostgreSQL's transactional DDL has rolled the half back."""
    if not engines.is_postgres(url):
        yield
        return
    name = {"name": f"huiyuan migrate {schema}"}
    engine = engines.make_sync_engine(url, schema)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            if not connection.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:name, 0))"), name).scalar():
                log.warning("another migration of %s is running: waiting for it to finish", schema)
                connection.execute(text("SELECT pg_advisory_lock(hashtextextended(:name, 0))"), name)
            yield
    finally:
        engine.dispose()


def drift(url: str, schema: str, metadata: MetaData) -> list[Any]:
    """What the migrated database lacks or has beyond the tables the code declares
    (alembic's autogenerate comparison); [] when the migrations made what the code uses."""
    from alembic.autogenerate import compare_metadata

    engine = engines.make_sync_engine(url, schema)
    try:
        with engine.connect() as connection:  # on PostgreSQL the engine's connections are in the schema
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return [d for d in compare_metadata(context, metadata) if not _is_alembic_own(d)]
    finally:
        engine.dispose()


def _is_alembic_own(difference: tuple[Any, ...] | list[Any]) -> bool:
    """Is this difference (alembic's: a tuple, or a list of a column's) alembic's own table?"""
    if difference[0] != "remove_table":
        return False
    table: Table = difference[1]
    return table.name == "alembic_version"


def head_revision(migrations_dir: Path) -> str | None:
    config = alembic_config(migrations_dir, "", "")
    return ScriptDirectory.from_config(config).get_current_head()


def serves_at(migrations_dir: Path) -> Callable[[str | None], bool]:
    """Whether code with these migrations may serve a database at a given revision: at
    its head, or at a revision it does not know, which a newer release's migrations
    wrote. A release's migrations keep the release before it working (they add; what
    they drop, a later release drops: docs/deployment.md), so while a rolling update or
    another region's newer release has migrated the database, the older pods serve on.
    Never migrated, or at an older revision of its own: not ready."""
    scripts = ScriptDirectory.from_config(alembic_config(migrations_dir, "", ""))
    head = scripts.get_current_head()
    known = {script.revision for script in scripts.walk_revisions()}
    return lambda revision: revision == head or (revision is not None and revision not in known)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    async with engines.reading(engine) as connection:  # on SQLite no write lock: health checks run during bulk jobs
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    config = context.config
    url = config.attributes["huiyuan_url"]
    schema = config.attributes["huiyuan_schema"]
    engine = engines.make_sync_engine(url, schema)  # its connections open in the service's schema
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=not engines.is_postgres(url),  # SQLite alters tables by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_idempotency_keys() -> None:
    """The idempotency_keys table (idempotency.py) as each service's first revision made
    it. Frozen as it is: a change to the table is a new revision in every service, never
    an edit here, which would change what an old revision did."""
    op.create_table(
        "idempotency_keys",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.LargeBinary(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_idempotency_keys")),
    )


def create_rollup_outbox() -> None:
    """A service's rollup_outbox (rollups.py: define_outbox), as first made. Frozen, as
    create_idempotency_keys."""
    op.create_table(
        "rollup_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_rollup_outbox")),
    )


def create_rollup(name: str, measures: list[str]) -> None:
    """A rollup's table (rollups.py: define) with these measures, as first made. Frozen:
    a measure added later is a new revision's add_column."""
    table = f"rollup_{name}"
    op.create_table(
        table,
        sa.Column("path", sa.String(length=140), nullable=False),
        sa.Column("parent_path", sa.String(length=140), nullable=False),
        sa.Column("grain", sa.String(length=1), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in measures),
        sa.PrimaryKeyConstraint("path", "grain", "day", "key", name=op.f(f"pk_{table}")),
    )
    op.create_index(f"ix_{table}_parent_path_grain_day", table, ["parent_path", "grain", "day"])
