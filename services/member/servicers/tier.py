"""TierService: the gRPC face of tiers (use_cases/tiers.py) and of the top-ups they count
(use_cases/top_ups.py)."""

from huiyuan.database import Idempotency
from huiyuan.member.v1 import tier_pb2, tier_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import today, utcnow
from huiyuan.runtime.convert import calendar_date
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_actor, check_mask, check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext
from services.member.domain.fields import check_text
from services.member.domain.memberships import Benefit
from services.member.domain.tiers import MAX_SPEND_FEN, Tier, check_tier
from services.member.servicers import convert
from services.member.servicers.membership import benefit_of
from services.member.use_cases import tiers, top_ups

TIER_FIELDS = {
    "name",
    "rank",
    "price_rate_bp",
    "points_multiplier_bp",
    "benefits",
    "upgrade_spend_fen",
    "upgrade_top_up_fen",
    "entitlements",
}


def _entitlements(t: tier_pb2.Tier) -> list[Benefit]:
    return [benefit_of(b) for b in t.entitlements]


def _check(v: Violations, t: tier_pb2.Tier) -> None:
    check_tier(
        v,
        t.name,
        t.rank,
        t.price_rate_bp,
        t.points_multiplier_bp,
        t.benefits,
        t.upgrade_spend_fen,
        t.upgrade_top_up_fen,
        _entitlements(t),
    )


class TierServicer(tier_pb2_grpc.TierServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency

    async def CreateTier(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        t = request.tier
        _check(v, t)
        v.raise_if_any()
        tier = Tier(
            "",
            t.name.strip(),
            t.rank,
            t.price_rate_bp,
            t.points_multiplier_bp,
            t.benefits.strip(),
            t.upgrade_spend_fen,
            t.upgrade_top_up_fen,
            _entitlements(t),
        )

        async def work(tx):
            return tier_pb2.CreateTierResponse(tier=convert.tier(await tiers.create_tier(tx, tier)))

        return await self.idempotency.run(request, tier_pb2.CreateTierResponse, work)

    async def ListTiers(self, request, context):
        v = Violations()
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint()
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await tiers.list_tiers(tx, after[0] if after else None, size + 1)
        page, token = pagination.next_page(found, size, lambda t: [t.rank], fingerprint)
        return tier_pb2.ListTiersResponse(tiers=[convert.tier(t) for t in page], next_page_token=token)

    async def UpdateTier(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.tier.tier_id), "tier.tier_id", "TIER_ID_REQUIRED", "tier.tier_id is required")
        paths = check_mask(v, request, TIER_FIELDS)
        t = request.tier
        probe = Violations()  # check the whole tier, keep only the violations of masked fields
        _check(probe, t)
        v.items += [x for x in probe.items if x.field.removeprefix("tier.").split("[")[0] in paths]
        v.raise_if_any()
        changes = {
            p: (getattr(t, p).strip() if isinstance(getattr(t, p), str) else getattr(t, p))
            for p in paths
            if p != "entitlements"
        }
        if "entitlements" in paths:
            changes["entitlements"] = _entitlements(t)

        async def work(tx):
            return tier_pb2.UpdateTierResponse(tier=convert.tier(await tiers.update_tier(tx, t.tier_id, changes)))

        return await self.idempotency.run(request, tier_pb2.UpdateTierResponse, work)

    async def AssignTier(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        operator, _ = check_actor(v, request)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        v.check(bool(request.tier_id), "tier_id", "TIER_ID_REQUIRED", "tier_id is required")
        reason = check_text(v, request.reason, "reason", required=True)
        end_date = None
        if request.HasField("end_date"):
            end_date = calendar_date(request.end_date)
            v.check(
                end_date is not None and end_date >= today(),
                "end_date",
                "END_DATE_INVALID",
                "end_date must be a real day, today or later (business time)",
            )
        v.raise_if_any()

        async def work(tx):
            change = await tiers.assign_tier(tx, request.member_id, request.tier_id, reason, operator, end_date)
            return tier_pb2.AssignTierResponse(tier_change=convert.tier_change(change))

        return await self.idempotency.run(request, tier_pb2.AssignTierResponse, work)

    async def ListTierHistory(self, request, context):
        v = Violations()
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        before = pagination.decode(request.page_token, fingerprint, v, shape=(int,))
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await tiers.tier_history(tx, request.member_id, before[0] if before else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda row: [row[0]], fingerprint)
        return tier_pb2.ListTierHistoryResponse(
            tier_changes=[convert.tier_change(c) for _, c in page], next_page_token=token
        )

    async def RecordTopUp(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        v.check(bool(request.member_id), "member_id", "MEMBER_ID_REQUIRED", "member_id is required")
        _check_top_up_id(v, request.top_up_id)
        check_org_path(v, request.store_path, "store_path")
        v.check(
            0 < request.amount_fen <= MAX_SPEND_FEN,
            "amount_fen",
            "AMOUNT_OUT_OF_RANGE",
            "amount_fen must be 1 to 10^12",
        )
        v.raise_if_any()

        async def work(tx):
            counted = await top_ups.record_top_up(
                tx, request.member_id, request.top_up_id, request.store_path, request.amount_fen, utcnow()
            )
            return tier_pb2.RecordTopUpResponse(
                top_up_total_fen=counted.top_up_fen, **convert.climb(counted.climbed, counted.tier_reached)
            )

        return await self.idempotency.run(request, tier_pb2.RecordTopUpResponse, work)

    async def RecordTopUpRefund(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_actor(v, request, required=False)
        _check_top_up_id(v, request.top_up_id)
        v.raise_if_any()

        async def work(tx):
            counted = await top_ups.record_refund(tx, request.top_up_id, utcnow())
            return tier_pb2.RecordTopUpRefundResponse(
                member_id=counted.member_id,
                top_up_total_fen=counted.top_up_fen,
                tier_change=convert.tier_change(counted.fell) if counted.fell else None,
            )

        return await self.idempotency.run(request, tier_pb2.RecordTopUpRefundResponse, work)


def _check_top_up_id(v: Violations, top_up_id: str) -> None:
    v.check(0 < len(top_up_id) <= 64, "top_up_id", "TOP_UP_ID_INVALID", "top_up_id is required, at most 64 characters")
