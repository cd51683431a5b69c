"""Top-ups as the tiers count them (充值会员: 累计充值满 N 元升级).

The wallet keeps the money; the member service keeps, per top-up at a till, the
principal the member paid (the bonus is the chain's gift and does not count). The
gateway records each top-up after the wallet loaded it (RecordTopUp) and each refund
of one after the wallet gave it back (RecordTopUpRefund); the top_up_id makes a second
call change nothing. The member's row is locked first, as visits.py does, so a top-up
and a checkout of one member take turns and see each other's totals.
"""

from dataclasses import dataclass
from datetime import datetime

from huiyuan.database import Transaction
from services.member.domain.tiers import Tier, TierChange
from services.member.domain.top_ups import TopUp, not_recorded, recorded_for_another
from services.member.storage import tiers as stored_tiers, top_ups as stored
from services.member.use_cases import tiers
from services.member.use_cases.members import require_member
from services.member.use_cases.org import require_org_node


@dataclass
class Counted:
    member_id: str
    top_up_fen: int  # the member's top-ups that count, after this call
    climbed: TierChange | None = None  # set when this top-up took them up a tier
    tier_reached: Tier | None = None
    fell: TierChange | None = None  # set when this refund undid a climb


async def record_top_up(
    tx: Transaction, member_id: str, top_up_id: str, store_path: str, amount_fen: int, when: datetime
) -> Counted:
    await require_org_node(tx, store_path, "store_path")
    member = await require_member(tx, member_id, for_update=True)
    existing = await stored.get(tx, top_up_id)
    if existing is not None:
        if existing.member_id != member_id:
            raise recorded_for_another(top_up_id)
        return Counted(member_id, await stored_tiers.top_ups_of(tx, member_id))  # the same top-up again changes nothing
    await stored.insert_top_up(tx, TopUp(top_up_id, member_id, store_path, amount_fen, when))
    total = await stored_tiers.top_ups_of(tx, member_id)
    climbed = await tiers.climb(tx, member, top_up_fen=total)
    return Counted(member_id, total, *climbed) if climbed else Counted(member_id, total)


async def record_refund(tx: Transaction, top_up_id: str, when: datetime) -> Counted:
    found = await stored.get(tx, top_up_id)
    if found is None:  # loaded by a company's batch, or before top-ups counted: it never did
        raise not_recorded(top_up_id)
    member = await require_member(tx, found.member_id, for_update=True)
    found = await stored.get(tx, top_up_id)  # as it is now, the member locked
    assert found is not None
    if found.refund_time is not None:
        return Counted(member.member_id, await stored_tiers.top_ups_of(tx, member.member_id))  # refunded already
    await stored.refunded(tx, top_up_id, when)
    total = await stored_tiers.top_ups_of(tx, member.member_id)
    return Counted(member.member_id, total, fell=await tiers.after_return(tx, member, "充值退款后", top_up_fen=total))
