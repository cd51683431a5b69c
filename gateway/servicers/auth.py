"""Who is calling: the credential in the call's metadata.

Every caller sends "authorization: Bearer <key>", terminals and back offices alike.
"ApiKey <key>", the terminals' form before, is deprecated: still accepted for one
version, then refused."""

from gateway.domain.callers import ALL_ROLES, Caller, Role
from gateway.use_cases.api_keys import caller_of
from huiyuan.database import Database
from huiyuan.runtime.errors import Unauthenticated

# The schemes accepted, compared as HTTP does, case aside (RFC 7235). "apikey" is
# deprecated: accepted for one version (README).
SCHEMES = ("bearer", "apikey")


class Authenticator:
    def __init__(self, database: Database):
        self.database = database

    async def caller(self, context, roles: set[Role] = ALL_ROLES) -> Caller:
        """The caller of this call, or UNAUTHENTICATED; PERMISSION_DENIED for a role
        the call does not admit."""
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in SCHEMES or not key.strip():
            raise Unauthenticated(
                "CREDENTIAL_REQUIRED",
                "Send your key as 'authorization: Bearer <key>'.",
                "请在请求中提供凭证：authorization: Bearer <key>。",
            )
        return await caller_of(self.database, key.strip(), roles)
