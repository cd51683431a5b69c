"""The first HQ credential: written straight into the gateway's database by an operator
(`huiyuan key issue`), since IssueApiKey itself needs an HQ credential. The same rules
as IssueApiKey's: the node must be in the org tree, read from the member service's
database (the operator's tool reads it as it writes the gateway's, with no service
running), and the role must work at a node of its kind (gateway/auth.py)."""

import asyncio

from sqlalchemy import select

from huiyuan.database import engines as db
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.ids import new_id
from gateway import auth
from gateway.storage import api_keys


async def _node_kind(member_database_url: str, path: str) -> str | None:
    from services.member.storage.tables import org_nodes  # the org tree's one definition

    engine = db.make_async_engine(member_database_url, "member")
    try:
        async with engine.connect() as connection:
            return (await connection.execute(select(org_nodes.c.kind).where(org_nodes.c.path == path))).scalar()
    finally:
        await engine.dispose()


def issue_key(database_url: str, org_path: str, role: auth.Role, label: str = "", *,
              member_database_url: str) -> tuple[str, str]:
    """(key_id, key); the refusal IssueApiKey would give (a DomainError) for a node that
    is not there or a role that does not work at it. Both databases must be migrated."""

    async def run():
        refusal = auth.binding_refusal(org_path, role, await _node_kind(member_database_url, org_path))
        if refusal is not None:
            raise refusal
        engine = db.make_async_engine(database_url, "gateway")
        try:
            async with engine.begin() as connection:
                key_id = new_id("k")
                key = await auth.issue(connection, api_keys, key_id=key_id, org_path=org_path, role=role, label=label,
                                       now=utcnow())
                return key_id, key
        finally:
            await engine.dispose()

    return asyncio.run(run())
