"""Domain errors: what a rule says when it refuses. Plain Python, no gRPC.

Each error carries a stable UPPER_SNAKE reason (clients switch on it), a message in
English and Chinese, and the gRPC code it maps to (a `Code`, gRPC's codes without gRPC, so
that domain packages raise these with no I/O library imported; import-linter checks it).
The server interceptor turns them into a status with google.rpc details (see
huiyuan.runtime.status).
"""

import enum
from dataclasses import dataclass, field


class Code(enum.Enum):
    """The gRPC status codes (google.rpc.Code), with grpc.StatusCode's names and values.

    A Code equals the grpc.StatusCode of its name (and hashes as it does), so code that
    compares an error's code with grpc's keeps working; huiyuan.runtime.status turns one
    into the other where gRPC needs its own.
    """

    OK = (0, "ok")
    CANCELLED = (1, "cancelled")
    UNKNOWN = (2, "unknown")
    INVALID_ARGUMENT = (3, "invalid argument")
    DEADLINE_EXCEEDED = (4, "deadline exceeded")
    NOT_FOUND = (5, "not found")
    ALREADY_EXISTS = (6, "already exists")
    PERMISSION_DENIED = (7, "permission denied")
    RESOURCE_EXHAUSTED = (8, "resource exhausted")
    FAILED_PRECONDITION = (9, "failed precondition")
    ABORTED = (10, "aborted")
    OUT_OF_RANGE = (11, "out of range")
    UNIMPLEMENTED = (12, "unimplemented")
    INTERNAL = (13, "internal")
    UNAVAILABLE = (14, "unavailable")
    DATA_LOSS = (15, "data loss")
    UNAUTHENTICATED = (16, "unauthenticated")

    @property
    def number(self) -> int:
        """The code's number on the wire (google.rpc.Status.code)."""
        number: int = self.value[0]
        return number

    @classmethod
    def of(cls, number: int) -> "Code":
        """The code of a number; UNKNOWN for one gRPC does not define."""
        return next((c for c in cls if c.value[0] == number), cls.UNKNOWN)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, enum.Enum):  # itself, or grpc.StatusCode's member of its name
            return (other.name, other.value) == (self.name, self.value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)  # as any Enum member's, grpc.StatusCode's too


class DomainError(Exception):
    """A refusal that the caller can act on. Subclasses fix the gRPC code."""

    code: Code = Code.FAILED_PRECONDITION
    # ErrorInfo.domain: the service whose rule refused ("wallet.huiyuan"). None: the
    # service raising it; a refusal relayed from another service keeps that one's.
    domain: str | None = None

    # When to try again, in seconds, sent as google.rpc.RetryInfo (ResourceExhausted; a
    # relayed refusal keeps the one its service sent). None: no advice.
    retry_delay_s: float | None = None

    def __init__(self, reason: str, en: str, zh: str, **metadata: object):
        super().__init__(en)
        self.reason = reason
        self.en = en
        self.zh = zh
        self.metadata = {k: str(v) for k, v in metadata.items()}


class NotFound(DomainError):
    code = Code.NOT_FOUND


class AlreadyExists(DomainError):
    code = Code.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = Code.FAILED_PRECONDITION


class Unauthenticated(DomainError):
    code = Code.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = Code.PERMISSION_DENIED


@dataclass(frozen=True)
class Violation:
    field: str  # path of the field in the request, e.g. "member.phone"
    reason: str  # stable, e.g. "PHONE_INVALID"
    description: str  # for a person, English


class InvalidArgument(DomainError):
    """Bad input: one violation per bad field. Raised before anything is written.

    Its reason is the first violation's (PHONE_INVALID, POINTS_OVER_CAP...): a program
    switches on ErrorInfo.reason, and a generic INVALID_ARGUMENT would only repeat the
    status code. The first is the first rule the request broke, as the servicer checks
    them in the order of its fields; every violation is in the BadRequest beside it."""

    code = Code.INVALID_ARGUMENT

    def __init__(self, violations: list[Violation]) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(
            violations[0].reason if violations else "INVALID_ARGUMENT",
            f"The request has invalid fields: {fields}.",
            f"请求中有 {len(violations)} 处填写有误，请改正后重试。",
        )
        self.violations = list(violations)


@dataclass
class Violations:
    """Collects every bad field of a request, so the caller hears of all at once.

    usage:  v = Violations(); v.check(cond, "member.name", "NAME_REQUIRED", "...");
            v.raise_if_any()
    """

    items: list[Violation] = field(default_factory=list)

    def add(self, field_path: str, reason: str, description: str) -> None:
        self.items.append(Violation(field_path, reason, description))

    def check(self, ok: bool, field_path: str, reason: str, description: str) -> bool:
        if not ok:
            self.add(field_path, reason, description)
        return ok

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)


def invalid(field_path: str, reason: str, description: str) -> InvalidArgument:
    """One bad field."""
    return InvalidArgument([Violation(field_path, reason, description)])


class ResourceExhausted(DomainError):
    """Too much asked: too many calls of a kind in a while (retry_delay_s: when the next
    may come, sent as google.rpc.RetryInfo), or a request too large (no retry_delay_s:
    the same request never fits)."""

    code = Code.RESOURCE_EXHAUSTED

    def __init__(self, reason: str, en: str, zh: str, retry_delay_s: float | None = None, **metadata: object):
        super().__init__(reason, en, zh, **metadata)
        self.retry_delay_s = retry_delay_s


class Unavailable(DomainError):
    """A service this call needs did not answer in time; the call may be retried."""

    code = Code.UNAVAILABLE


class Internal(DomainError):
    """A service this call needs answered INTERNAL (a bug there), relayed with its reason,
    domain and trace id. Neither a refusal of the request nor "no answer": the same
    request would fail the same way, and nothing says what the service did."""

    code = Code.INTERNAL
