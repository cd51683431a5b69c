"""The first HQ credential: written straight into the gateway's database by an operator
(`huiyuan key issue`), since IssueApiKey itself needs an HQ credential."""

import asyncio

from huiyuan.runtime import db
from huiyuan.runtime.db import utcnow
from huiyuan.runtime.ids import new_id
from gateway import auth
from gateway.storage import api_keys


def issue_key(database_url: str, org_path: str, role: auth.Role, label: str = "") -> tuple[str, str]:
    """(key_id, key). The gateway's database must be migrated."""

    async def run():
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
