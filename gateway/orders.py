"""Checkout requests in: checked, recorded as an order, then run as a saga; orders as
the back office reads and lists them; and the recovery loop that finishes every saga a
crash or a timeout left PENDING."""

import asyncio
import functools
import logging
import os
import re
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import and_, or_, select

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import pagination
from huiyuan.runtime.convert import enum_name, timestamp
from huiyuan.database.engines import dialect_name, under
from huiyuan.runtime.clock import utcnow
from huiyuan.database.direct import BUILT_ONCE
from huiyuan.runtime.errors import FailedPrecondition, NotFound, Violations
from huiyuan.database.idempotency import check_request_id, request_digest
from huiyuan.runtime.ids import is_id, new_id
from huiyuan.runtime.requests import check_org_path, store_of
from huiyuan.runtime.secrets import without_secrets
from huiyuan.database.upsert import insert_for
from gateway import auth
from gateway.auth import Caller
from gateway.checkout import NEEDS_ATTENTION, PENDING, Finished, Saga, not_finished, refused_step, settled_step
from gateway.leases import LEASE_S, lease_until, new_run_id
from gateway.storage import orders, refunds, saga_log

MAX_LINES = 200
MAX_TENDERS = 10
PIN = re.compile(r"^\d{6}$")  # its form only: its rules are the member service's (services/member/pins.py)
# A saga untouched this long is taken over by the recovery loop (HUIYUAN_SAGA_RECOVER_AFTER_S).
RECOVER_AFTER = timedelta(seconds=float(os.environ.get("HUIYUAN_SAGA_RECOVER_AFTER_S", "15")))
RECOVERY_INTERVAL_S = min(5.0, RECOVER_AFTER.total_seconds())

log = logging.getLogger("huiyuan.gateway.recovery")


def check(v: Violations, r: pb.CheckoutRequest) -> None:
    check_request_id(v, r.request_id)
    check_order(v, r)
    v.check(len(r.tenders) <= MAX_TENDERS, "tenders", "TENDERS_INVALID", f"an order is paid by {MAX_TENDERS} tenders at most")
    for i, t in enumerate(r.tenders[:MAX_TENDERS]):
        v.check(t.kind in pb.TenderKind.values() and t.kind != 0, f"tenders[{i}].kind", "TENDER_INVALID", "unknown tender")
        v.check(t.amount_fen > 0, f"tenders[{i}].amount_fen", "AMOUNT_INVALID", "a tender pays more than 0 fen")
        v.check(len(t.reference) <= 64, f"tenders[{i}].reference", "TOO_LONG", "a tender's reference is 64 characters at most")
    v.check(sum(t.kind == pb.TENDER_KIND_STORED_VALUE for t in r.tenders) <= 1, "tenders", "TENDERS_INVALID",
            "stored value is one tender at most")
    v.check(not (r.card_number and r.qr_token), "qr_token", "CREDENTIALS_INVALID", "a card or a QR code, not both")
    v.check(not r.payment_pin or PIN.match(r.payment_pin) is not None, "payment_pin", "PIN_INVALID",
            "a PIN is 6 digits")


def check_order(v: Violations, r: pb.CheckoutRequest | pb.PriceOrderRequest) -> None:
    """The order a checkout or a price check names: member, lines, coupons, points."""
    v.check(is_id(r.member_id, "m"), "member_id", "MEMBER_ID_INVALID", "member_id must be a member id such as m_01J...")
    v.check(0 < len(r.lines) <= MAX_LINES, "lines", "LINES_REQUIRED", f"an order has 1 to {MAX_LINES} lines")
    seen = set()
    for i, line in enumerate(r.lines):
        v.check(bool(line.line_id) and line.line_id not in seen, f"lines[{i}].line_id", "LINE_ID_INVALID",
                "every line needs its own line_id")
        seen.add(line.line_id)
        v.check(bool(line.sku), f"lines[{i}].sku", "SKU_REQUIRED", "sku is required")
        v.check(0 < line.quantity <= 100_000, f"lines[{i}].quantity", "QUANTITY_INVALID", "quantity must be 1 or more")
        v.check(0 <= line.unit_price_fen <= 10**9, f"lines[{i}].unit_price_fen", "PRICE_INVALID",
                "unit_price_fen must be 0 or more")
    v.check(len(set(r.coupon_codes)) == len(r.coupon_codes) <= 20, "coupon_codes", "COUPON_CODES_INVALID",
            "at most 20 coupon codes, each once")
    v.check(0 <= r.points_to_use <= 100_000_000, "points_to_use", "POINTS_INVALID", "points_to_use must be 0 or more")


@functools.cache
def _new_order(dialect: str):
    """The order's insert, unless its terminal's request_id has one already; built
    once per backend, and compiled once (database/direct.py: BUILT_ONCE)."""
    return insert_for(dialect)(orders).on_conflict_do_nothing(
        index_elements=["key_id", "request_id"]).returning(orders.c.order_id).execution_options(**{BUILT_ONCE: True})


def saga_of(services, direct, row, run_id: str | None = None, request: pb.CheckoutRequest | None = None) -> Saga:
    """The order's saga; with the terminal's request in hand (its card, QR token or PIN:
    the row keeps no secret), else with the row's."""
    return Saga(services, direct, row.order_id, request or pb.CheckoutRequest.FromString(row.request), row.store_path,
                auth.actor(row.key_id, row.org_path), run_id)


async def checkout(services, direct, caller: Caller, request: pb.CheckoutRequest,
                   wait_s: float = LEASE_S) -> pb.CheckoutResponse:
    """The terminal's request_id (with its credential) names the order: a retry during
    the saga waits for it (up to wait_s) or resumes it, a retry after it gets the same
    answer: the receipt, or the refusal raised."""
    digest = request_digest(request)
    now = utcnow()
    run_id = new_run_id()
    order = {"order_id": new_id("o"), "key_id": caller.key_id, "request_id": request.request_id, "request_hash": digest,
             # kept without the QR token and PIN: a recovery run that must decide again
             # without them is refused PAYMENT_CREDENTIAL_REQUIRED, nothing reserved
             "request": without_secrets(request).SerializeToString(), "member_id": request.member_id,
             "org_path": caller.org_path,
             "store_path": caller.store_path, "state": PENDING, "response": None, "refusal": None,
             "create_time": now, "update_time": now, "run_id": run_id, "lease_until": lease_until(now)}
    async with direct.transaction() as db:
        written = await db.execute(_new_order(dialect_name(db)), order)
        row = None if written.first() else (await db.execute(select(orders).where(
            orders.c.key_id == caller.key_id, orders.c.request_id == request.request_id))).one()
    if row is None:  # a new order, committed before any call, under this run's lease
        return (await saga_of(services, direct, SimpleNamespace(**order), run_id, request).run()).answer()
    if row.request_hash != digest:
        raise FailedPrecondition("REQUEST_ID_REUSED", "This request_id was already used for a different checkout.",
                                 "该请求号已用于另一笔不同的结账。", request_id=request.request_id)
    saga = saga_of(services, direct, row, request=request)
    try:  # another run working on it answers for this one
        finished = await saga.lease.take_or_wait(row, wait_s)
    except TimeoutError:
        raise not_finished(row.order_id, "ANOTHER_RUN_WORKING") from None
    if finished is None:
        return (await saga.run()).answer()
    return await answer_of(direct, finished)


async def answer_of(direct, row) -> pb.CheckoutResponse:
    """A finished order's answer: the receipt or the refusal raised; while an operator
    must settle it, ORDER_NOT_FINISHED with the refused step's reason."""
    if row.state == NEEDS_ATTENTION and row.response is None:  # only an operator can finish it (gateway/settlement.py)
        async with direct.reading() as db:
            refused = (await order_view(db, row)).refused_steps
        raise not_finished(row.order_id, refused[0].reason if refused else NEEDS_ATTENTION)
    return Finished.of_row(row).answer()


def not_in_scope(order_id: str) -> NotFound:
    # An order of another store is "not found" too: scope never tells what exists elsewhere.
    return NotFound("ORDER_NOT_FOUND", "No such order in your scope.", "您的范围内没有此订单。", order_id=order_id)


async def order_in_scope(db, caller: Caller, order_id: str, for_update: bool = False):
    """The order's row, or NOT_FOUND if there is none in the caller's scope."""
    query = select(orders).where(orders.c.order_id == order_id)
    row = (await db.execute(query.with_for_update() if for_update else query)).one_or_none()
    if row is None or not caller.covers(row.store_path):
        raise not_in_scope(order_id)
    return row


async def order_view(db, row) -> pb.Order:
    return (await _views(db, [row]))[0]


def units_returned(refunds_lines) -> dict[str, int]:
    """Units returned by line id, over refunds whose lines each map line id -> units."""
    total: dict[str, int] = {}
    for lines in refunds_lines:
        for line_id, quantity in lines.items():
            total[line_id] = total.get(line_id, 0) + quantity
    return total


async def _views(db, rows) -> list[pb.Order]:
    """Orders as the back office reads them: state, receipt, refusal, and the steps a
    service refused - of the checkout and of its refunds - with how each was settled."""
    if not rows:
        return []
    # Each saga logs under its own id: an order's checkout under the order id, a refund under the refund id.
    owner = {row.order_id: row.order_id for row in rows}
    refunded: dict[str, list[dict[str, int]]] = {row.order_id: [] for row in rows}  # each refund's lines, by order
    for refund_id, order_id, lines in await db.execute(select(refunds.c.refund_id, refunds.c.order_id, refunds.c.lines)
                                                       .where(refunds.c.order_id.in_(list(owner)))):
        owner[refund_id] = order_id
        refunded[order_id].append(lines)
    returned = {order_id: units_returned(lines) for order_id, lines in refunded.items()}
    logged: dict[str, dict[tuple[str, str], bytes]] = {row.order_id: {} for row in rows}
    for saga_id, step, payload in await db.execute(select(saga_log.c.order_id, saga_log.c.step, saga_log.c.payload).where(
            saga_log.c.order_id.in_(list(owner)),
            or_(saga_log.c.step.startswith(refused_step("")), saga_log.c.step.startswith(settled_step(""))))):
        logged[owner[saga_id]][saga_id, step] = payload
    views = []
    for row in rows:
        view = pb.Order(order_id=row.order_id, store_path=row.store_path, member_id=row.member_id,
                        state=pb.OrderState.Value(f"ORDER_STATE_{row.state}"), create_time=timestamp(row.create_time))
        if row.response is not None:
            answer = pb.CheckoutResponse.FromString(row.response)
            view.refusal_reason = answer.refusal_reason
            if answer.HasField("receipt"):
                view.receipt.CopyFrom(answer.receipt)
                for item in view.receipt.items:
                    item.returned_quantity = returned[row.order_id].get(item.line_id, 0)
        steps = logged[row.order_id]
        for saga_id, key in sorted(k for k in steps if k[1].startswith(refused_step(""))):
            settled = steps.get((saga_id, settled_step(key.removeprefix(refused_step("")))))
            view.refused_steps.append(pb.RefusedStep.FromString(settled or steps[saga_id, key]))
        views.append(view)
    return views


async def get_order(direct, caller: Caller, order_id: str) -> pb.Order:
    async with direct.reading() as db:
        return await order_view(db, await order_in_scope(db, caller, order_id))


def of_node(node: str):
    """The orders taken under an org node: a till's or a store's (on the store's
    index), a region's or the chain's."""
    if store_of(node):
        till = [orders.c.org_path == node] if node != store_of(node) else []
        return and_(orders.c.store_path == store_of(node), *till)
    return under(orders.c.org_path, node)


async def list_orders(direct, caller: Caller, request: pb.ListOrdersRequest) -> pb.ListOrdersResponse:
    """Newest first: order ids sort by creation time, so the id is the page position."""
    v = Violations()
    node = check_org_path(v, request.org_path, "org_path", required=False) or caller.org_path
    state = enum_name(pb.OrderState, "ORDER_STATE", request.state)
    v.check(request.state == 0 or state is not None, "state", "STATE_INVALID", "unknown order state")
    size = pagination.page_size(request.page_size, 50, 500, v)
    fingerprint = pagination.fingerprint(node, state)
    before = pagination.decode(request.page_token, fingerprint, v)
    v.raise_if_any()
    if not caller.covers(node):
        raise auth.denied()
    query = select(orders).where(of_node(node))
    if state:
        query = query.where(orders.c.state == state)
    if before:
        query = query.where(orders.c.order_id < before[0])
    async with direct.reading() as db:
        rows = (await db.execute(query.order_by(orders.c.order_id.desc()).limit(size + 1))).all()
        page, token = pagination.next_page(rows, size, lambda row: [row.order_id], fingerprint)
        return pb.ListOrdersResponse(orders=await _views(db, page), next_page_token=token)


async def _attempt(order_id: str, saga) -> None:
    try:
        await saga
    except Exception:  # noqa: BLE001 - a service is still down: the next round tries again
        log.warning("saga not finished yet", extra={"order_id": order_id})


def recovery(services_of):
    """A background loop (ServiceSpec.background): every saga left PENDING for a while
    - its gateway crashed, or a service was down - is run again until it ends; so is
    every refund."""
    from gateway.refunds import resume, unfinished  # here: refunds read orders through this module

    async def loop(ctx) -> None:
        services = services_of(ctx)
        while True:
            try:
                now = utcnow()
                async with ctx.database.reading() as db:  # left this long, no run holds them: the longest left first
                    stuck = (await db.execute(select(orders).where(
                        orders.c.state == PENDING, orders.c.update_time <= now - RECOVER_AFTER,
                        or_(orders.c.lease_until.is_(None), orders.c.lease_until < now)
                    ).order_by(orders.c.update_time).limit(100))).all()
                for row in stuck:
                    await _attempt(row.order_id, saga_of(services, ctx.database, row).resume())
                for order, row in await unfinished(ctx.database, now - RECOVER_AFTER):
                    await _attempt(order.order_id, resume(services, ctx.database, order, row))
            except Exception:  # noqa: BLE001
                log.exception("recovery round failed")
            await asyncio.sleep(RECOVERY_INTERVAL_S)

    return loop
