"""`huiyuan pos ...`: what a cashier's terminal does, through the gateway.

  huiyuan pos lookup --phone P | --card N | --qr T
  huiyuan pos register --name N --phone P [--card-type ID]
  huiyuan pos top-up --card N --amount 100.00 [--tender cash|bank-card|wechat-pay|alipay]
  huiyuan pos checkout --card N --line SKU:CATEGORY:QTY:PRICE ... [--coupon C] [--points P]
                       [--stored-value 90.00] [--cash 10.00]
                       stored value or points are spent on the member's card, QR code (--qr T)
                       or payment PIN (--phone P --pin 246813); a phone alone spends nothing
  huiyuan pos receipt ORDER_ID
  huiyuan pos refund ORDER_ID [--line LINE_ID:QTY ...]   (no --line: the whole order)
  huiyuan pos orders [--state needs-attention|paid|...] [--org PATH] [--limit N]   (a manager's key)
  huiyuan pos settle ORDER_ID --reason R   finish an order a refused step holds up (a manager's key)
  huiyuan pos export --from 2026-11-01 --to 2026-11-30 [--org PATH] [--format xlsx|csv] [--out FILE]
                       the orders of those days (chain time) as a file for Excel (a manager's key)
  huiyuan pos report-lost | cancel-loss --card N --reason R     挂失 / 解挂, at any till
  huiyuan pos replace-card --card N [--new-card M] --reason R   补卡: balances stay with the member
  huiyuan pos cancel-card --card N --reason R      销卡 (a manager's key): balances stay with the member
  huiyuan pos card-history --card N                a card's state and who did what to it, where, why
                       (a manager's key)
  huiyuan pos gifts                                the points mall: the gifts this store offers
  huiyuan pos redeem-gift --card N --gift GIFT_ID [--quantity Q]   a gift handed over for points
  huiyuan pos set-pin --card N --new-pin 246813    支付密码: set by the member, who shows their card
                       (or --qr T, or --pin with the PIN they have)
  huiyuan pos reset-pin --phone P [--clear]        a PIN locked by wrong tries unlocked, or cleared
                       (a manager's key)
  huiyuan pos refund-top-up TOP_UP_ID --reason R   the money back to its tender (a manager's key)
  huiyuan pos settlement --from 2026-11-01 --to 2026-11-30 [--org PATH]   what each store owes
                       or is owed for stored value loaded in one store and spent in another
  huiyuan pos export-members [--org PATH] [--tag T] [--birthday-days N] [--anniversary-days N]
                       [--dormant-days N] [--format xlsx|csv] [--out FILE]
                       the members registered or homed there, for Excel (a manager's key)
  huiyuan pos care [--days 7] [--dormant-days 90] [--org PATH]   会员关怀: the birthdays and
                       anniversaries of the coming days, and who stopped coming (a manager's key)
  huiyuan pos contact --phone P --via phone|sms|wechat|in-store
                      --topic birthday|anniversary|win-back|follow-up [--note TEXT]
                       回访记录: a contact made with a member, kept (a manager's key); a marketing
                       call or message needs the member's consent
  huiyuan pos contacts --phone P   a member's contacts, newest first (a manager's key)
  huiyuan pos import-members --file members.csv|.xlsx   registered at the key's node (a region's key)
  huiyuan pos batch-top-up --file acme.csv|.xlsx --batch ID [--store PATH]   企业批量充值: a company's
                       members (手机 or 会员号) and amounts (金额(分)), loaded at the key's store (a manager's key)
  huiyuan pos day [--date 2026-11-23] [--store PATH]   日结: the store's day, and what each tender
                       (cash, bank card, WeChat Pay, Alipay) took and gave back (a manager's key)
  huiyuan pos count-card-plans                     计次卡: the count cards on sale here
  huiyuan pos sell-count-card --card N --plan PLAN_ID [--tender cash|...]   a count card sold
  huiyuan pos punch COUNT_CARD_ID --card N [--sku S] [--quantity Q]   核销: uses of it punched (lookup
                       lists them), on the member's card (or --qr T, or --pin P)
  huiyuan pos undo-punch USE_ID --reason R         a use punched by mistake given back (a manager's key)
  huiyuan pos refund-count-card COUNT_CARD_ID --reason R   what is not used back to its tender
                       (a manager's key)
  huiyuan pos count-card-history COUNT_CARD_ID     the card and every sale, use, undo and refund of it
                       (a manager's key)

The terminal's key comes from --key, HUIYUAN_POS_KEY, or var/demo-terminal.key (which
`huiyuan up` writes for the demo store's first till); `orders`, `settle`, `export`,
`refund-top-up`, `settlement`, `cancel-card`, `card-history`, `export-members`, `care`,
`contact`, `contacts`, `batch-top-up`, `day`, `undo-punch`, `refund-count-card` and
`count-card-history` need a store manager's key or above, `import-members` a regional
manager's or HQ's (`huiyuan key issue`).
Amounts are yuan, as printed.

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
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import grpc

from huiyuan import pos_count_cards, pos_counter, pos_office
from huiyuan.pos_retry import ANSWER_WITHIN_S, CHANNEL_OPTIONS, OUTCOME_UNKNOWN, OutcomeUnknown, before_change, change
from huiyuan.runtime.clock import CHAIN_ZONE, day_start
from huiyuan.runtime.config import Settings, service_address
from huiyuan.runtime.convert import enum_word
from huiyuan.runtime.money import yuan

# The commands that call a service's own methods through the gateway (passed through
# within the key's scope): each takes the gateway's channel, the key and the arguments.
ON_SERVICE_STUBS = {
    **dict.fromkeys(("report-lost", "cancel-loss", "replace-card", "cancel-card"), pos_counter.card),
    "card-history": pos_counter.card_history, "refund-top-up": pos_counter.refund_top_up,
    "settlement": pos_counter.settlement, "export-members": pos_office.export_members,
    "import-members": pos_office.import_members, "care": pos_office.care, "contact": pos_office.contact,
    "contacts": pos_office.contacts,
}
# 计次卡: the commands pos_count_cards.count_cards runs (a sale with the member lookup).
COUNT_CARD_COMMANDS = ("count-card-plans", "sell-count-card", "punch", "undo-punch", "refund-count-card",
                       "count-card-history")
TENDERS = {"cash": "CASH", "bank-card": "BANK_CARD", "wechat-pay": "WECHAT_PAY", "alipay": "ALIPAY"}


def add_parser(sub) -> None:
    pos = sub.add_parser("pos", help="a cashier's terminal, through the gateway")
    pos.add_argument("action", choices=["lookup", "register", "top-up", "checkout", "receipt", "refund", "orders",
                                        "settle", "export", "report-lost", "cancel-loss", "replace-card",
                                        "cancel-card", "card-history", "refund-top-up", "settlement", "gifts",
                                        "redeem-gift", "export-members", "import-members", "batch-top-up", "day",
                                        "care", "contact", "contacts", "set-pin", "reset-pin",
                                        *COUNT_CARD_COMMANDS])
    pos.add_argument("id", nargs="?", metavar="ID",
                     help="an order id, refund-top-up's top-up id, a count card's id or undo-punch's use id")
    pos.add_argument("--key")
    pos.add_argument("--request-id", default="",
                     help="a command that changes something: the id it printed when its answer was lost")
    pos.add_argument("--phone")
    pos.add_argument("--card")
    pos.add_argument("--qr")
    pos.add_argument("--pin", default="", help="the member's payment PIN, when they show neither card nor QR code")
    pos.add_argument("--new-pin", default="", help="set-pin: the PIN the member chose (6 digits)")
    pos.add_argument("--clear", action="store_true", help="reset-pin: clear the PIN, not only unlock it")
    pos.add_argument("--name")
    pos.add_argument("--card-type", default="")
    pos.add_argument("--new-card", default="", help="replace-card: a pre-printed number (default: one assigned)")
    pos.add_argument("--amount", type=fen, help="top-up: yuan, such as 100 or 99.50")
    pos.add_argument("--tender", default="cash", choices=sorted(TENDERS))
    pos.add_argument("--line", action="append", default=[],
                     help="checkout: SKU:CATEGORY:QTY:UNIT_PRICE_YUAN; refund: LINE_ID:QTY")
    pos.add_argument("--coupon", action="append", default=[])
    pos.add_argument("--gift", default="", help="redeem-gift: the gift's id (pos gifts lists them)")
    pos.add_argument("--quantity", type=int, default=1, help="redeem-gift: how many; punch: how many uses")
    pos.add_argument("--plan", default="", help="sell-count-card: the plan's id (pos count-card-plans lists them)")
    pos.add_argument("--sku", default="", help="punch: the service given, where the card names its services")
    pos.add_argument("--points", type=int, default=0)
    pos.add_argument("--stored-value", type=fen, default=0, help="checkout: yuan paid with stored value")
    pos.add_argument("--cash", type=fen, default=0, help="checkout: yuan paid in cash")
    pos.add_argument("--state", default="", help="orders: only this state, e.g. needs-attention")
    pos.add_argument("--org", default="", help="orders, exports, settlement: under this org node (default: the key's)")
    pos.add_argument("--tag", default="", help="export-members: only the members with this tag")
    pos.add_argument("--file", default="", help="import-members, batch-top-up: a .csv or .xlsx file")
    pos.add_argument("--batch", default="", help="batch-top-up: the company's id for the batch")
    pos.add_argument("--store", default="", help="batch-top-up: the store that took the money; day: whose day "
                                                 "(a region's or HQ's key)")
    pos.add_argument("--date", dest="day", type=date.fromisoformat, help="day: which, YYYY-MM-DD (default: today)")
    pos.add_argument("--limit", type=int, default=20)
    pos.add_argument("--days", type=int, default=7, help="care: the coming days, today included")
    pos.add_argument("--via", default="phone", choices=sorted(pos_office.CARE_CHANNELS), help="contact: how")
    pos.add_argument("--topic", default="follow-up", choices=sorted(pos_office.CARE_TOPICS), help="contact: why")
    pos.add_argument("--note", default="", help="contact: what came of it")
    pos.add_argument("--birthday-days", type=int, default=0,
                     help="export-members: only birthdays of the coming N days, today included")
    pos.add_argument("--anniversary-days", type=int, default=0,
                     help="export-members: only anniversaries of the coming N days")
    pos.add_argument("--dormant-days", type=int, default=None,
                     help="care (default 90), export-members: who has not come for N days")
    pos.add_argument("--reason", default="", help="settle: why the order may finish without its refused steps; "
                                                  "cards and refund-top-up: why")
    pos.add_argument("--from", dest="first_day", type=date.fromisoformat,
                     help="export, settlement: the first day, YYYY-MM-DD")
    pos.add_argument("--to", dest="last_day", type=date.fromisoformat,
                     help="export, settlement: the last day (included)")
    pos.add_argument("--format", default="xlsx", choices=["xlsx", "csv"], help="export: the file's format")
    pos.add_argument("--out", default="", help="export: where to write it (default: the name the gateway suggests)")


def fen(text: str) -> int:
    """An amount typed in yuan (12.50) as fen; argparse's type for the amount options."""
    try:
        amount = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in yuan, such as 12.50") from None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")):
        raise argparse.ArgumentTypeError(f"{text!r}: an amount is yuan with at most two decimals, such as 12.50")
    return int(amount * 100)


def sale_line(line_id: str, text: str):
    """--line SKU:CATEGORY:QTY:PRICE of a checkout."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    parts = text.split(":")
    if len(parts) != 4 or not parts[2].isdigit():
        raise SystemExit(f"--line {text!r}: a checkout's line is SKU:CATEGORY:QTY:PRICE, such as tea-1:tea:2:60")
    sku, category, quantity, price = parts
    try:
        unit_price = fen(price)
    except argparse.ArgumentTypeError as error:
        raise SystemExit(f"--line {text!r}: {error}") from None
    return pb.CheckoutLine(line_id=line_id, sku=sku, category=category, quantity=int(quantity), unit_price_fen=unit_price)


def returned_line(text: str):
    """--line LINE_ID:QTY of a refund."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    line_id, _, quantity = text.partition(":")
    if not line_id or not quantity.isdigit():
        raise SystemExit(f"--line {text!r}: a refund's line is LINE_ID:QTY, such as 1:1 (the receipt's line ids)")
    return pb.RefundLine(line_id=line_id, quantity=int(quantity))


def demo_key_path() -> Path:
    return Settings.from_env("gateway").var_dir / "demo-terminal.key"


def _key(args) -> str:
    key = args.key or os.environ.get("HUIYUAN_POS_KEY", "")
    if not key and demo_key_path().exists():
        key = demo_key_path().read_text().strip()
    if not key:
        raise SystemExit("no terminal key: pass --key, set HUIYUAN_POS_KEY, or run `huiyuan up` for the demo key")
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
        key = {"phone": args.phone} if args.phone else {"card_number": args.card} if args.card else {"qr_token": args.qr}
        return stub.LookupMember(pb.LookupMemberRequest(**key), metadata=auth, timeout=ANSWER_WITHIN_S)

    def lookup_to_change():
        """The lookup a change starts with: no answer ends the command as the change's would."""
        return before_change(args.request_id, lookup)

    if args.action == "lookup":
        found = lookup()
        m = found.member
        print(f"{m.name}  {m.phone[:3]}****{m.phone[-4:]}  {found.tier.name or '-'}"
              + (f"  {'、'.join(m.tags)}" if m.tags else ""))  # tags tell the cashier who this is (企业客户)
        print(f"  stored value {yuan(found.stored_value_available_fen)}   points {found.points_available}")
        for c in found.usable_coupons:
            until = c.valid_until_time.ToDatetime(tzinfo=CHAIN_ZONE)
            print(f"  coupon {c.coupon_code}  {c.name}  {c.terms}  until {until:%Y-%m-%d %H:%M}")
        if not found.usable_coupons:
            print("  no coupons")
        for c in found.usable_count_cards:
            print(f"  {pos_count_cards.card_line(c)}")
    elif args.action == "register":
        done = change(stub.RegisterMember, pb.RegisterMemberRequest(
            request_id=args.request_id, member=member_pb2.Member(name=args.name or "", phone=args.phone or ""),
            card_type_id=args.card_type), metadata=auth, timeout=10)
        print(f"registered {done.member.name}  member {done.member.member_id}  card {done.card.card_number or '-'}")
    elif args.action == "top-up":
        if args.amount is None:
            raise SystemExit("top-up needs --amount, in yuan")
        member_id = lookup_to_change().member.member_id
        done = change(stub.TopUp, pb.TopUpRequest(
            request_id=args.request_id, member_id=member_id, amount_fen=args.amount,
            tender=pb.TenderKind.Value(f"TENDER_KIND_{TENDERS[args.tender]}")), metadata=auth, timeout=ANSWER_WITHIN_S)
        print(f"top-up {done.top_up_id}")  # what refund-top-up names
        print("\n".join(done.receipt_lines))
    elif args.action == "checkout":
        lines = [sale_line(str(i), text) for i, text in enumerate(args.line, 1)]  # before any call
        member_id = lookup_to_change().member.member_id
        tenders = [pb.Tender(kind=pb.TENDER_KIND_STORED_VALUE, amount_fen=args.stored_value)] if args.stored_value else []
        if args.cash:
            tenders.append(pb.Tender(kind=pb.TENDER_KIND_CASH, amount_fen=args.cash))
        done = change(stub.Checkout, pb.CheckoutRequest(
            request_id=args.request_id, member_id=member_id, card_number=args.card or "", lines=lines,
            qr_token="" if args.card else args.qr or "", payment_pin=args.pin,
            coupon_codes=args.coupon, points_to_use=args.points, tenders=tenders), metadata=auth,
            timeout=ANSWER_WITHIN_S)
        print_receipt(done.receipt)
    elif args.action == "refund":
        lines = [returned_line(text) for text in args.line]
        done = change(stub.Refund, pb.RefundRequest(request_id=args.request_id, order_id=args.id or "", lines=lines),
                      metadata=auth, timeout=ANSWER_WITHIN_S)
        print(f"refunded to stored value {yuan(done.stored_value_fen)}")
        for t in done.tenders:
            print(f"refund {yuan(t.amount_fen)} to {enum_word(pb.TenderKind, t.kind)}")
        print(f"points returned {done.points_returned}, taken back {done.points_clawed_back}")
        print(f"order now {enum_word(pb.OrderState, done.state)}")
    elif args.action == "orders":
        try:
            state = pb.OrderState.Value("ORDER_STATE_" + args.state.upper().replace("-", "_")) if args.state else 0
        except ValueError:
            names = [state_name(number) for number in pb.OrderState.values()[1:]]
            raise SystemExit(f"--state is one of {', '.join(names)}") from None
        found = stub.ListOrders(pb.ListOrdersRequest(org_path=args.org, state=state, page_size=args.limit),
                                metadata=auth, timeout=10)
        for order in found.orders:
            print_order(order)
        if not found.orders:
            print("no orders")
    elif args.action == "settle":
        order = change(stub.SettleOrder, pb.SettleOrderRequest(
            request_id=args.request_id, order_id=args.id or "", reason=args.reason), metadata=auth, timeout=30).order
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


def export(stub, auth, args) -> None:
    """The orders of --from to --to (whole days, chain time) into a file."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    if not (args.first_day and args.last_day):
        raise SystemExit("export needs --from and --to, e.g. --from 2026-11-01 --to 2026-11-30")
    request = pb.ExportOrdersRequest(org_path=args.org, format=pos_office.file_format(args.format == "xlsx"))
    request.start_time.FromDatetime(day_start(args.first_day))
    request.end_time.FromDatetime(day_start(args.last_day + timedelta(days=1)))
    pos_office.save_file(stub.ExportOrders(request, metadata=auth, timeout=300), args.out)


def state_name(number: int) -> str:
    """An order state as --state takes it: needs-attention."""
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    return enum_word(pb.OrderState, number)


def print_order(o) -> None:
    """One line an order, and a line for each step a service refused."""
    state = state_name(o.state)
    when = f"{o.create_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}" if o.HasField("create_time") else ""
    sale = f"sale {yuan(o.receipt.list_total_fen - o.receipt.discount_total_fen)}" if o.HasField("receipt") else ""
    print("  ".join(x for x in (f"order {o.order_id}", when, state, o.store_path, sale, o.refusal_reason) if x))
    for step in o.refused_steps:
        settled = f"; settled by {step.settled_by}: {step.settle_reason}" if step.settled_by else "; needs settling"
        print(f"  {step.step} refused: {step.reason}{settled}")


def print_receipt(r) -> None:
    from huiyuan.gateway.v1 import gateway_pb2 as pb

    print(f"order {r.order_id}  {r.store_path}")
    for item in r.items:  # the line id first: a refund names it (--line LINE_ID:QTY)
        returned = f"  (returned {item.returned_quantity})" if item.returned_quantity else ""
        print(f"  {item.line_id}  {item.sku}  {item.quantity} x {yuan(item.unit_price_fen)}  "
              f"{yuan(-item.discount_fen)}  {yuan(item.payable_fen)}{returned}")
    print(f"  total {yuan(r.list_total_fen)}")
    for line in r.lines:
        print(f"  {line}")
    print(f"  stored value paid {yuan(r.stored_value_paid_fen)}, left {yuan(r.stored_value_left_fen)}")
    for t in r.tenders:
        if t.kind != pb.TENDER_KIND_STORED_VALUE:  # printed above
            print(f"  paid {yuan(t.amount_fen)} ({enum_word(pb.TenderKind, t.kind)})")
    print(f"  points used {r.points_used}, earned {r.points_earned}, left {r.points_left}")
