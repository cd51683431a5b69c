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

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from huiyuan.database.direct import send
from huiyuan.runtime.errors import FailedPrecondition, NotFound
from services.member import domain, tiers
from services.member.members import require_member
from services.member.storage import top_ups


@dataclass
class Counted:
    member_id: str
    top_up_fen: int  # the member's top-ups that count, after this call
    climbed: tiers.TierChange | None = None  # set when this top-up took them up a tier
    tier_reached: domain.Tier | None = None
    fell: tiers.TierChange | None = None  # set when this refund undid a climb


_TOP_UP = select(top_ups).where(top_ups.c.top_up_id == bindparam("top_up_id"))
_INSERT = insert(top_ups)
_REFUNDED = update(top_ups).where(top_ups.c.top_up_id == bindparam("key")).values(refund_time=bindparam("at"))


async def record_top_up(session: AsyncSession, member_id: str, top_up_id: str, store_path: str, amount_fen: int,
                        when: datetime) -> Counted:
    member = await require_member(session, member_id, for_update=True)
    existing = (await session.execute(_TOP_UP, {"top_up_id": top_up_id})).one_or_none()
    if existing is not None:
        if existing.member_id != member_id:
            raise FailedPrecondition("TOP_UP_ALREADY_RECORDED", "This top-up is recorded for another member.",
                                     "该充值已记录在其他会员名下。", top_up_id=top_up_id)
        return Counted(member_id, await _counted(session, member_id))  # the same top-up again changes nothing
    await send(session, _INSERT, {"top_up_id": top_up_id, "member_id": member_id, "store_path": store_path,
                                  "amount_fen": amount_fen, "top_up_time": when, "refund_time": None})
    total = await _counted(session, member_id)
    climbed = await tiers.climb(session, member, top_up_fen=total)
    return Counted(member_id, total, *climbed) if climbed else Counted(member_id, total)


async def record_refund(session: AsyncSession, top_up_id: str, when: datetime) -> Counted:
    found = (await session.execute(_TOP_UP, {"top_up_id": top_up_id})).one_or_none()
    if found is None:  # loaded by a company's batch, or before top-ups counted: it never did
        raise NotFound("TOP_UP_NOT_RECORDED", "This top-up does not count toward the tiers.",
                       "该充值不计入会员等级。", top_up_id=top_up_id)
    member = await require_member(session, found.member_id, for_update=True)
    found = (await session.execute(_TOP_UP, {"top_up_id": top_up_id})).one()  # as it is now, the member locked
    if found.refund_time is not None:
        return Counted(member.member_id, await _counted(session, member.member_id))  # refunded already
    await send(session, _REFUNDED, {"key": top_up_id, "at": when})
    total = await _counted(session, member.member_id)
    return Counted(member.member_id, total, fell=await tiers.after_return(session, member, "充值退款后", top_up_fen=total))


async def _counted(session, member_id: str) -> int:
    return await tiers.total(session, tiers.TOPPED_UP, member_id)
