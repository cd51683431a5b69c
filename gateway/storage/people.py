"""The back office's people and their sessions (use_cases/people.py)."""

from sqlalchemy import bindparam, insert, select, update

from gateway.storage.tables import persons, sessions
from huiyuan.database import Database, Transaction, under
from huiyuan.database.engines import make_async_engine

_SESSION = (
    select(
        sessions.c.session_id,
        sessions.c.expire_time,
        sessions.c.revoke_time,
        persons.c.person_id,
        persons.c.org_path,
        persons.c.role,
        persons.c.disable_time,
    )
    .join(persons, persons.c.person_id == sessions.c.person_id)
    .where(sessions.c.token_hash == bindparam("token_hash"))
)


async def session_by_hash(database: Database, token_hash: str):
    """The session and its person, None if there is none; read outside any transaction,
    so a session ended or a person disabled stops at once."""
    rows = await database.rows(_SESSION, {"token_hash": token_hash})
    return rows[0] if rows else None


async def by_login(tx: Transaction, login: str, *, lock: bool = False):
    query = select(persons).where(persons.c.login == login)
    if lock:
        query = query.with_for_update()
    return (await tx.execute(query)).one_or_none()


async def by_id(tx: Transaction, person_id: str, *, lock: bool = False):
    query = select(persons).where(persons.c.person_id == person_id)
    if lock:
        query = query.with_for_update()
    return (await tx.execute(query)).one_or_none()


def _person(person_id, login, name, phone, org_path, role, password_hash, now) -> dict:
    return {
        "person_id": person_id,
        "login": login,
        "name": name,
        "phone": phone,
        "org_path": org_path,
        "role": role,
        "password_hash": password_hash,
        "wrong_passwords": 0,
        "locked_until": None,
        "password_time": now,
        "create_time": now,
        "disable_time": None,
    }


async def add(tx: Transaction, *, person_id, login, name, phone, org_path, role, password_hash, now) -> None:
    await tx.execute(insert(persons), _person(person_id, login, name, phone, org_path, role, password_hash, now))


async def add_to(database_url: str, *, person_id, login, name, phone, org_path, role, password_hash, now) -> None:
    """A person written straight into the gateway's database (`huiyuan person create`,
    no service running), unless the login is taken: True if written."""
    engine = make_async_engine(database_url, "gateway")
    try:
        async with engine.begin() as tx:
            taken = (await tx.execute(select(persons.c.person_id).where(persons.c.login == login))).first()
            if taken is not None:
                return False
            await tx.execute(
                insert(persons), _person(person_id, login, name, phone, org_path, role, password_hash, now)
            )
            return True
    finally:
        await engine.dispose()


async def set_wrong_passwords(tx: Transaction, person_id: str, wrong: int, locked_until) -> None:
    await tx.execute(
        update(persons).where(persons.c.person_id == person_id).values(wrong_passwords=wrong, locked_until=locked_until)
    )


async def set_password(tx: Transaction, person_id: str, password_hash: str, now) -> None:
    await tx.execute(
        update(persons)
        .where(persons.c.person_id == person_id)
        .values(password_hash=password_hash, password_time=now, wrong_passwords=0, locked_until=None)
    )


async def disable(tx: Transaction, person_id: str, now) -> None:
    await tx.execute(update(persons).where(persons.c.person_id == person_id).values(disable_time=now))


async def page(tx: Transaction, node: str, after: str | None, limit: int) -> list:
    """Persons bound at or under node, by login, after the login given."""
    query = select(persons).where(under(persons.c.org_path, node))
    if after:
        query = query.where(persons.c.login > after)
    return (await tx.execute(query.order_by(persons.c.login).limit(limit))).all()


async def add_session(tx: Transaction, *, session_id, token_hash, person_id, now, expire_time) -> None:
    await tx.execute(
        insert(sessions),
        {
            "session_id": session_id,
            "token_hash": token_hash,
            "person_id": person_id,
            "create_time": now,
            "expire_time": expire_time,
            "revoke_time": None,
        },
    )


async def end_session(tx: Transaction, token_hash: str, now) -> None:
    await tx.execute(
        update(sessions)
        .where(sessions.c.token_hash == token_hash, sessions.c.revoke_time.is_(None))
        .values(revoke_time=now)
    )


async def end_sessions(tx: Transaction, person_id: str, now, *, but: str = "") -> None:
    """End every open session of the person, but the one whose token hash is but."""
    await tx.execute(
        update(sessions)
        .where(
            sessions.c.person_id == person_id,
            sessions.c.revoke_time.is_(None),
            sessions.c.token_hash != but,
        )
        .values(revoke_time=now)
    )
