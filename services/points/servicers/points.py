"""PointsService: checks the request's shape, runs one use case (use_cases/) in one
transaction, translates. No rule lives here: the rules are in domain/."""

from datetime import timedelta

from huiyuan.database import Batcher, Idempotency
from huiyuan.points.v1 import points_pb2 as pb, points_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import calendar_date, enum_name, enum_value, from_timestamp, timestamp
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.holds import check_hold_change, check_hold_request
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import (
    check_actor,
    check_in_scope,
    check_member_id,
    check_order_lines,
    check_org_path,
    check_request_id,
    check_scope,
    check_store_path,
    check_text,
    is_under,
)
from huiyuan.runtime.server import ServiceContext
from huiyuan.runtime.validity import check_ending
from services.points.domain.gifts import Gift
from services.points.domain.holds import Hold
from services.points.domain.lots import Expiry, ExpiryPolicy, LotSource
from services.points.domain.members import Balance
from services.points.domain.offsets import OffsetPolicy, check_offset_policy
from services.points.domain.reversals import check_may_adjust
from services.points.domain.rules import BP, CampaignMultiplier, Line, LineAccrual, Order, Rule, check_rule
from services.points.use_cases import accrual, corrections, ledger, mall, offsets, rules, spending

MAX_POINTS = 100_000_000
MAX_STOCK = 1_000_000  # items of one gift moved by one adjustment


def balance(b: Balance) -> pb.Balance:
    return pb.Balance(
        member_id=b.member_id,
        available_points=b.available,
        pending_points=b.pending,
        held_points=b.held,
        expiring_soon_points=b.expiring_soon,
        debt_points=b.debt,
    )


def hold_message(h: Hold) -> pb.Hold:
    return pb.Hold(
        hold_id=h.hold_id,
        member_id=h.member_id,
        points=h.points,
        captured_points=h.captured,
        state=enum_value(pb.HoldState, "HOLD_STATE", h.state.value),
        expire_time=timestamp(h.expire_time),
        order_id=h.order_id,
    )


def _rule_id(v: Violations, value: str) -> None:
    v.check(is_id(value, "pr"), "rule_id", "RULE_ID_INVALID", "rule_id must be a rule id such as pr_01J...")


def _gift_id(v: Violations, value: str) -> None:
    v.check(is_id(value, "g"), "gift_id", "GIFT_ID_INVALID", "gift_id must be a gift id such as g_01J...")


def _points(v: Violations, value: int, field: str = "points") -> int:
    v.check(0 < value <= MAX_POINTS, field, "POINTS_INVALID", f"{field} must be 1 to {MAX_POINTS}")
    return value


def _order(v: Violations, request) -> Order:
    """The order of an AccrueRequest or a PreviewAccrualRequest."""
    check_store_path(v, request.store_path, "store_path")
    lines = request.lines
    check_order_lines(v, lines)
    v.check(
        0 <= request.tier_multiplier_bp <= 10 * BP,
        "tier_multiplier_bp",
        "MULTIPLIER_INVALID",
        "tier_multiplier_bp must be 0 to 100000 (0 or 10000: 1x)",
    )
    v.check(
        request.campaign_multiplier_bp == 0 or BP <= request.campaign_multiplier_bp <= 10 * BP,
        "campaign_multiplier_bp",
        "MULTIPLIER_INVALID",
        "campaign_multiplier_bp must be 0 or 10000 (none) to 100000",
    )
    name = check_text(v, request.campaign_multiplier_name, "campaign_multiplier_name", 64)
    if request.terminal_path:
        check_org_path(v, request.terminal_path, "terminal_path")
        v.check(
            is_under(request.terminal_path, request.store_path),
            "terminal_path",
            "TERMINAL_NOT_IN_STORE",
            "terminal_path must lie under store_path (the till the order was paid at)",
        )
    paid_time = from_timestamp(request.paid_time) if request.HasField("paid_time") else utcnow()
    return Order(
        request.store_path,
        request.tier_id,
        paid_time,
        [Line(x.line_id, x.category, x.paid_fen) for x in lines],
        request.tier_multiplier_bp or BP,
        CampaignMultiplier(request.campaign_multiplier_bp or BP, name),
        request.terminal_path,
    )


def _line_accruals(accruals: list[LineAccrual]) -> list[pb.LineAccrual]:
    return [
        pb.LineAccrual(line_id=a.line_id, points=a.points, rule_id=a.rule_id, explanation=a.explanation)
        for a in accruals
    ]


class PointsServicer(points_pb2_grpc.PointsServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency):
        self.database = ctx.database
        self.idempotency = idempotency
        # Accruals, holds and captures that arrive together run in one transaction (group commit).
        self.accruals = Batcher(self._accrue_batch)
        self.holds = Batcher(self._place_holds)
        self.captures = Batcher(self._capture_holds)

    async def GetBalance(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetBalanceResponse(balance=balance(await ledger.balance(tx, request.member_id, utcnow())))

    async def Grant(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        _points(v, request.points)
        source = enum_name(pb.LotSource, "LOT_SOURCE", request.source)
        v.check(
            source in ("SIGN_UP", "CAMPAIGN"),
            "source",
            "SOURCE_INVALID",
            "source must be SIGN_UP or CAMPAIGN (purchases go through Accrue)",
        )
        if request.store_path:
            check_org_path(v, request.store_path, "store_path")
        memo = check_text(v, request.memo, "memo", 200)
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            granted = await ledger.grant_by_hand(
                tx,
                member_id=request.member_id,
                points=request.points,
                source=LotSource(source),
                store_path=request.store_path,
                memo=memo,
                now=utcnow(),
            )
            return pb.GrantResponse(
                lot_id=granted.lot_id, expire_time=timestamp(granted.expire_time), balance=balance(granted.balance)
            )

        return await self.idempotency.run(request, pb.GrantResponse, work)

    async def CreateRule(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        r = request.rule
        check_org_path(v, r.org_path, "rule.org_path")
        policy = enum_name(pb.ExpiryPolicy, "EXPIRY_POLICY", r.expiry_policy) or "END_OF_YEAR"
        rule = Rule(
            "",
            r.name.strip(),
            r.org_path,
            r.priority,
            r.points_per_yuan_bp,
            r.multiplier_bp,
            list(r.tier_ids),
            list(r.categories),
            list(r.weekdays),
            list(r.month_days),
            from_timestamp(r.start_time) if r.HasField("start_time") else None,
            from_timestamp(r.end_time) if r.HasField("end_time") else None,
            r.min_spend_fen,
            r.cap_per_order,
            r.cap_per_day,
            Expiry(ExpiryPolicy(policy), r.expiry_param if r.expiry_policy else 1),
            r.pending_days,
        )
        v.check(
            r.expiry_policy == 0 or enum_name(pb.ExpiryPolicy, "EXPIRY_POLICY", r.expiry_policy) is not None,
            "rule.expiry_policy",
            "EXPIRY_POLICY_INVALID",
            "unknown expiry_policy",
        )
        v.check(
            r.expiry_policy or not r.expiry_param,
            "rule.expiry_param",
            "EXPIRY_POLICY_REQUIRED",
            "expiry_param says how many days or years of an expiry_policy: give the policy too",
        )
        v.check(
            not (r.multiplier_bp and r.expiry_policy),
            "rule.expiry_policy",
            "NOT_FOR_MULTIPLIER",
            "a multiplier's points are granted in the base rule's lot, which expires as the base rule says",
        )
        check_rule(v, rule)
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(r.org_path, actor_path, "rule", "规则")

        async def work(tx):
            rule.rule_id = new_id("pr")
            return pb.CreateRuleResponse(rule=_rule_message(await rules.create_rule(tx, rule, utcnow())))

        return await self.idempotency.run(request, pb.CreateRuleResponse, work)

    async def GetRule(self, request, context):
        v = Violations()
        _rule_id(v, request.rule_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetRuleResponse(rule=_rule_message(await rules.rule_by_id(tx, request.rule_id)))

    async def ListRules(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path, request.show_ended)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int, str))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await rules.list_rules(tx, request.org_path, request.show_ended, utcnow())
        page, token = pagination.page_in_memory(  # highest priority first
            found, size, after, lambda r: (-r.priority, r.rule_id), fingerprint
        )
        return pb.ListRulesResponse(rules=[_rule_message(r) for r in page], next_page_token=token)

    async def EndRule(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _rule_id(v, request.rule_id)
        ending = check_ending(v, request, utcnow())
        v.raise_if_any()

        async def work(tx):
            ended = await rules.end_rule(tx, request.rule_id, ending, utcnow())
            return pb.EndRuleResponse(rule=_rule_message(ended))

        return await self.idempotency.run(request, pb.EndRuleResponse, work)

    async def PreviewAccrual(self, request, context):
        v = Violations()
        if request.member_id:
            check_member_id(v, request.member_id)
        order = _order(v, request)
        v.raise_if_any()
        async with self.database.reading() as tx:
            accruals = await accrual.preview(tx, request.member_id, order)
        return pb.PreviewAccrualResponse(points=sum(a.points for a in accruals), lines=_line_accruals(accruals))

    async def Accrue(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        check_text(v, request.order_id, "order_id", 64, required=True)
        order = _order(v, request)
        check_actor(v, request, required=False)
        v.raise_if_any()

        return await self.accruals.submit((request, accrual.AccrueAsk(request.member_id, request.order_id, order)))

    async def _accrue_batch(self, items):
        async def work(tx, asks):
            return [
                o
                if not isinstance(o, accrual.Accrued)
                else pb.AccrueResponse(
                    points=sum(a.points for a in o.lines),
                    lines=_line_accruals(o.lines),
                    debt_paid_points=o.debt_paid,
                    balance=balance(o.balance),
                )
                for o in await accrual.accrue_many(tx, asks, utcnow())
            ]

        return await self.idempotency.run_batch(items, pb.AccrueResponse, work)

    async def SetOffsetPolicy(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        p = request.policy
        check_scope(v, p.org_path, "policy.org_path")
        policy = OffsetPolicy(p.org_path, p.points_per_yuan, p.max_share_bp)
        check_offset_policy(v, policy)
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(p.org_path, actor_path, "policy", "策略")

        async def work(tx):
            await offsets.set_policy(tx, policy, utcnow())
            return pb.SetOffsetPolicyResponse(policy=p)

        return await self.idempotency.run(request, pb.SetOffsetPolicyResponse, work)

    async def GetOffsetPolicy(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path")
        v.raise_if_any()
        async with self.database.reading() as tx:
            policy = await offsets.policy_at(tx, request.org_path)
        return pb.GetOffsetPolicyResponse(
            policy=pb.OffsetPolicy(
                org_path=policy.org_path, points_per_yuan=policy.points_per_yuan, max_share_bp=policy.max_share_bp
            )
        )

    async def QuoteOffset(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        check_store_path(v, request.store_path, "store_path")
        v.check(0 <= request.payable_fen <= 10**10, "payable_fen", "AMOUNT_INVALID", "payable_fen must be 0 or more")
        v.raise_if_any()
        async with self.database.reading() as tx:
            quote = await offsets.quote(tx, request.member_id, request.store_path, request.payable_fen, utcnow())
        return pb.QuoteOffsetResponse(
            max_points=quote.points,
            max_offset_fen=quote.fen,
            points_per_yuan=quote.points_per_yuan,
            available_points=quote.available,
        )

    async def Hold(self, request, context):
        v = Violations()
        ttl, order_id = check_hold_request(v, request)
        _points(v, request.points)
        v.raise_if_any()

        return await self.holds.submit(
            (
                request,
                spending.HoldAsk(new_id("ph"), request.member_id, request.points, ttl, order_id, request.store_path),
            )
        )

    async def _place_holds(self, items):
        async def work(tx, asks):
            return [
                o if not isinstance(o, Hold) else pb.HoldResponse(hold=hold_message(o))
                for o in await spending.place_holds(tx, asks, utcnow())
            ]

        return await self.idempotency.run_batch(items, pb.HoldResponse, work)

    async def Capture(self, request, context):
        v = Violations()
        check_hold_change(v, request)
        _points(v, request.points)
        v.raise_if_any()
        return await self.captures.submit((request, spending.CaptureAsk(request.hold_id, request.points)))

    async def _capture_holds(self, items):
        async def work(tx, asks):
            return [
                o
                if not isinstance(o, spending.Captured)
                else pb.CaptureResponse(hold=hold_message(o.hold), balance=balance(o.balance))
                for o in await spending.capture_holds(tx, asks, utcnow())
            ]

        return await self.idempotency.run_batch(items, pb.CaptureResponse, work)

    async def Release(self, request, context):
        v = Violations()
        check_hold_change(v, request)
        v.raise_if_any()

        async def work(tx):
            return pb.ReleaseResponse(
                hold=hold_message(await spending.release(tx, hold_id=request.hold_id, now=utcnow()))
            )

        return await self.idempotency.run(request, pb.ReleaseResponse, work)

    async def ListHistory(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.member_id)
        before = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await ledger.history(tx, request.member_id, before[0] if before else None, size + 1)
        page, token = pagination.next_page(rows, size, lambda row: [row.movement_id], fingerprint)
        return pb.ListHistoryResponse(
            next_page_token=token,
            movements=[
                pb.Movement(
                    movement_id=r.movement_id,
                    kind=enum_value(pb.MovementKind, "MOVEMENT_KIND", r.kind),
                    delta_points=r.delta_points,
                    order_id=r.order_id,
                    store_path=r.store_path,
                    memo=r.memo,
                    create_time=timestamp(r.create_time),
                )
                for r in page
            ],
        )

    async def RunExpiry(self, request, context):
        """Batches of their own transactions (a million lots is no one transaction);
        the outcome is stored under the request_id so a replay reports the same run."""
        v = Violations()
        check_request_id(v, request.request_id)
        v.raise_if_any()
        stored = await self.idempotency.stored(request, pb.RunExpiryResponse)
        if stored is not None:
            return stored
        now = utcnow()
        as_of = from_timestamp(request.as_of_time) if request.HasField("as_of_time") else now
        total_lots, total_points = await ledger.run_expiry(self.database, min(as_of, now), now)
        response = pb.RunExpiryResponse(expired_lots=total_lots, expired_points=total_points)
        return await self.idempotency.remember(request, response)

    async def Reverse(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        check_text(v, request.order_id, "order_id", 64, required=True)
        v.check(
            request.refunded_paid_fen >= 0,
            "refunded_paid_fen",
            "AMOUNT_INVALID",
            "refunded_paid_fen must not be negative",
        )
        v.check(
            request.returned_points >= 0, "returned_points", "POINTS_INVALID", "returned_points must not be negative"
        )
        v.check(
            request.refunded_paid_fen > 0 or request.returned_points > 0,
            "refunded_paid_fen",
            "NOTHING_TO_REVERSE",
            "give refunded_paid_fen or returned_points",
        )
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            done = await corrections.reverse(
                tx,
                member_id=request.member_id,
                order_id=request.order_id,
                refunded_paid_fen=request.refunded_paid_fen,
                returned_points=request.returned_points,
                now=utcnow(),
            )
            return pb.ReverseResponse(
                clawed_back_points=done.clawed_back,
                returned_points=done.returned,
                new_debt_points=done.new_debt,
                balance=balance(done.balance),
            )

        return await self.idempotency.run(request, pb.ReverseResponse, work)

    async def Adjust(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        v.check(
            request.delta_points != 0 and abs(request.delta_points) <= MAX_POINTS,
            "delta_points",
            "POINTS_INVALID",
            f"delta_points must be non-zero, at most {MAX_POINTS} either way",
        )
        reason = check_text(v, request.reason, "reason", 200, required=True)
        _, org_path = check_actor(v, request)
        v.raise_if_any()
        check_may_adjust(org_path)

        async def work(tx):
            after = await corrections.adjust(
                tx,
                member_id=request.member_id,
                delta=request.delta_points,
                reason=f"{reason} ({request.actor.operator_id})",
                store_path=org_path,
                now=utcnow(),
            )
            return pb.AdjustResponse(balance=balance(after))

        return await self.idempotency.run(request, pb.AdjustResponse, work)

    async def CreateGift(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        g = request.gift
        name = check_text(v, g.name, "gift.name", 64, required=True)
        _points(v, g.points, "gift.points")
        v.check(g.stock >= 0, "gift.stock", "STOCK_INVALID", "stock must not be negative")
        v.check(
            g.per_member_limit >= 0, "gift.per_member_limit", "LIMIT_INVALID", "per_member_limit must not be negative"
        )
        check_scope(v, g.org_path, "gift.org_path")
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_in_scope(g.org_path, actor_path, "gift", "礼品")

        async def work(tx):
            gift = await mall.create_gift(
                tx, Gift(new_id("g"), name, g.points, g.stock, g.per_member_limit, g.org_path), utcnow()
            )
            return pb.CreateGiftResponse(gift=_gift_message(gift))

        return await self.idempotency.run(request, pb.CreateGiftResponse, work)

    async def GetGift(self, request, context):
        v = Violations()
        _gift_id(v, request.gift_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetGiftResponse(gift=_gift_message(await mall.gift_by_id(tx, request.gift_id)))

    async def ListGifts(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v, shape=(int, str))
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await mall.gifts_on_line(tx, request.org_path)
        page, token = pagination.page_in_memory(found, size, after, lambda g: (g.points, g.gift_id), fingerprint)
        return pb.ListGiftsResponse(gifts=[_gift_message(g) for g in page], next_page_token=token)

    async def AdjustGiftStock(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _gift_id(v, request.gift_id)
        v.check(
            request.delta != 0 and abs(request.delta) <= MAX_STOCK,
            "delta",
            "DELTA_INVALID",
            f"delta must be non-zero, at most {MAX_STOCK:,} either way",
        )
        reason = check_text(v, request.reason, "reason", 200, required=True)
        operator, actor_path = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            gift = await mall.adjust_stock(
                tx,
                gift_id=request.gift_id,
                delta=request.delta,
                reason=reason,
                operator_id=operator,
                actor_path=actor_path,
                now=utcnow(),
            )
            return pb.AdjustGiftStockResponse(gift=_gift_message(gift))

        return await self.idempotency.run(request, pb.AdjustGiftStockResponse, work)

    async def RedeemGift(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        v.check(bool(request.gift_id), "gift_id", "GIFT_ID_REQUIRED", "gift_id is required")
        quantity = request.quantity or 1
        v.check(0 < quantity <= 100, "quantity", "QUANTITY_INVALID", "quantity must be 1 to 100")
        check_store_path(v, request.store_path, "store_path")
        check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            done = await mall.redeem(
                tx,
                member_id=request.member_id,
                gift_id=request.gift_id,
                quantity=quantity,
                store_path=request.store_path,
                now=utcnow(),
            )
            return pb.RedeemGiftResponse(points=done.points, stock_left=done.stock_left, balance=balance(done.balance))

        return await self.idempotency.run(request, pb.RedeemGiftResponse, work)

    async def ListExpiringMembers(self, request, context):
        v = Violations()
        within = request.within.ToTimedelta()
        v.check(
            timedelta(hours=1) <= within <= timedelta(days=366),
            "within",
            "WINDOW_INVALID",
            "within must be 1 h to 366 days",
        )
        check_org_path(v, request.org_path, "org_path", required=False)
        size = pagination.page_size(request.page_size, 100, 1000, v)
        fingerprint = pagination.fingerprint(request.within.ToSeconds(), request.org_path)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            rows = await ledger.expiring_members(
                tx, utcnow(), within, request.org_path, after[0] if after else None, size + 1
            )
        page, token = pagination.next_page(rows, size, lambda row: [row.member_id], fingerprint)
        return pb.ListExpiringMembersResponse(
            next_page_token=token,
            members=[
                pb.ExpiringMember(
                    member_id=r.member_id, points=r.points, first_expire_time=timestamp(r.first_expire_time)
                )
                for r in page
            ],
        )

    async def GetStoreActivity(self, request, context):
        v = Violations()
        check_store_path(v, request.store_path, "store_path")
        day = calendar_date(request.date)
        v.check(day is not None, "date", "DATE_INVALID", "date must be a full calendar date")
        v.raise_if_any()
        async with self.database.reading() as tx:
            earned, spent = await ledger.store_day(tx, request.store_path, day)
        return pb.GetStoreActivityResponse(earned_points=earned, spent_points=spent)


def _gift_message(g: Gift) -> pb.Gift:
    return pb.Gift(
        gift_id=g.gift_id,
        name=g.name,
        points=g.points,
        stock=g.stock,
        per_member_limit=g.per_member_limit,
        org_path=g.org_path,
    )


def _rule_message(r: Rule) -> pb.Rule:
    return pb.Rule(
        rule_id=r.rule_id,
        name=r.name,
        org_path=r.org_path,
        priority=r.priority,
        points_per_yuan_bp=r.points_per_yuan_bp,
        multiplier_bp=r.multiplier_bp,
        tier_ids=r.tier_ids,
        categories=r.categories,
        weekdays=r.weekdays,
        month_days=r.month_days,
        start_time=timestamp(r.start_time),
        end_time=timestamp(r.end_time),
        min_spend_fen=r.min_spend_fen,
        cap_per_order=r.cap_per_order,
        cap_per_day=r.cap_per_day,
        expiry_policy=enum_value(pb.ExpiryPolicy, "EXPIRY_POLICY", r.expiry.policy.value),
        expiry_param=r.expiry.param,
        pending_days=r.pending_days,
        ended_by=r.ended_by,
    )
