"""Domain errors: what a rule says when it refuses. Plain Python, no gRPC.

Each error carries a stable UPPER_SNAKE reason (clients switch on it), a message in
English and Chinese, and the gRPC code it maps to. The server interceptor turns them
into a status with google.rpc details (see huiyuan.runtime.status).
"""

from dataclasses import dataclass, field

import grpc


class DomainError(Exception):
    """A refusal that the caller can act on. Subclasses fix the gRPC code."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    # ErrorInfo.domain: the service whose rule refused ("wallet.huiyuan"). None: the
    # service raising it; a refusal relayed from another service keeps that one's.
    domain: str | None = None

    def __init__(self, reason: str, en: str, zh: str, **metadata: str):
        super().__init__(en)
        self.reason = reason
        self.en = en
        self.zh = zh
        self.metadata = {k: str(v) for k, v in metadata.items()}


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


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

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[Violation]):
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

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, reason: str, en: str, zh: str, retry_delay_s: float | None = None, **metadata: str):
        super().__init__(reason, en, zh, **metadata)
        self.retry_delay_s = retry_delay_s


class Unavailable(DomainError):
    """A service this call needs did not answer in time; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE


class Internal(DomainError):
    """A service this call needs answered INTERNAL (a bug there), relayed with its reason,
    domain and trace id. Neither a refusal of the request nor "no answer": the same
    request would fail the same way, and nothing says what the service did."""

    code = grpc.StatusCode.INTERNAL
