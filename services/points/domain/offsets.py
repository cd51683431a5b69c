"""Offset at checkout: how many points pay how much of an order, and the policy of a
store (the one of the nearest node at or above it)."""

from dataclasses import dataclass

from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import is_under
from services.points.domain.rules import BP


@dataclass(frozen=True)
class OffsetPolicy:
    org_path: str = "hq"
    points_per_yuan: int = 100  # 100 points = 1 yuan
    max_share_bp: int = 5_000  # points pay at most half of the payable amount

    def quote(self, available: int, payable_fen: int) -> tuple[int, int]:
        """(points, fen): the most the member may offset. Points needed for a fen amount
        are rounded up, so an offset never pays a fraction of a fen the points lack."""
        cap_fen = payable_fen * self.max_share_bp // BP
        fen = min(cap_fen, available * 100 // self.points_per_yuan)
        return -(-fen * self.points_per_yuan // 100), fen


def check_offset_policy(v: Violations, policy: OffsetPolicy, prefix: str = "policy.") -> None:
    v.check(
        1 <= policy.points_per_yuan <= 10_000,
        f"{prefix}points_per_yuan",
        "RATE_INVALID",
        "points_per_yuan must be 1 to 10000",
    )
    v.check(
        0 <= policy.max_share_bp <= BP,
        f"{prefix}max_share_bp",
        "SHARE_INVALID",
        "max_share_bp must be 0 to 10000 (100%)",
    )


def nearest(policies: list[OffsetPolicy], store_path: str) -> OffsetPolicy:
    """The policy of the nearest node at or above the store; the default without one."""
    mine = [p for p in policies if is_under(store_path, p.org_path)]
    if not mine:
        return OffsetPolicy()
    return max(mine, key=lambda p: p.org_path.count("/"))
