"""Offset policies, one per node of the organisation at most."""

from sqlalchemy import select

from huiyuan.database import Transaction, insert_for
from services.points.domain.offsets import OffsetPolicy
from services.points.storage.tables import offset_policies


async def save_policy(tx: Transaction, policy: OffsetPolicy, now) -> None:
    values = {
        "org_path": policy.org_path,
        "points_per_yuan": policy.points_per_yuan,
        "max_share_bp": policy.max_share_bp,
        "update_time": now,
    }
    upsert = insert_for(tx)(offset_policies).values(**values)
    await tx.execute(upsert.on_conflict_do_update(index_elements=["org_path"], set_=values))


_POLICIES = select(offset_policies)  # built once: every checkout's quote reads them


async def all_policies(tx: Transaction) -> list[OffsetPolicy]:
    return [OffsetPolicy(r.org_path, r.points_per_yuan, r.max_share_bp) for r in (await tx.execute(_POLICIES)).all()]
