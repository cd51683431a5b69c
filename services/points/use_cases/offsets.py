"""The offset policy of a node, and what a member may offset at a store's checkout
(domain/offsets.py)."""

from dataclasses import dataclass

from huiyuan.database import Transaction
from services.points.domain.offsets import OffsetPolicy, nearest
from services.points.storage import offsets
from services.points.use_cases import ledger


async def set_policy(tx: Transaction, policy: OffsetPolicy, now) -> OffsetPolicy:
    await offsets.save_policy(tx, policy, now)
    return policy


async def policy_at(tx: Transaction, org_path: str) -> OffsetPolicy:
    """The policy in force at a node: its own or the nearest above it, else the default."""
    return nearest(await offsets.all_policies(tx), org_path)


@dataclass(frozen=True)
class Quote:
    points: int  # the most the member may offset
    fen: int  # and what they pay
    points_per_yuan: int
    available: int


async def quote(tx: Transaction, member_id: str, store_path: str, payable_fen: int, now) -> Quote:
    policy = nearest(await offsets.all_policies(tx), store_path)
    available = (await ledger.balance(tx, member_id, now)).available
    points, fen = policy.quote(available, payable_fen)
    return Quote(points, fen, policy.points_per_yuan, available)
