"""Who is calling: the credential in the call's metadata.

Every caller sends "authorization: Bearer <key>", terminals and back offices alike.
"ApiKey <key>", the terminals' form before, is deprecated: still accepted for one
version, then refused."""

from google.protobuf.message import Message

from gateway.domain.callers import ALL_ROLES, Caller, Role, denied
from gateway.domain.people import SESSION_PREFIX, PersonRole, may_change, read_only
from gateway.use_cases.api_keys import caller_of
from gateway.use_cases.people import caller_of_session
from huiyuan.database import Database
from huiyuan.runtime.errors import Unauthenticated

# The schemes accepted, compared as HTTP does, case aside (RFC 7235). "apikey" is
# deprecated: accepted for one version (README).
SCHEMES = ("bearer", "apikey")


class Authenticator:
    def __init__(self, database: Database):
        self.database = database

    async def caller(
        self, context, roles: set[Role] | frozenset[Role] = ALL_ROLES, request: Message | None = None, method: str = ""
    ) -> Caller:
        """The caller of this call, or UNAUTHENTICATED; PERMISSION_DENIED for a role
        the call does not admit. A person's session (domain/people.py) is a caller too;
        when the call changes something (its request has a request_id: the gateway's own
        request, or method, a pass-through's full name, for one that changes), a person
        whose role only reads is PERMISSION_DENIED ROLE_READ_ONLY."""
        key = self.credential(context)
        if not key.startswith(SESSION_PREFIX):
            return await caller_of(self.database, key, roles)
        caller = await caller_of_session(self.database, key)
        if caller.role not in roles:
            raise denied()
        if request is not None and "request_id" in request.DESCRIPTOR.fields_by_name:
            method = (
                f"/{request.DESCRIPTOR.file.package}.GatewayService/{request.DESCRIPTOR.name.removesuffix('Request')}"
            )
        if method and not may_change(PersonRole(caller.person_role), method):
            raise read_only()
        return caller

    def credential(self, context) -> str:
        """The credential the call carries: a key, or a person's session token."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in SCHEMES or not key.strip():
            raise Unauthenticated(
                "CREDENTIAL_REQUIRED",
                "Send your key as 'authorization: Bearer <key>'.",
                "请在请求中提供凭证：authorization: Bearer <key>。",
            )
        return key.strip()
