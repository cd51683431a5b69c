"""The first HQ credential: written straight into the gateway's database by an operator
(`huiyuan key issue`), since IssueApiKey itself needs an HQ credential. The same rules
as IssueApiKey's: the node must be in the org tree, read from the member service's
database (the operator's tool reads it as it writes the gateway's, with no service
running), and the role must work at a node of its kind (gateway/domain/callers.py)."""

import asyncio

from gateway.domain import people as person_rules
from gateway.domain.callers import Role, binding_refusal, digest
from gateway.domain.people import PersonRole
from gateway.storage import api_keys, org_nodes, people
from gateway.use_cases.api_keys import new_key
from gateway.use_cases.people import hash_password
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.errors import AlreadyExists, Violations
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


def create_person(
    database_url: str,
    *,
    login: str,
    name: str,
    phone: str,
    org_path: str,
    role: PersonRole,
    password: str,
    member_database_url: str,
    exist_ok: bool = False,
) -> str | None:
    """`huiyuan person create` (and the demo's people): a person written straight into the
    gateway's database, held to CreatePerson's rules; their id, or None when the login is
    taken and exist_ok (the demo seeded again)."""
    v = Violations()
    person_rules.check_person(v, login, name, phone)
    person_rules.check_password(v, password, login, "initial_password")
    v.raise_if_any()

    async def run():
        refusal = person_rules.binding_refusal(org_path, role, await org_nodes.kind_at(member_database_url, org_path))
        if refusal is not None:
            raise refusal
        person_id = new_id("p")
        added = await people.add_to(
            database_url,
            person_id=person_id,
            login=login,
            name=name,
            phone=phone,
            org_path=org_path,
            role=role.value,
            password_hash=hash_password(password),
            now=utcnow(),
        )
        if added:
            return person_id
        if exist_ok:
            return None
        raise AlreadyExists("LOGIN_TAKEN", "That login is taken.", f"账号 {login} 已被使用。", login=login)

    return asyncio.run(run())
