"""A top-up at the till, and what the member service keeps of it.

The wallet loads the money; then the member service counts the principal toward the
tiers reached by top-ups (充值会员: 累计充值满 N 元升级), and the receipt congratulates
a member it took up a tier. A refunded top-up (WalletService/RefundTopUp, passed through
on a manager's key) stops counting, and a climb it paid for is undone (refunded()).

Both member steps come after the money moved and cannot fail it: a member service that
does not answer leaves the caller UNAVAILABLE, and the same request again (the same
derived ids) replays the wallet's answer and finishes the count. A company's batch does
not count: the company paid, not the member.
"""

import logging

from gateway.domain.callers import Caller
from gateway.use_cases import tenders
from gateway.use_cases.relay import actor_of, derived_id, relayed
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.member.v1 import member_pb2, tier_pb2
from huiyuan.runtime.errors import DomainError
from huiyuan.runtime.money import yuan
from huiyuan.wallet.v1 import wallet_pb2

log = logging.getLogger(__name__)


async def top_up(services, caller: Caller, request: pb.TopUpRequest) -> pb.TopUpResponse:
    async with relayed("member"):  # money is never loaded for a member who does not exist
        await services.member.GetMember(member_pb2.GetMemberRequest(member_id=request.member_id))
    async with relayed("wallet"):
        done = await services.wallet.TopUp(
            wallet_pb2.TopUpRequest(
                request_id=derived_id(caller.key_id, request.request_id, "top-up"),
                member_id=request.member_id,
                amount_fen=request.amount_fen,
                tender=tenders.TILL_TO_WALLET[request.tender],
                tender_reference=request.tender_reference,
                store_path=caller.store_path,
                actor=actor_of(caller),
                cashier_id=request.cashier_id,
            )
        )
    async with relayed("member"):
        counted = await services.tiers.RecordTopUp(
            tier_pb2.RecordTopUpRequest(
                request_id=derived_id(caller.key_id, request.request_id, "top-up-counted"),
                member_id=request.member_id,
                top_up_id=done.top_up_id,
                store_path=caller.store_path,
                amount_fen=done.principal_fen,
                actor=actor_of(caller),
            )
        )
    reached = counted.tier_reached.name if counted.HasField("tier_reached") else ""
    lines = [f"充值 {yuan(done.principal_fen)} ({tenders.ON_RECEIPT[request.tender]})"]
    lines += [f"赠送 {yuan(p.bonus_fen)} · {p.name}" for p in done.applied_packages]
    lines.append(f"储值余额 {yuan(done.balance.available_fen)}")
    if reached:
        lines.append(f"恭喜升级为 {reached}")
    return pb.TopUpResponse(
        top_up_id=done.top_up_id,
        principal_fen=done.principal_fen,
        bonus_fen=done.bonus_fen,
        receipt_lines=lines,
        stored_value_available_fen=done.balance.available_fen,
        tier_reached=reached,
    )


async def refunded(services, caller: Caller, request: wallet_pb2.RefundTopUpRequest, _answer) -> None:
    """After the wallet gave a top-up back: it counts toward the tiers no more. A top-up
    that never counted (a company's batch, or one loaded before top-ups counted) is
    nothing to undo."""
    try:
        async with relayed("member"):
            await services.tiers.RecordTopUpRefund(
                tier_pb2.RecordTopUpRefundRequest(
                    request_id=derived_id(caller.key_id, request.request_id, "top-up-uncounted"),
                    top_up_id=request.top_up_id,
                    actor=actor_of(caller),
                )
            )
    except DomainError as refusal:
        if refusal.reason != "TOP_UP_NOT_RECORDED":
            raise
        log.info("top-up %s refunded; it never counted toward the tiers", request.top_up_id)
