"""People: sign-in, sessions, passwords, and the accounts HQ creates
(gateway/domain/people.py has the rules, docs/console.md the story).

A password is kept as its argon2id hash (argon2-cffi: a slow, salted, memory-hard hash
from a maintained library); hashing runs in a worker thread so the event loop serves
other calls meanwhile. A session's token is 256 random bits, kept as its SHA-256, like a
key: what it resolves to is a Caller, so every rule of scope and every audit line holds
for a person as for a key."""

import asyncio
import os
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.domain import people as rules
from gateway.domain.callers import Caller, denied, digest
from gateway.domain.people import PersonRole
from gateway.storage import people as storage
from gateway.use_cases import audit
from gateway.use_cases.api_keys import node_kind
from gateway.use_cases.relay import relayed
from huiyuan.database import Database, Idempotency
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import org_pb2
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import timestamp
from huiyuan.runtime.errors import AlreadyExists, NotFound, Unauthenticated, Violations, invalid
from huiyuan.runtime.ids import new_id

# How long a session lasts (HUIYUAN_SESSION_S; 12 hours: a working day and some)
SESSION = timedelta(seconds=float(os.environ.get("HUIYUAN_SESSION_S", rules.SESSION.total_seconds())))
_HASHER = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's second choice)
# Verified against when the login is unknown, so that an unknown login costs the time a
# wrong password does.
_DUMMY = _HASHER.hash("not-a-password-0")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, password_hash, password)


def new_token() -> str:
    return rules.SESSION_PREFIX + secrets.token_urlsafe(32)


def session_invalid() -> Unauthenticated:
    return Unauthenticated(
        "SESSION_INVALID", "The session has ended: sign in again.", "登录已失效（已过期或已退出），请重新登录。"
    )


async def caller_of_session(database: Database, token: str) -> Caller:
    """The person a session's token names, as a Caller; UNAUTHENTICATED SESSION_INVALID
    for a session unknown, ended or expired, or a person disabled. Every call reads it:
    an ended session stops at once."""
    row = await storage.session_by_hash(database, digest(token))
    if row is None or row.revoke_time is not None or row.disable_time is not None or row.expire_time <= utcnow():
        raise session_invalid()
    return Caller(row.person_id, row.org_path, rules.office_role(row.org_path), person_role=row.role)


def person_message(row, now: datetime | None = None) -> pb.Person:
    now = now or utcnow()
    return pb.Person(
        person_id=row.person_id,
        login=row.login,
        name=row.name,
        phone=row.phone,
        org_path=row.org_path,
        role=pb.PersonRole.Value(f"PERSON_ROLE_{row.role}"),
        create_time=timestamp(row.create_time),
        disable_time=timestamp(row.disable_time) if row.disable_time else None,
        unlock_time=timestamp(row.locked_until) if rules.is_locked(row.locked_until, now) else None,
    )


async def sign_in(database: Database, login: str, password: str) -> pb.SignInResponse:
    async with database.reading() as tx:
        row = await storage.by_login(tx, login)
    if row is None or row.disable_time is not None:
        await verify(_DUMMY, password)
        raise rules.login_failed()
    if rules.is_locked(row.locked_until, utcnow()):
        raise rules.login_locked(row.locked_until)
    right = await verify(row.password_hash, password)
    refusal: Exception | None = None
    token = new_token()
    async with database.transaction() as tx:
        now = utcnow()
        row = await storage.by_login(tx, login, lock=True)
        if row is None or row.disable_time is not None:
            raise rules.login_failed()
        if rules.is_locked(row.locked_until, now):
            raise rules.login_locked(row.locked_until)
        if not right:
            lock = rules.after_wrong_password(row.wrong_passwords, now)
            await storage.set_wrong_passwords(tx, row.person_id, lock.wrong_passwords, lock.locked_until)
            # committed with the count: the refusal is raised once it is
            refusal = rules.login_locked(lock.locked_until) if lock.locked_until else rules.login_failed()
        else:
            if row.wrong_passwords or row.locked_until:
                await storage.set_wrong_passwords(tx, row.person_id, 0, None)
            expire = now + SESSION
            await storage.add_session(
                tx,
                session_id=new_id("s"),
                token_hash=digest(token),
                person_id=row.person_id,
                now=now,
                expire_time=expire,
            )
    if refusal is not None:
        raise refusal
    return pb.SignInResponse(session_token=token, expire_time=timestamp(expire), person=person_message(row, now))


async def sign_out(database: Database, caller: Caller, token: str) -> pb.SignOutResponse:
    if not caller.is_person:
        raise invalid("authorization", "NOT_A_SESSION", "only a person's session signs out")
    async with database.transaction() as tx:
        await storage.end_session(tx, digest(token), utcnow())
    return pb.SignOutResponse()


async def change_password(
    database: Database, idempotency: Idempotency, caller: Caller, token: str, request: pb.ChangePasswordRequest
) -> pb.ChangePasswordResponse:
    if not caller.is_person:
        raise invalid("authorization", "NOT_A_SESSION", "a key has no password")
    async with database.reading() as tx:
        row = await storage.by_id(tx, caller.key_id)
    if row is None:
        raise session_invalid()
    if not await verify(row.password_hash, request.current_password):
        error = invalid("current_password", "PASSWORD_INCORRECT", "the current password is not this")
        error.zh = "当前密码不正确。"
        raise error
    v = Violations()
    rules.check_password(v, request.new_password, row.login, "new_password")
    v.raise_if_any()
    new_hash = await asyncio.to_thread(hash_password, request.new_password)

    async def work(tx):
        now = utcnow()
        await storage.set_password(tx, caller.key_id, new_hash, now)
        await storage.end_sessions(tx, caller.key_id, now, but=digest(token))
        await audit.record_in(tx, caller, "ChangePassword", request, caller.key_id, caller.org_path)
        return pb.ChangePasswordResponse(change_time=timestamp(now))

    return await idempotency.run(request, pb.ChangePasswordResponse, work)


async def create_person(
    services, idempotency: Idempotency, caller: Caller, request: pb.CreatePersonRequest, role: PersonRole
) -> pb.CreatePersonResponse:
    """CreatePerson: a person bound to a node that is there, of a kind their role works at."""
    person = request.person
    refusal = rules.binding_refusal(person.org_path, role, await node_kind(services, person.org_path))
    if refusal is not None:
        raise refusal
    if not caller.covers(person.org_path):
        raise denied()
    password_hash = await asyncio.to_thread(hash_password, request.initial_password)

    async def work(tx):
        now = utcnow()
        if await storage.by_login(tx, person.login) is not None:
            raise AlreadyExists(
                "LOGIN_TAKEN", "That login is taken.", f"账号 {person.login} 已被使用。", login=person.login
            )
        person_id = new_id("p")
        await storage.add(
            tx,
            person_id=person_id,
            login=person.login,
            name=person.name.strip(),
            phone=person.phone,
            org_path=person.org_path,
            role=role.value,
            password_hash=password_hash,
            now=now,
        )
        await audit.record_in(tx, caller, "CreatePerson", request, person_id, person.org_path)
        return pb.CreatePersonResponse(person=person_message(await storage.by_id(tx, person_id), now))

    return await idempotency.run(request, pb.CreatePersonResponse, work)


async def disable_person(
    idempotency: Idempotency, caller: Caller, request: pb.DisablePersonRequest
) -> pb.DisablePersonResponse:
    async def work(tx):
        now = utcnow()
        row = await storage.by_id(tx, request.person_id, lock=True)
        if row is None or not caller.covers(row.org_path):
            raise NotFound("PERSON_NOT_FOUND", "No such person.", "人员不存在。", person_id=request.person_id)
        if row.disable_time is None:
            await storage.disable(tx, row.person_id, now)
            await storage.end_sessions(tx, row.person_id, now)
            await audit.record_in(tx, caller, "DisablePerson", request, row.person_id, row.org_path)
            row = await storage.by_id(tx, row.person_id)
        return pb.DisablePersonResponse(person=person_message(row, now))

    return await idempotency.run(request, pb.DisablePersonResponse, work)


async def list_persons(
    database: Database, caller: Caller, node: str, size: int, after, fingerprint: str
) -> pb.ListPersonsResponse:
    if not caller.covers(node):
        raise denied()
    async with database.reading() as tx:
        rows = await storage.page(tx, node, after[0] if after else None, size + 1)
    now = utcnow()
    page, token = pagination.next_page(rows, size, lambda row: [row.login], fingerprint)
    return pb.ListPersonsResponse(persons=[person_message(row, now) for row in page], next_page_token=token)


async def get_self(services, database: Database, caller: Caller) -> pb.GetSelfResponse:
    answer = pb.GetSelfResponse(org_path=caller.org_path, role=pb.Role.Value(f"ROLE_{caller.role.value}"))
    if caller.is_person:
        async with database.reading() as tx:
            row = await storage.by_id(tx, caller.key_id)
        if row is not None:
            answer.person.CopyFrom(person_message(row))
    else:
        answer.key_id = caller.key_id
    try:
        async with relayed("member"):
            node = (await services.org.GetOrgNode(org_pb2.GetOrgNodeRequest(path=caller.org_path))).org_node
        answer.org_name = node.name
    except NotFound:
        pass
    return answer
