"""`huiyuan pos ...`: what a cashier's terminal and the back offices do, through the
gateway. `huiyuan pos -h` lists the commands (cli_text's pos_description).

The terminal's key comes from --key, HUIYUAN_POS_KEY, or var/demo-terminal.key (which
`huiyuan up` writes for the demo store's first till); `orders`, `settle`, `export`,
`refund-top-up`, `settlement`, `cancel-card`, `card-history`, `export-members`, `care`,
`contact`, `contacts`, `batch-top-up`, `day`, `undo-punch`, `refund-count-card` and
`count-card-history` need a store manager's key or above, `import-members` a regional
manager's or HQ's (`huiyuan key issue`).
Amounts are yuan, as printed; days are YYYY-MM-DD, today or yesterday; an export's or a
settlement's period is --month (this, last, 2026-11) or --from/--to, this month so far
when neither is said.

A command that changes something and hears no answer says so, prints its request id
and exits with 75: run the same command again with `--request-id ID` to finish it or
read its answer, never without it (pos_retry.py). With the gateway down or frozen, a
lookup, top-up, checkout or refund ends within about 3 s: a lookup with "no answer"
and exit 1 (nothing to finish), a change (and the lookup it starts with) with 75.
"""

import argparse
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import grpc

from huiyuan.runtime.business_time import CHAIN_ZONE, day_start
from huiyuan.runtime.config import Settings, service_address
from huiyuan.runtime.convert import enum_word
from huiyuan.runtime.money import yuan
from huiyuan_cli import cli_args, pos_count_cards, pos_counter, pos_office
from huiyuan_cli.cli_text import enum_text, t
from huiyuan_cli.pos_retry import (
    ANSWER_WITHIN_S,
    CHANNEL_OPTIONS,
    OUTCOME_UNKNOWN,
    OutcomeUnknown,
    before_change,
    change,
)

# The commands that call a service's own methods through the gateway (passed through
# within the key's scope): each takes the gateway's channel, the key and the arguments.
ON_SERVICE_STUBS = {
    **dict.fromkeys(("report-lost", "cancel-loss", "replace-card", "cancel-card"), pos_counter.card),
    "card-history": pos_counter.card_history,
    "refund-top-up": pos_counter.refund_top_up,
    "settlement": pos_counter.settlement,
    "export-members": pos_office.export_members,
    "import-members": pos_office.import_members,
    "care": pos_office.care,
    "contact": pos_office.contact,
    "contacts": pos_office.contacts,
}
# 计次卡: the commands pos_count_cards.count_cards runs (a sale with the member lookup).
COUNT_CARD_COMMANDS = (
    "count-card-plans",
    "sell-count-card",
    "punch",
    "undo-punch",
    "refund-count-card",
    "count-card-history",
)
TENDERS = {"cash": "CASH", "bank-card": "BANK_CARD", "wechat-pay": "WECHAT_PAY", "alipay": "ALIPAY"}


ACTIONS = [
    "lookup",
    "register",
    "top-up",
    "checkout",
    "receipt",
    "refund",
    "orders",
    "settle",
    "export",
    "report-lost",
    "cancel-loss",
    "replace-card",
    "cancel-card",
    "card-history",
    "refund-top-up",
    "settlement",
    "gifts",
    "redeem-gift",
    "export-members",
    "import-members",
    "batch-top-up",
    "day",
    "report",
    "care",
    "contact",
    "contacts",
    "set-pin",
    "reset-pin",
    *COUNT_CARD_COMMANDS,
]


def add_parser(sub) -> None:
    pos = sub.add_parser("pos", help=t("help_pos"), description=t("pos_description"), usage=t("pos_usage"))
    pos.add_argument("action", choices=ACTIONS, metavar=t("metavar_command"))
    pos.add_argument("id", nargs="?", metavar="ID", help=t("help_id"))
    pos.add_argument("--key", help=t("help_pos_key"))
    pos.add_argument("--request-id", default="", help=t("help_request_id"))
    pos.add_argument("--phone", help=t("help_phone"))
    pos.add_argument("--card", help=t("help_card"))
    pos.add_argument("--qr", help=t("help_qr"))
    pos.add_argument("--pin", default="", help=t("help_pin"))
    pos.add_argument("--new-pin", default="", help=t("help_new_pin"))
    pos.add_argument("--clear", action="store_true", help=t("help_clear_pin"))
    pos.add_argument("--name", help=t("help_name"))
    pos.add_argument("--card-type", default="", help=t("help_card_type"))
    pos.add_argument("--new-card", default="", help=t("help_new_card"))
    pos.add_argument("--amount", type=cli_args.amount, help=t("help_amount"))
    pos.add_argument("--tender", default="cash", choices=sorted(TENDERS), help=t("help_tender"))
    pos.add_argument("--line", action="append", default=[], help=t("help_line"))
    pos.add_argument("--coupon", action="append", default=[], help=t("help_coupon"))
    pos.add_argument("--gift", default="", help=t("help_gift"))
    pos.add_argument("--quantity", type=int, default=1, help=t("help_quantity"))
    pos.add_argument("--plan", default="", help=t("help_plan"))
    pos.add_argument("--sku", default="", help=t("help_sku"))
    pos.add_argument("--points", type=int, default=0, help=t("help_points"))
    pos.add_argument("--stored-value", type=cli_args.amount, default=0, help=t("help_stored_value"))
    pos.add_argument("--cash", type=cli_args.amount, default=0, help=t("help_cash"))
    pos.add_argument("--state", default="", help=t("help_state"))
    pos.add_argument("--org", default="", help=t("help_pos_org"))
    pos.add_argument("--tag", default="", help=t("help_tag"))
    pos.add_argument("--file", default="", help=t("help_file"))
    pos.add_argument("--batch", default="", help=t("help_batch"))
    pos.add_argument("--store", default="", help=t("help_store"))
    pos.add_argument("--date", dest="day", type=cli_args.day, help=t("help_date"))
    pos.add_argument("--limit", type=int, default=20, help=t("help_limit"))
    pos.add_argument("--days", type=int, default=7, help=t("help_days"))
    pos.add_argument("--via", default="phone", choices=sorted(pos_office.CARE_CHANNELS), help=t("help_via"))
    pos.add_argument("--topic", default="follow-up", choices=sorted(pos_office.CARE_TOPICS), help=t("help_topic"))
    pos.add_argument("--note", default="", help=t("help_note"))
    pos.add_argument("--birthday-days", type=int, default=0, help=t("help_birthday_days"))
    pos.add_argument("--anniversary-days", type=int, default=0, help=t("help_anniversary_days"))
    pos.add_argument("--dormant-days", type=int, default=None, help=t("help_dormant_days"))
    pos.add_argument("--reason", default="", help=t("help_reason"))
    pos.add_argument("--from", dest="first_day", type=cli_args.day, help=t("help_from"))
    pos.add_argument("--to", dest="last_day", type=cli_args.day, help=t("help_to"))
    pos.add_argument("--month", type=cli_args.month, help=t("help_month"))
    pos.add_argument("--format", default="xlsx", choices=["xlsx", "csv"], help=t("help_format"))
    pos.add_argument("--out", default="", help=t("help_out"))
    pos.add_argument("--report", default="sales", choices=pos_office.REPORTS, help=t("help_report"))
    pos.add_argument("--period", default="day", choices=pos_office.PERIODS, help=t("help_period"))


def sale_line(line_id: str, text: str):
    """--line SKU:CATEGORY:QTY:PRICE of a checkout."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    parts = text.split(":")
    if len(parts) != 4 or not parts[2].isdigit():
        raise SystemExit(t("line_format", text=text))
    sku, category, quantity, price = parts
    try:
        unit_price = cli_args.price(price)
    except argparse.ArgumentTypeError as error:
        raise SystemExit(t("line_price", text=text, error=error)) from None
    return pb.CheckoutLine(
        line_id=line_id, sku=sku, category=category, quantity=int(quantity), unit_price_fen=unit_price
    )


def returned_line(text: str):
    """--line LINE_ID:QTY of a refund."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    line_id, _, quantity = text.partition(":")
    if not line_id or not quantity.isdigit():
        raise SystemExit(t("return_line_format", text=text))
    return pb.RefundLine(line_id=line_id, quantity=int(quantity))


def demo_key_path() -> Path:
    return Settings.from_env("gateway").var_dir / "demo-terminal.key"


def _key(args) -> str:
    key = args.key or os.environ.get("HUIYUAN_POS_KEY", "")
    if not key and demo_key_path().exists():
        key = demo_key_path().read_text().strip()
    if not key:
        raise SystemExit(t("no_key"))
    return key


def run(args) -> int:
    from huiyuan.gateway.v1 import gateway_pb2_grpc

    if not args.request_id:
        args.request_id = str(uuid.uuid4())  # one per command: every retry of it sends the same
    auth = (("authorization", f"Bearer {_key(args)}"),)
    with grpc.insecure_channel(service_address("gateway"), options=CHANNEL_OPTIONS) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        stub.channel = channel  # the services' own stubs, for the calls the gateway passes through
        try:
            return _act(args, stub, auth)
        except OutcomeUnknown as unknown:
            print(unknown.explain(args.action), file=sys.stderr)
            return OUTCOME_UNKNOWN


def _act(args, stub, auth) -> int:
    from huiyuan.gateway.v1 import gateway_pb2 as pb
    from huiyuan.member.v1 import member_pb2

    def lookup():
        key = (
            {"phone": args.phone} if args.phone else {"card_number": args.card} if args.card else {"qr_token": args.qr}
        )
        return stub.LookupMember(pb.LookupMemberRequest(**key), metadata=auth, timeout=ANSWER_WITHIN_S)

    def lookup_to_change():
        """The lookup a change starts with: no answer ends the command as the change's would."""
        return before_change(args.request_id, lookup)

    if args.action == "lookup":
        if not (args.phone or args.card or args.qr):
            raise SystemExit(t("say_whom_at_till"))
        found = lookup()
        m = found.member
        print(
            f"{m.name}  {m.phone[:3]}****{m.phone[-4:]}  {found.tier.name or '-'}"
            + (f"  {'、'.join(m.tags)}" if m.tags else "")
        )  # tags tell the cashier who this is (企业客户)
        print(t("lookup_balances", stored_value=yuan(found.stored_value_available_fen), points=found.points_available))
        for c in found.usable_coupons:
            until = c.valid_until_time.ToDatetime(tzinfo=CHAIN_ZONE)
            print(t("lookup_coupon", code=c.coupon_code, name=c.name, terms=c.terms, until=f"{until:%Y-%m-%d %H:%M}"))
        if not found.usable_coupons:
            print(t("lookup_no_coupons"))
        for c in found.usable_count_cards:
            print(f"  {pos_count_cards.card_line(c)}")
    elif args.action == "register":
        done = change(
            stub.RegisterMember,
            pb.RegisterMemberRequest(
                request_id=args.request_id,
                member=member_pb2.Member(name=args.name or "", phone=args.phone or ""),
                card_type_id=args.card_type,
            ),
            metadata=auth,
            timeout=10,
        )
        print(
            t("registered", name=done.member.name, member_id=done.member.member_id, card=done.card.card_number or "-")
        )
    elif args.action == "top-up":
        if args.amount is None:
            raise SystemExit(t("top_up_needs_amount"))
        member_id = lookup_to_change().member.member_id
        done = change(
            stub.TopUp,
            pb.TopUpRequest(
                request_id=args.request_id,
                member_id=member_id,
                amount_fen=args.amount,
                tender=pb.TenderKind.Value(f"TENDER_KIND_{TENDERS[args.tender]}"),
            ),
            metadata=auth,
            timeout=ANSWER_WITHIN_S,
        )
        print(t("top_up_id", top_up_id=done.top_up_id))  # what refund-top-up names
        print("\n".join(done.receipt_lines))
    elif args.action == "checkout":
        lines = [sale_line(str(i), text) for i, text in enumerate(args.line, 1)]  # before any call
        member_id = lookup_to_change().member.member_id
        tenders = (
            [pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=args.stored_value)] if args.stored_value else []
        )
        if args.cash:
            tenders.append(pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=args.cash))
        done = change(
            stub.Checkout,
            pb.CheckoutRequest(
                request_id=args.request_id,
                member_id=member_id,
                card_number=args.card or "",
                lines=lines,
                qr_token="" if args.card else args.qr or "",
                payment_pin=args.pin,
                coupon_codes=args.coupon,
                points_to_use=args.points,
                tenders=tenders,
            ),
            metadata=auth,
            timeout=ANSWER_WITHIN_S,
        )
        print_receipt(done.receipt)
    elif args.action == "refund":
        lines = [returned_line(text) for text in args.line]
        done = change(
            stub.Refund,
            pb.RefundRequest(request_id=args.request_id, order_id=args.id or "", lines=lines),
            metadata=auth,
            timeout=ANSWER_WITHIN_S,
        )
        print(t("refund_stored_value", amount=yuan(done.stored_value_fen)))
        for tender in done.tenders:
            print(t("refund_to", amount=yuan(tender.amount_fen), tender=enum_text(pb.TenderKind, tender.kind)))
        print(t("refund_points", returned=done.points_returned, taken=done.points_clawed_back))
        print(t("order_now", state=enum_text(pb.OrderState, done.state)))
    elif args.action == "orders":
        found = stub.ListOrders(
            pb.ListOrdersRequest(org_path=args.org, state=order_state(args.state), page_size=args.limit),
            metadata=auth,
            timeout=10,
        )
        for order in found.orders:
            print_order(order)
        if not found.orders:
            print(t("no_orders"))
    elif args.action == "settle":
        order = change(
            stub.SettleOrder,
            pb.SettleOrderRequest(request_id=args.request_id, order_id=args.id or "", reason=args.reason),
            metadata=auth,
            timeout=30,
        ).order
        print_order(order)
        if order.HasField("receipt"):
            print_receipt(order.receipt)
    elif args.action == "export":
        export(stub, auth, args)
    elif args.action in ON_SERVICE_STUBS:
        ON_SERVICE_STUBS[args.action](stub.channel, auth, args)
    elif args.action == "batch-top-up":
        pos_office.batch_top_up(stub, auth, args)
    elif args.action == "day":
        pos_office.day_summary(stub, auth, args)
    elif args.action == "report":
        pos_office.report(stub, auth, args)
    elif args.action in COUNT_CARD_COMMANDS:
        pos_count_cards.count_cards(stub.channel, auth, args, lookup_to_change)
    elif args.action in ("set-pin", "reset-pin"):
        pos_counter.pin(stub.channel, auth, args, lookup_to_change)
    elif args.action in ("gifts", "redeem-gift"):
        pos_counter.points_mall(stub.channel, auth, args, lookup_to_change if args.action == "redeem-gift" else None)
    else:
        found = stub.GetOrder(pb.GetOrderRequest(order_id=args.id or ""), metadata=auth, timeout=10)
        if found.HasField("receipt"):
            print_receipt(found.receipt)
        if found.refused_steps or not found.HasField("receipt"):
            print_order(pb.Order(order_id=args.id, state=found.state, refused_steps=found.refused_steps))
    return 0


def order_state(word: str) -> int:
    """--state needs-attention as an OrderState (0: every state)."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    try:
        return pb.OrderState.Value("ORDER_STATE_" + word.upper().replace("-", "_")) if word else 0
    except ValueError:
        names = [enum_word(pb.OrderState, number) for number in pb.OrderState.values()[1:]]
        raise SystemExit(t("state_one_of", names=", ".join(names))) from None


def export(stub, auth, args) -> None:
    """The orders of the period's whole days (chain time) into a file; a refused order
    only with --state refused."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    first, last = cli_args.period(args)
    request = pb.ExportOrdersRequest(
        org_path=args.org, state=order_state(args.state), format=pos_office.file_format(args.format == "xlsx")
    )
    request.start_time.FromDatetime(day_start(first))
    request.end_time.FromDatetime(day_start(last + timedelta(days=1)))
    pos_office.save_file(stub.ExportOrders(request, metadata=auth, timeout=300), args.out)


def print_order(o) -> None:
    """One line an order, and a line for each step a service refused."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    when = f"{o.create_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}" if o.HasField("create_time") else ""
    sale = (
        t("order_sale", amount=yuan(o.receipt.list_total_fen - o.receipt.discount_total_fen))
        if o.HasField("receipt")
        else ""
    )
    print(
        "  ".join(
            x
            for x in (
                t("order_word", order_id=o.order_id),
                when,
                enum_text(pb.OrderState, o.state),
                o.store_path,
                sale,
                o.refusal_reason,
            )
            if x
        )
    )
    for step in o.refused_steps:
        settled = (
            t("step_settled", who=step.settled_by, why=step.settle_reason) if step.settled_by else t("step_unsettled")
        )
        print(t("step_refused", step=step.step, reason=step.reason, settled=settled))


def print_receipt(r) -> None:
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    print(t("receipt_order", order_id=r.order_id, store=r.store_path))
    for item in r.items:  # the line id first: a refund names it (--line LINE_ID:QTY)
        returned = t("receipt_returned", quantity=item.returned_quantity) if item.returned_quantity else ""
        print(
            f"  {item.line_id}  {item.sku}  {item.quantity} x {yuan(item.unit_price_fen)}  "
            f"{yuan(-item.discount_fen)}  {yuan(item.payable_fen)}{returned}"
        )
    print(t("receipt_total", total=yuan(r.list_total_fen)))
    for line in r.lines:
        print(f"  {line}")
    print(t("receipt_stored_value", paid=yuan(r.stored_value_paid_fen), left=yuan(r.stored_value_left_fen)))
    for tender in r.tenders:
        if tender.kind != pb.TENDER_KIND_STORED_VALUE:  # printed above
            print(t("receipt_tender", amount=yuan(tender.amount_fen), tender=enum_text(pb.TenderKind, tender.kind)))
    print(t("receipt_points", used=r.points_used, earned=r.points_earned, left=r.points_left))
