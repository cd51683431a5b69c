"""The audit trail's entries (use_cases/audit.py): recorded once per key, call and
request_id; read newest first within a scope."""

import functools

from sqlalchemy import or_, select

from gateway.storage.tables import MAX_TARGET_ID, audit_entries, persons  # noqa: F401 - the longest target_id kept
from huiyuan.database import BUILT_ONCE, Transaction, dialect_name, insert_for, under


@functools.cache
def _insert(dialect: str):
    """A replay records nothing more (its key, method and request_id are there)."""
    return (
        insert_for(dialect)(audit_entries)
        .on_conflict_do_nothing(index_elements=["key_id", "method", "request_id"])
        .execution_options(**{BUILT_ONCE: True})
    )


async def add(tx: Transaction, entry: dict) -> None:
    await tx.execute(_insert(dialect_name(tx)), entry)


async def page(
    tx: Transaction, node: str, *, key_id: str, method: str, target_id: str, start, end, before: str | None, limit: int
) -> list:
    """Entries acted on under node or made by a key under it, newest first, older than
    before (an entry id), filtered by whichever of the rest is given; a method without
    its leading "/" is a method of any service. Each row carries the name of the person
    who made it (operator_name; None for a key): a session's key_id is its person's id."""
    t = audit_entries
    query = (
        select(t, persons.c.name.label("operator_name"))
        .select_from(t.outerjoin(persons, persons.c.person_id == t.c.key_id))
        .where(or_(under(t.c.target_path, node), under(t.c.org_path, node)))
    )
    if key_id:
        query = query.where(t.c.key_id == key_id)
    if method:
        query = query.where(t.c.method == method if method.startswith("/") else t.c.method.endswith("/" + method))
    if target_id:
        query = query.where(t.c.target_id == target_id)
    if start:
        query = query.where(t.c.entry_time >= start)
    if end:
        query = query.where(t.c.entry_time < end)
    if before:
        query = query.where(t.c.entry_id < before)
    return (await tx.execute(query.order_by(t.c.entry_id.desc()).limit(limit))).all()
