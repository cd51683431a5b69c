"""The credentials: looked up by their key's SHA-256 on every call, issued, revoked."""

from sqlalchemy import bindparam, insert, select, update

from gateway.storage.tables import api_keys
from huiyuan.database import Database, Transaction, under
from huiyuan.database.engines import make_async_engine

_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("key_hash"))


async def by_hash(database: Database, key_hash: str):
    """The key's row, None if there is none; read outside any transaction, so a revoked
    key stops at once."""
    rows = await database.rows(_BY_HASH, {"key_hash": key_hash})
    return rows[0] if rows else None


def _row(key_id: str, key_hash: str, org_path: str, role: str, label: str, now) -> dict:
    return {
        "key_id": key_id,
        "key_hash": key_hash,
        "org_path": org_path,
        "role": role,
        "label": label,
        "create_time": now,
        "revoke_time": None,
    }


async def add(tx: Transaction, *, key_id: str, key_hash: str, org_path: str, role: str, label: str, now) -> None:
    await tx.execute(insert(api_keys), _row(key_id, key_hash, org_path, role, label, now))


async def add_to(database_url: str, *, key_id: str, key_hash: str, org_path: str, role: str, label: str, now) -> None:
    """The operator's first key, written straight into the gateway's database (no
    service running: use_cases/bootstrap.py)."""
    engine = make_async_engine(database_url, "gateway")
    try:
        async with engine.begin() as tx:
            await tx.execute(insert(api_keys), _row(key_id, key_hash, org_path, role, label, now))
    finally:
        await engine.dispose()


async def revocation(tx: Transaction, key_id: str):
    """(revoke_time, org_path) of the key, None if there is no such key."""
    return (
        await tx.execute(select(api_keys.c.revoke_time, api_keys.c.org_path).where(api_keys.c.key_id == key_id))
    ).one_or_none()


async def revoke(tx: Transaction, key_id: str, now) -> None:
    await tx.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoke_time=now))


async def page(tx: Transaction, node: str, after: str | None, limit: int) -> list:
    """Keys bound at or under node, by id, after the id given."""
    query = select(api_keys).where(under(api_keys.c.org_path, node))
    if after:
        query = query.where(api_keys.c.key_id > after)
    return (await tx.execute(query.order_by(api_keys.c.key_id).limit(limit))).all()
