"""The first HQ credential: written straight into the gateway's database by an operator
(`huiyuan key issue`), since IssueApiKey itself needs an HQ credential. The same rules
as IssueApiKey's: the node must be in the org tree, read from the member service's
database (the operator's tool reads it as it writes the gateway's, with no service
running), and the role must work at a node of its kind (gateway/domain/callers.py)."""

import asyncio

from gateway.domain.callers import Role, binding_refusal, digest
from gateway.storage import api_keys, org_nodes
from gateway.use_cases.api_keys import new_key
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.ids import new_id


def issue_key(
    database_url: str, org_path: str, role: Role, label: str = "", *, member_database_url: str
) -> tuple[str, str]:
    """(key_id, key); the refusal IssueApiKey would give (a DomainError) for a node that
    is not there or a role that does not work at it. Both databases must be migrated."""

    async def run():
        refusal = binding_refusal(org_path, role, await org_nodes.kind_at(member_database_url, org_path))
        if refusal is not None:
            raise refusal
        key_id, key = new_id("k"), new_key()
        await api_keys.add_to(
            database_url,
            key_id=key_id,
            key_hash=digest(key),
            org_path=org_path,
            role=role.value,
            label=label,
            now=utcnow(),
        )
        return key_id, key

    return asyncio.run(run())
