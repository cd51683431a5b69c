"""How often a key may look members up, and how large a request may be.

Lookups: a till finds a member by phone, card or QR code to serve them; one that tries
hundreds of phone numbers a minute is going through the chain's members. So each key
has a token bucket: LOOKUP_BURST lookups at once, LOOKUP_PER_S more each second; one
past that is RESOURCE_EXHAUSTED LOOKUP_RATE_EXCEEDED with a google.rpc.RetryInfo saying
when the next token comes. A payment PIN tried through the gateway takes a token too:
six digits are as easy to go through as phone numbers.

The buckets live in the gateway process, one a key, in memory: no round trip on a hot
call. With several gateway replicas each keeps its own, so a key spread over N replicas
by the load balancer gets up to N times the allowance; still a bound, and a till's
connection usually stays on one replica. A limit shared by the replicas would need a
store they share (the database, Redis) and a round trip on every lookup.

Sizes: see MAX_REQUEST_BYTES below.
"""

from collections.abc import Callable

from huiyuan.runtime.errors import ResourceExhausted

# The largest request the gateway reads: a company's file or a file of members (16 MiB,
# some 200,000 rows of CSV; an XLSX holds several times more). gRPC refuses anything
# larger from the length it announces, before reading it, credential or none: it is the
# server's max_receive_message_length. Every other call's request is a few lines of an
# order or a form, refused past MAX_REQUEST_BYTES (4 MiB) as REQUEST_TOO_LARGE once
# read (gRPC's limit is one for the whole server, not one a method).
MAX_UPLOAD_BYTES = 16 * 2**20
MAX_REQUEST_BYTES = 4 * 2**20
UPLOADS = frozenset({"/huiyuan.gateway.v1.GatewayService/BatchTopUp", "/huiyuan.member.v1.MemberService/ImportMembers"})


def max_request_bytes(method: str) -> int:
    return MAX_UPLOAD_BYTES if method in UPLOADS else MAX_REQUEST_BYTES


class TokenBuckets:
    """A token bucket per key: burst tokens, per_s more a second, by clock (seconds, as
    time.monotonic counts them: app.py sets LOOKUP_BURST and LOOKUP_PER_S)."""

    def __init__(self, burst: int, per_s: float, clock: Callable[[], float]):
        self.burst, self.per_s, self.clock = burst, per_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)

    def take(self, key: str) -> None:
        """One token of key's bucket, or RESOURCE_EXHAUSTED with when the next comes."""
        now = self.clock()
        tokens, counted = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - counted) * self.per_s)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.per_s
            raise ResourceExhausted(
                "LOOKUP_RATE_EXCEEDED",
                f"Too many member lookups with this key; try again in {wait:.1f} s.",
                f"查询会员过于频繁，请 {max(1, round(wait))} 秒后再试。",
                retry_delay_s=wait,
            )
        self._buckets[key] = (tokens - 1, now)
