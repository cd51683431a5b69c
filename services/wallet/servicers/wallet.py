"""WalletService: checks the request's shape, runs one use case in one transaction,
translates. The rules are in domain/, the use cases in use_cases/."""

from huiyuan.database import Batcher, Idempotency
from huiyuan.runtime import files, pagination
from huiyuan.runtime.clock import utcnow
from huiyuan.runtime.convert import calendar_date, enum_name, enum_value, from_timestamp, timestamp
from huiyuan.runtime.errors import DomainError, Violations
from huiyuan.runtime.holds import check_hold_change, check_hold_request
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import (
    REQUEST_ID,
    check_actor,
    check_member_id,
    check_org_path,
    check_request_id,
    check_scope,
    check_store_path,
    check_text,
    check_till_or_office_view,
)
from huiyuan.runtime.server import ServiceContext
from huiyuan.runtime.validity import check_ending
from huiyuan.wallet.v1 import wallet_pb2 as pb, wallet_pb2_grpc
from services.wallet.domain.accounts import MemberAccounts
from services.wallet.domain.adjustments import check_may_adjust
from services.wallet.domain.holds import CaptureAsk, Hold, HoldAsk
from services.wallet.domain.packages import PackageStep, TopUpPackage, check_may_manage, check_package
from services.wallet.domain.postings import MAX_MEMO, Entry, EntryKind, StatementQuery
from services.wallet.domain.spend_policy import SpendPolicy
from services.wallet.domain.top_ups import MAX_CASHIER_ID, MAX_TOP_UP_FEN, Tender, TopUp
from services.wallet.use_cases import (
    adjustments,
    balances,
    batch_top_ups,
    consumption_refunds,
    holds,
    homes,
    packages,
    reports,
    top_ups,
)


def balance(a: MemberAccounts) -> pb.Balance:
    return pb.Balance(
        member_id=a.member_id, principal_fen=a.principal, bonus_fen=a.bonus, held_fen=a.held, available_fen=a.available
    )


def hold_message(h: Hold) -> pb.Hold:
    return pb.Hold(
        hold_id=h.hold_id,
        member_id=h.member_id,
        amount_fen=h.amount,
        captured_fen=h.captured,
        state=enum_value(pb.HoldState, "HOLD_STATE", h.state.value),
        expire_time=timestamp(h.expire_time),
        store_path=h.store_path,
        order_id=h.order_id,
    )


def _amount(v: Violations, value: int, field: str = "amount_fen", maximum: int = MAX_TOP_UP_FEN) -> int:
    v.check(0 < value <= maximum, field, "AMOUNT_INVALID", f"{field} must be 1 to {maximum} fen")
    return value


class WalletServicer(wallet_pb2_grpc.WalletServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, policy: SpendPolicy):
        self.database = ctx.database
        self.idempotency = idempotency
        self.policy = policy
        # Holds and captures that arrive together run in one transaction (group commit).
        self.holds = Batcher(self._place_holds)
        self.captures = Batcher(self._capture_holds)

    async def GetBalance(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetBalanceResponse(balance=balance(await balances.balance(tx, request.member_id)))

    async def TopUp(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        _amount(v, request.amount_fen)
        tender = enum_name(pb.Tender, "TENDER", request.tender)
        v.check(
            tender is not None, "tender", "TENDER_INVALID", "tender must be CASH, BANK_CARD, WECHAT_PAY, ALIPAY, ..."
        )
        reference = check_text(v, request.tender_reference, "tender_reference", 64)
        check_store_path(v, request.store_path, "store_path")
        operator, actor_path = check_actor(v, request)
        cashier = request.cashier_id.strip()
        v.check(
            len(cashier) <= MAX_CASHIER_ID,
            "cashier_id",
            "CASHIER_ID_TOO_LONG",
            f"cashier_id is at most {MAX_CASHIER_ID} characters",
        )
        v.raise_if_any()
        # the till, when the call came from a node under the store (the store's own till)
        till = actor_path if actor_path.startswith(request.store_path + "/") else ""

        async def work(tx):
            top_up, accounts = await top_ups.top_up(
                tx,
                top_up_id=new_id("t"),
                member_id=request.member_id,
                amount=request.amount_fen,
                tender=Tender(tender),
                tender_reference=reference,
                store_path=request.store_path,
                operator_id=operator,
                now=utcnow(),
                cashier_id=cashier,
                till_path=till,
            )
            return pb.TopUpResponse(
                top_up_id=top_up.top_up_id,
                principal_fen=top_up.principal,
                bonus_fen=top_up.bonus,
                applied_packages=[pb.AppliedPackage(**p) for p in top_up.packages],
                balance=balance(accounts),
            )

        return await self.idempotency.run(request, pb.TopUpResponse, work)

    async def BatchTopUp(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(
            bool(REQUEST_ID.match(request.batch_id)),
            "batch_id",
            "BATCH_ID_INVALID",
            "batch_id: 1 to 64 letters, digits or . _ : -",
        )
        xlsx = files.check_format(v, request.format)
        check_store_path(v, request.store_path, "store_path")
        operator, _ = check_actor(v, request)
        v.raise_if_any()
        stored = await self.idempotency.stored(request, pb.BatchTopUpResponse)
        if stored is not None:
            return stored
        report = await batch_top_ups.load(
            self.database,
            batch_id=request.batch_id,
            rows=batch_top_ups.read_rows(request.content, xlsx),
            store_path=request.store_path,
            operator_id=operator,
        )
        applied = [r for r in report if not r.reject_reason]
        return await self.idempotency.remember(
            request,
            pb.BatchTopUpResponse(
                applied_rows=len(applied),
                rejected_rows=len(report) - len(applied),
                total_fen=sum(r.amount for r in applied),
                bonus_fen=sum(r.bonus for r in applied),
                rows=[
                    pb.BatchTopUpRow(
                        row_number=r.row_number,
                        member_id=r.member_id,
                        amount_fen=r.amount,
                        reject_reason=r.reject_reason,
                        bonus_fen=r.bonus,
                    )
                    for r in report
                ],
            ),
        )

    async def Hold(self, request, context):
        v = Violations()
        ttl, order_id = check_hold_request(v, request)
        _amount(v, request.amount_fen)
        v.raise_if_any()
        return await self.holds.submit(
            (request, HoldAsk(new_id("h"), request.member_id, request.amount_fen, ttl, request.store_path, order_id))
        )

    async def _place_holds(self, items):
        async def work(tx, asks):
            placed = await holds.place_holds(tx, asks, self.policy, utcnow())
            return [h if isinstance(h, DomainError) else pb.HoldResponse(hold=hold_message(h)) for h in placed]

        return await self.idempotency.run_batch(items, pb.HoldResponse, work)

    async def Capture(self, request, context):
        v = Violations()
        operator = check_hold_change(v, request)
        _amount(v, request.amount_fen)
        v.raise_if_any()
        return await self.captures.submit((request, CaptureAsk(request.hold_id, request.amount_fen, operator)))

    async def _capture_holds(self, items):
        async def work(tx, asks):
            return [
                c
                if isinstance(c, DomainError)
                else pb.CaptureResponse(
                    hold=hold_message(c.hold), principal_fen=c.principal, bonus_fen=c.bonus, balance=balance(c.accounts)
                )
                for c in await holds.capture_holds(tx, asks, utcnow())
            ]

        return await self.idempotency.run_batch(items, pb.CaptureResponse, work)

    async def Release(self, request, context):
        v = Violations()
        check_hold_change(v, request)
        v.raise_if_any()

        async def work(tx):
            return pb.ReleaseResponse(hold=hold_message(await holds.release(tx, hold_id=request.hold_id, now=utcnow())))

        return await self.idempotency.run(request, pb.ReleaseResponse, work)

    async def RefundConsumption(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.hold_id), "hold_id", "HOLD_ID_REQUIRED", "hold_id is required")
        _amount(v, request.amount_fen)
        check_store_path(v, request.store_path, "store_path")
        operator, _ = check_actor(v, request, required=False)
        v.raise_if_any()

        async def work(tx):
            accounts, principal, bonus = await consumption_refunds.refund_consumption(
                tx,
                hold_id=request.hold_id,
                amount=request.amount_fen,
                store_path=request.store_path,
                operator_id=operator,
                refund_id=new_id("r"),
                now=utcnow(),
            )
            return pb.RefundConsumptionResponse(principal_fen=principal, bonus_fen=bonus, balance=balance(accounts))

        return await self.idempotency.run(request, pb.RefundConsumptionResponse, work)

    async def RefundTopUp(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _top_up_id(v, request.top_up_id)
        reason = check_text(v, request.reason, "reason", MAX_MEMO, required=True)
        operator, _ = check_actor(v, request)
        v.raise_if_any()

        async def work(tx):
            top_up, accounts = await top_ups.refund_top_up(
                tx,
                top_up_id=request.top_up_id,
                refund_id=new_id("r"),
                reason=reason,
                operator_id=operator,
                now=utcnow(),
            )
            return pb.RefundTopUpResponse(
                principal_fen=top_up.principal,
                bonus_fen=top_up.bonus,
                tender=enum_value(pb.Tender, "TENDER", top_up.tender.value),
                tender_reference=top_up.tender_reference,
                balance=balance(accounts),
            )

        return await self.idempotency.run(request, pb.RefundTopUpResponse, work)

    async def GetTopUp(self, request, context):
        v = Violations()
        _top_up_id(v, request.top_up_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetTopUpResponse(top_up=_top_up(await top_ups.top_up_by_id(tx, request.top_up_id)))

    async def Adjust(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        check_member_id(v, request.member_id)
        v.check(
            request.principal_delta_fen != 0 or request.bonus_delta_fen != 0,
            "principal_delta_fen",
            "ADJUSTMENT_ZERO",
            "an adjustment must change principal or bonus",
        )
        for field in ("principal_delta_fen", "bonus_delta_fen"):
            v.check(abs(getattr(request, field)) <= MAX_TOP_UP_FEN, field, "AMOUNT_INVALID", f"{field} is too large")
        reason = check_text(v, request.reason, "reason", MAX_MEMO, required=True)
        operator, org_path = check_actor(v, request)
        v.raise_if_any()
        check_may_adjust(org_path)

        async def work(tx):
            accounts = await adjustments.adjust(
                tx,
                adjustment_id=new_id("a"),
                member_id=request.member_id,
                principal_delta=request.principal_delta_fen,
                bonus_delta=request.bonus_delta_fen,
                reason=reason,
                operator_id=operator,
                now=utcnow(),
            )
            return pb.AdjustResponse(balance=balance(accounts))

        return await self.idempotency.run(request, pb.AdjustResponse, work)

    async def ListEntries(self, request, context):
        v = Violations()
        check_member_id(v, request.member_id)
        query = StatementQuery(request.member_id, store_path=check_org_path(v, request.store_path, "store_path", False))
        for field in ("start_date", "end_date"):
            if request.HasField(field):
                day = calendar_date(getattr(request, field))
                v.check(day is not None, field, "DATE_INVALID", f"{field} must be a full calendar date")
                setattr(query, field, day)
        kind = enum_name(pb.EntryKind, "ENTRY_KIND", request.kind)
        v.check(request.kind == 0 or kind is not None, "kind", "KIND_INVALID", "unknown entry kind")
        query.kind = EntryKind(kind) if kind else None
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(
            request.member_id,
            request.store_path,
            request.kind,
            str(query.start_date),
            str(query.end_date),
            "by-sequence",
        )
        before = _statement_position(pagination.decode(request.page_token, fingerprint, v, shape=(int,)), v)
        v.raise_if_any()
        async with self.database.reading() as tx:
            found = await reports.statement(tx, query, before, size + 1)
        page, token = pagination.next_page(found, size, lambda entry: [entry.sequence], fingerprint)
        return pb.ListEntriesResponse(entries=[_entry(r) for r in page], next_page_token=token)

    async def CreateTopUpPackage(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        given = request.package
        check_scope(v, given.org_path, "package.org_path")
        package = TopUpPackage(
            "",
            given.name,
            given.org_path,
            [PackageStep(s.threshold_fen, s.bonus_fen) for s in given.steps],
            from_timestamp(given.start_time) if given.HasField("start_time") else None,
            from_timestamp(given.end_time) if given.HasField("end_time") else None,
            tenders=tuple(_tenders(v, given.tenders)),
        )
        check_package(v, package)
        _, actor_path = check_actor(v, request, required=False)
        v.raise_if_any()
        check_may_manage(given.org_path, actor_path)

        async def work(tx):
            package.package_id = new_id("pk")
            created = await packages.create_package(tx, package, utcnow())
            return pb.CreateTopUpPackageResponse(package=_package(created))

        return await self.idempotency.run(request, pb.CreateTopUpPackageResponse, work)

    async def GetTopUpPackage(self, request, context):
        v = Violations()
        _package_id(v, request.package_id)
        v.raise_if_any()
        async with self.database.reading() as tx:
            return pb.GetTopUpPackageResponse(package=_package(await packages.package_by_id(tx, request.package_id)))

    async def ListTopUpPackages(self, request, context):
        v = Violations()
        check_till_or_office_view(v, request)
        size = pagination.page_size(request.page_size, 50, 500, v)
        at_time = [request.at_time.seconds, request.at_time.nanos] if request.HasField("at_time") else None  # None: now
        fingerprint = pagination.fingerprint(request.store_path, at_time, request.org_path, request.show_ended)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        at = from_timestamp(request.at_time) if request.HasField("at_time") else utcnow()
        async with self.database.reading() as tx:
            if request.store_path:
                found = await packages.packages_at(tx, request.store_path, at)
            else:
                found = await packages.packages_on_line(tx, request.org_path, at, request.show_ended)
        page, token = pagination.page_in_memory(found, size, after, lambda p: (p.package_id,), fingerprint)
        return pb.ListTopUpPackagesResponse(packages=[_package(p) for p in page], next_page_token=token)

    async def EndTopUpPackage(self, request, context):
        v = Violations()
        check_request_id(v, request.request_id)
        _package_id(v, request.package_id)
        ending = check_ending(v, request, utcnow())
        v.raise_if_any()

        async def work(tx):
            ended = await packages.end_package(tx, request.package_id, ending, utcnow())
            return pb.EndTopUpPackageResponse(package=_package(ended))

        return await self.idempotency.run(request, pb.EndTopUpPackageResponse, work)

    async def GetSettlement(self, request, context):
        v = Violations()
        check_org_path(v, request.org_path, "org_path")
        start, end = calendar_date(request.start_date), calendar_date(request.end_date)
        v.check(start is not None, "start_date", "DATE_INVALID", "start_date must be a full calendar date")
        v.check(end is not None, "end_date", "DATE_INVALID", "end_date must be a full calendar date")
        if start and end:
            v.check(start <= end, "end_date", "DATES_REVERSED", "end_date must not be before start_date")
        v.raise_if_any()
        async with self.database.reading() as tx:
            positions = await reports.settlement(tx, request.org_path, start, end)
        return pb.GetSettlementResponse(
            positions=[
                pb.StorePosition(
                    store_path=p.store_path,
                    loaded_here_spent_elsewhere_fen=p.loaded_here_spent_elsewhere,
                    loaded_elsewhere_spent_here_fen=p.loaded_elsewhere_spent_here,
                    net_fen=p.net,
                    count_card_sold_here_used_elsewhere_fen=p.card_sold_here_used_elsewhere,
                    count_card_sold_elsewhere_used_here_fen=p.card_sold_elsewhere_used_here,
                )
                for p in positions
            ]
        )

    async def ApplyMemberHomes(self, request, context):
        v = Violations()
        v.check(0 < len(request.homes) <= homes.MAX_HOMES, "homes", "HOMES_COUNT", f"1 to {homes.MAX_HOMES} homes.")
        seen: set[tuple[str, int]] = set()
        for i, h in enumerate(request.homes[: homes.MAX_HOMES]):
            v.check(h.change_id > 0, f"homes[{i}].change_id", "CHANGE_ID_INVALID", "A change id is above 0.")
            v.check(
                (h.member_id, h.change_id) not in seen,
                f"homes[{i}].change_id",
                "CHANGE_ID_REPEATED",
                "Each change of a member once.",
            )
            seen.add((h.member_id, h.change_id))
            check_member_id(v, h.member_id, f"homes[{i}].member_id")
            check_org_path(v, h.home_store_path, f"homes[{i}].home_store_path", required=False)  # "": none
        v.raise_if_any()
        changes = [homes.HomeChange(h.change_id, h.member_id, h.home_store_path) for h in request.homes]
        async with self.database.transaction() as tx:
            applied, moved = await homes.apply_homes(tx, changes, utcnow())
        return pb.ApplyMemberHomesResponse(applied=applied, balances_moved=moved)

    async def GetStoreActivity(self, request, context):
        v = Violations()
        check_store_path(v, request.store_path, "store_path")
        day = calendar_date(request.date)
        v.check(day is not None, "date", "DATE_INVALID", "date must be a full calendar date")
        v.raise_if_any()
        async with self.database.reading() as tx:
            day_of = await reports.store_activity(tx, request.store_path, day)
        return pb.GetStoreActivityResponse(
            top_up_fen=day_of.top_up,
            bonus_fen=day_of.bonus,
            spent_fen=day_of.spent,
            count_card_sold_fen=day_of.count_card_sold,
            count_card_used_fen=day_of.count_card_used,
            top_up_takings=[
                pb.TopUpTakings(
                    tender=enum_value(pb.Tender, "TENDER", t.tender.value),
                    top_up_fen=t.top_up,
                    refunded_fen=t.refunded,
                    count_card_fen=t.count_card,
                    count_card_refunded_fen=t.count_card_refunded,
                )
                for t in day_of.takings
            ],
        )


def _entry(e: Entry) -> pb.Entry:
    return pb.Entry(
        entry_id=e.entry_id,
        kind=enum_value(pb.EntryKind, "ENTRY_KIND", e.kind),
        principal_delta_fen=e.principal_delta,
        bonus_delta_fen=e.bonus_delta,
        balance_after_fen=e.balance_after,
        loaded_store_path=e.loaded_store_path,
        store_path=e.store_path,
        operator_id=e.operator_id,
        post_time=timestamp(e.post_time),
        memo=e.memo,
        sequence=e.sequence,
    )


def _package(p: TopUpPackage) -> pb.TopUpPackage:
    return pb.TopUpPackage(
        package_id=p.package_id,
        name=p.name,
        org_path=p.org_path,
        steps=[pb.PackageStep(threshold_fen=s.threshold_fen, bonus_fen=s.bonus_fen) for s in p.steps],
        start_time=timestamp(p.start_time),
        end_time=timestamp(p.end_time),
        ended_by=p.ended_by,
        tenders=[enum_value(pb.Tender, "TENDER", t.value) for t in p.tenders],
    )


def _statement_position(position: list | None, v: Violations) -> int | None:
    """A statement token's sequence of the last entry listed, as ListEntries wrote it."""
    if position is None:
        return None
    if position[0] < 1:
        v.add("page_token", "PAGE_TOKEN_INVALID", "page_token is not one this API issued")
        return None
    return position[0]


def _top_up(t: TopUp) -> pb.TopUpRecord:
    return pb.TopUpRecord(
        top_up_id=t.top_up_id,
        member_id=t.member_id,
        principal_fen=t.principal,
        bonus_fen=t.bonus,
        applied_packages=[pb.AppliedPackage(**p) for p in t.packages],
        tender=enum_value(pb.Tender, "TENDER", t.tender.value),
        tender_reference=t.tender_reference,
        store_path=t.store_path,
        operator_id=t.operator_id,
        create_time=timestamp(t.create_time),
        refund_time=timestamp(t.refund_time),
    )


def _tenders(v: Violations, given) -> list[Tender]:
    """A package's tenders; one that names no tender is refused."""
    names = [enum_name(pb.Tender, "TENDER", t) for t in given]
    v.check(
        None not in names,
        "package.tenders",
        "TENDER_INVALID",
        "each tender must be CASH, BANK_CARD, WECHAT_PAY, ALIPAY, ONLINE or ENTERPRISE",
    )
    return [Tender(name) for name in names if name]


def _top_up_id(v: Violations, value: str) -> None:
    v.check(bool(value), "top_up_id", "TOP_UP_ID_REQUIRED", "top_up_id is required")


def _package_id(v: Violations, value: str) -> None:
    v.check(is_id(value, "pk"), "package_id", "PACKAGE_ID_INVALID", "package_id must be a package id such as pk_01J...")
