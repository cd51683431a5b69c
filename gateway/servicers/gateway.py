"""GatewayService: who is calling, is the request well formed, then one use case.

Credentials (servicers/auth.py), LookupMember (member, stored value, points, coupons and
count cards in one answer) and RegisterMember (use_cases/members.py), TopUp (use_cases/top_ups.py), Checkout (the saga, use_cases/checkout.py),
GetOrder and ListOrders (use_cases/orders.py), SettleOrder (use_cases/settlement.py),
Refund (use_cases/refunds.py), the store's daily summary (use_cases/reports.py), coupons
for a segment (use_cases/segments.py), enterprise batch top-ups (use_cases/batches.py),
the audit trail (use_cases/audit.py) and keys (use_cases/api_keys.py)."""

from gateway.domain.callers import BACK_OFFICE_ROLES, STORE_ROLES, Role
from gateway.domain.limits import TokenBuckets
from gateway.domain.people import PersonRole, check_password, check_person
from gateway.servicers import checks
from gateway.servicers.auth import Authenticator
from gateway.servicers.deadlines import LONG_CALL_S, passed_on_deadline
from gateway.use_cases import (
    api_keys,
    audit,
    batches,
    checkout,
    decisions,
    members,
    orders,
    people,
    refunds,
    report_runs,
    reports,
    segments,
    settlement,
    top_ups,
)
from gateway.use_cases.leases import LEASE_S
from gateway.use_cases.relay import Services
from huiyuan.database import Idempotency
from huiyuan.gateway.v1 import gateway_pb2 as pb, gateway_pb2_grpc
from huiyuan.runtime import pagination
from huiyuan.runtime.convert import calendar_date, calendar_day, enum_name
from huiyuan.runtime.errors import Violations
from huiyuan.runtime.requests import check_org_path, check_request_id
from huiyuan.runtime.server import ServiceContext


class GatewayServicer(gateway_pb2_grpc.GatewayServiceServicer):
    def __init__(self, ctx: ServiceContext, idempotency: Idempotency, services: Services, lookups: TokenBuckets):
        self.lookups = lookups  # member lookups and PIN tries, per key (gateway/domain/limits.py)
        self.database = ctx.database  # orders, their saga logs, their reads and exports
        self.idempotency = idempotency
        self.auth = Authenticator(ctx.database)
        self.services = services

    async def Checkout(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES, request)
        v = Violations()
        checks.checkout(v, request)
        v.raise_if_any()
        if request.payment_pin:  # six digits are tried as phone numbers are (gateway/domain/limits.py)
            self.lookups.take(caller.key_id)
        # A retry while another run works on the order waits for its answer, within its own deadline.
        return await checkout.checkout(
            self.services, self.database, caller, request, max(0.0, passed_on_deadline(context, LEASE_S) - 0.2)
        )

    async def PriceOrder(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES, request)
        v = Violations()
        checks.order(v, request)
        v.raise_if_any()
        return await decisions.price(self.services, request, caller.store_path)

    async def Refund(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES, request)
        v = Violations()
        checks.refund(v, request)
        v.raise_if_any()
        return await refunds.refund(
            self.services, self.database, caller, request, max(0.0, passed_on_deadline(context, LEASE_S) - 0.2)
        )

    async def GetStoreDailySummary(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        store = caller.store_asked(v, request.store_path, "which store's day")
        day = calendar_date(request.date)
        v.check(day is not None, "date", "DATE_INVALID", "date must be a full calendar date")
        v.raise_if_any()
        return await reports.store_summary(self.services, self.database, caller, store, day, request.date)

    async def ExportOrders(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        node, start, end, state, xlsx = checks.export(v, request)
        v.raise_if_any()
        async for chunk in reports.export_orders(
            self.database, self.services.org, caller, node, start, end, state, xlsx
        ):
            yield chunk

    async def RunReport(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        kind, node, period, trend = checks.report(v, request)
        v.raise_if_any()
        report, name, tables = await report_runs.run(self.services, self.database, caller, kind, node, period, trend)
        return pb.RunReportResponse(
            report=request.report,
            org_path=report.node,
            org_name=name,
            first_day=calendar_day(report.period.first),
            last_day=calendar_day(report.period.last),
            tables=[_table(x) for x in tables],
        )

    async def ExportReport(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        kind, node, period, trend, xlsx = checks.report_export(v, request)
        v.raise_if_any()
        for file_name, chunk in await report_runs.export(
            self.services, self.database, caller, kind, node, period, trend, xlsx
        ):
            yield pb.ExportReportResponse(file_name=file_name, chunk=chunk)

    async def GetOrder(self, request, context):
        caller = await self.auth.caller(context, request=request)
        found = await orders.get_order(self.database, caller, request.order_id)
        return pb.GetOrderResponse(
            state=found.state,
            receipt=found.receipt if found.HasField("receipt") else None,
            refused_steps=found.refused_steps,
        )

    async def ListOrders(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        node, wanted, size, before, fingerprint = checks.order_list(v, request, caller)
        v.raise_if_any()
        return await orders.list_orders(self.database, caller, node, wanted, size, before, fingerprint)

    async def SettleOrder(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        checks.settlement(v, request)
        v.raise_if_any()
        return pb.SettleOrderResponse(order=await settlement.settle(self.services, self.database, caller, request))

    async def LookupMember(self, request, context):
        caller = await self.auth.caller(context, request=request)
        key = request.WhichOneof("key")
        v = Violations()
        v.check(key is not None, "key", "LOOKUP_KEY_REQUIRED", "give card_number, phone or qr_token")
        v.raise_if_any()
        self.lookups.take(caller.key_id)
        return await members.look_up(self.services, caller, key, getattr(request, key))

    async def RegisterMember(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES, request)
        v = Violations()
        check_request_id(v, request.request_id)
        checks.cashier(v, request.cashier_id)
        v.raise_if_any()
        return await members.register(self.services, self.database, caller, request)

    async def TopUp(self, request, context):
        caller = await self.auth.caller(context, STORE_ROLES, request)
        v = Violations()
        checks.top_up(v, request)
        v.raise_if_any()
        return await top_ups.top_up(self.services, caller, request)

    async def BatchTopUp(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        store, xlsx = checks.batch_top_up(v, request, caller)
        v.raise_if_any()
        return await batches.top_up(
            self.services,
            self.idempotency,
            self.database,
            caller,
            request,
            store,
            xlsx,
            passed_on_deadline(context, LONG_CALL_S),
        )

    async def IssueSegmentCoupons(self, request, context):
        caller = await self.auth.caller(context, segments.ISSUE.roles, request)
        v = Violations()
        checks.segment_coupons(v, request)
        v.raise_if_any()
        return await segments.issue(self.services, self.idempotency, self.database, caller, request)

    async def ListAuditEntries(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        node, start, end, size, before, fingerprint = checks.audit_list(v, request, caller)
        v.raise_if_any()
        return await audit.list_entries(self.database, caller, request, node, start, end, size, before, fingerprint)

    async def IssueApiKey(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN}, request)
        v = Violations()
        check_request_id(v, request.request_id)
        check_org_path(v, request.org_path, "org_path")
        role = enum_name(pb.Role, "ROLE", request.role)
        v.check(role is not None, "role", "ROLE_INVALID", "role is required")
        v.check(len(request.label) <= 64, "label", "TOO_LONG", "label is at most 64 characters")
        v.raise_if_any()
        return await api_keys.issue_key(self.services, self.idempotency, caller, request, Role(role))

    async def RevokeApiKey(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN}, request)
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(bool(request.key_id), "key_id", "KEY_ID_REQUIRED", "key_id is required")
        v.raise_if_any()
        return await api_keys.revoke_key(self.idempotency, caller, request)

    async def ListApiKeys(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(node)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        return await api_keys.list_keys(self.database, caller, node, size, after, fingerprint)

    # People (use_cases/people.py): sign-in needs no credential; the rest a session or a key.
    async def SignIn(self, request, context):
        v = Violations()
        v.check(0 < len(request.login) <= 64, "login", "LOGIN_REQUIRED", "login is required")
        v.check(0 < len(request.password) <= 128, "password", "PASSWORD_REQUIRED", "password is required")
        v.raise_if_any()
        return await people.sign_in(self.database, request.login, request.password)

    async def SignOut(self, request, context):
        caller = await self.auth.caller(context, request=request)
        return await people.sign_out(self.database, caller, self.auth.credential(context))

    async def ChangePassword(self, request, context):
        caller = await self.auth.caller(context, request=request)
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(0 < len(request.current_password) <= 128, "current_password", "PASSWORD_REQUIRED", "required")
        v.raise_if_any()
        return await people.change_password(
            self.database, self.idempotency, caller, self.auth.credential(context), request
        )

    async def GetSelf(self, request, context):
        caller = await self.auth.caller(context, request=request)
        return await people.get_self(self.services, self.database, caller)

    async def CreatePerson(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN}, request)
        v = Violations()
        check_request_id(v, request.request_id)
        person = request.person
        check_person(v, person.login, person.name, person.phone)
        check_org_path(v, person.org_path, "person.org_path")
        role = enum_name(pb.PersonRole, "PERSON_ROLE", person.role)
        v.check(role is not None, "person.role", "ROLE_INVALID", "role is required")
        check_password(v, request.initial_password, person.login, "initial_password")
        v.raise_if_any()
        return await people.create_person(self.services, self.idempotency, caller, request, PersonRole(role))

    async def ListPersons(self, request, context):
        caller = await self.auth.caller(context, BACK_OFFICE_ROLES, request)
        v = Violations()
        node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
        size = pagination.page_size(request.page_size, 50, 500, v)
        fingerprint = pagination.fingerprint(node)
        after = pagination.decode(request.page_token, fingerprint, v)
        v.raise_if_any()
        return await people.list_persons(self.database, caller, node, size, after, fingerprint)

    async def DisablePerson(self, request, context):
        caller = await self.auth.caller(context, {Role.HQ_ADMIN}, request)
        v = Violations()
        check_request_id(v, request.request_id)
        v.check(0 < len(request.person_id) <= 40, "person_id", "PERSON_ID_REQUIRED", "person_id is required")
        v.raise_if_any()
        return await people.disable_person(self.idempotency, caller, request)


def _table(table) -> pb.ReportTable:
    """A report's table (gateway/domain/report_tables.py) as the contract's message."""
    return pb.ReportTable(
        name=table.name,
        title=table.title,
        columns=[pb.ReportColumn(name=n, title=title) for n, title in table.columns],
        rows=[pb.ReportRow(cells=[_cell(c) for c in cells], org_path=path) for cells, path in table.rows],
        note=table.note,
    )


def _cell(cell) -> pb.ReportCell:
    if cell.value is None:
        return pb.ReportCell()
    if cell.kind == "day":
        return pb.ReportCell(day=calendar_day(cell.value))
    return pb.ReportCell(**{cell.kind: cell.value})
