"""The RPC a task is serving, set by the server interceptor for each call
(huiyuan/runtime/interceptors.py): list tokens are bound to it (pagination.py) and an
idempotency key records it (huiyuan/database/idempotency.py), so no caller names its
own RPC as a string."""

from contextvars import ContextVar

# /package.Service/Method; each call runs in a task of its own, so this is its own.
serving_rpc: ContextVar[str] = ContextVar("serving_rpc", default="")


def method_name() -> str:
    """The short name of the RPC being served (TopUp), as idempotency keys record it."""
    full = serving_rpc.get()
    if not full:
        raise RuntimeError("no RPC is being served: pass the method's name")
    return full.rsplit("/", 1)[-1]
