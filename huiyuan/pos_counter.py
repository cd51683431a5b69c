"""`huiyuan pos` beside a sale: a card lost, found or replaced, and its history; the
points mall; a top-up refunded; the stores' settlement. Each goes through the gateway
with the service's own stub: the gateway passes these calls through within the key's
scope (gateway/passthrough.py)."""

from huiyuan.pos_retry import change
from huiyuan.runtime.clock import CHAIN_ZONE
from huiyuan.runtime.convert import enum_word
from huiyuan.runtime.money import yuan


def card(channel, auth, args) -> None:
    """挂失, 解挂, 补卡 or 销卡, through the member service's calls the gateway passes through."""
    from huiyuan.member.v1 import card_pb2, card_pb2_grpc

    if not args.card:
        raise SystemExit(f"{args.action} needs --card")
    cards = card_pb2_grpc.CardServiceStub(channel)
    common = {"request_id": args.request_id, "card_number": args.card, "reason": args.reason}
    if args.action == "replace-card":
        done = change(cards.ReplaceCard, card_pb2.ReplaceCardRequest(new_card_number=args.new_card, **common),
                      metadata=auth, timeout=10)
        print(f"card {args.card} replaced by {done.new_card.card_number}; stored value and points stay with the member")
        return
    request_type, method, after = {
        "report-lost": (card_pb2.ReportCardLostRequest, cards.ReportCardLost, "; it can no longer pay"),
        "cancel-loss": (card_pb2.CancelCardLossRequest, cards.CancelCardLoss, ""),
        "cancel-card": (card_pb2.CancelCardRequest, cards.CancelCard,
                        "; stored value and points stay with the member"),
    }[args.action]
    state = change(method, request_type(**common), metadata=auth, timeout=10).card.state
    print(f"card {args.card} {enum_word(card_pb2.CardState, state)}{after}")


def card_history(channel, auth, args) -> None:
    """A card's state and what happened to it: who, where, when and why (a manager's key)."""
    from huiyuan.member.v1 import card_pb2, card_pb2_grpc

    if not args.card:
        raise SystemExit("card-history needs --card")
    cards = card_pb2_grpc.CardServiceStub(channel)
    card = cards.GetCard(card_pb2.GetCardRequest(card_number=args.card), metadata=auth, timeout=10).card
    print(f"card {card.card_number}  {enum_word(card_pb2.CardState, card.state)}  member {card.member_id}  "
          f"issued at {card.issued_org_path}")
    request = card_pb2.ListCardEventsRequest(card_number=args.card, page_size=500)
    for e in every(cards.ListCardEvents, request, "card_events", auth):
        print(f"  {e.event_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  "
              f"{enum_word(card_pb2.CardAction, e.action):<12} {enum_word(card_pb2.CardState, e.to_state):<10} "
              f"{e.org_path}  {e.operator_id}  {e.reason}".rstrip())


def every(method, request, field: str, auth):
    """Every item of a list read page after page (AIP-158), in the list's order."""
    while True:
        page = method(request, metadata=auth, timeout=10)
        yield from getattr(page, field)
        if not page.next_page_token:
            return
        request.page_token = page.next_page_token


def points_mall(channel, auth, args, lookup) -> None:
    """The gifts on offer here, or one handed over for points (to the member lookup finds)."""
    from huiyuan.points.v1 import points_pb2, points_pb2_grpc

    points = points_pb2_grpc.PointsServiceStub(channel)
    if lookup is None:
        gifts = points.ListGifts(points_pb2.ListGiftsRequest(), metadata=auth, timeout=10).gifts
        for g in gifts:
            limit = f"  at most {g.per_member_limit} a member" if g.per_member_limit else ""
            print(f"gift {g.gift_id}  {g.name}  {g.points} points  {g.stock} in stock{limit}")
        if not gifts:
            print("no gifts on offer here")
        return
    if not args.gift:
        raise SystemExit("redeem-gift needs --gift (pos gifts lists them) and --card or --phone")
    member = lookup().member
    done = change(points.RedeemGift, points_pb2.RedeemGiftRequest(
        request_id=args.request_id, member_id=member.member_id, gift_id=args.gift, quantity=args.quantity,
        credential=payment_credential(args)), metadata=auth, timeout=10)
    print(f"{member.name}: {args.quantity} x gift {args.gift} for {done.points} points; {done.stock_left} left in stock")
    print(f"points left {done.balance.available_points}")


def payment_credential(args):
    """What the member presents to spend their balances: --card, --qr or --pin."""
    from huiyuan.common.v1 import credential_pb2

    proof = ({"card_number": args.card} if args.card else {"qr_token": args.qr} if args.qr else
             {"pin": args.pin} if args.pin else {})
    return credential_pb2.PaymentCredential(**proof)


def pin(channel, auth, args, lookup) -> None:
    """支付密码: set by the member (who shows their card, QR code or PIN), or unlocked or
    cleared by a manager."""
    from huiyuan.member.v1 import payment_pin_pb2, payment_pin_pb2_grpc

    pins = payment_pin_pb2_grpc.PaymentPinServiceStub(channel)
    member = lookup().member
    if args.action == "set-pin":
        if not args.new_pin:
            raise SystemExit("set-pin needs --new-pin, and --card, --qr or --pin to show it is the member")
        change(pins.SetPaymentPin, payment_pin_pb2.SetPaymentPinRequest(
            request_id=args.request_id, member_id=member.member_id, pin=args.new_pin, proof=payment_credential(args)),
            metadata=auth, timeout=10)
        print(f"{member.name}: payment PIN set")
        return
    state = change(pins.ResetPaymentPin, payment_pin_pb2.ResetPaymentPinRequest(
        request_id=args.request_id, member_id=member.member_id, clear=args.clear), metadata=auth, timeout=10).state
    print(f"{member.name}: payment PIN {'set, unlocked' if state.pin_set else 'cleared'}")


def refund_top_up(channel, auth, args) -> None:
    """A top-up's money back to its tender, its bonus taken back; what it was, first."""
    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    t = wallet.GetTopUp(wallet_pb2.GetTopUpRequest(top_up_id=args.id or ""), metadata=auth, timeout=10).top_up
    tender = " ".join(x for x in (enum_word(wallet_pb2.Tender, t.tender),
                                  t.tender_reference) if x)  # "wechat-pay WX-4242"
    print(f"top-up {t.top_up_id}  {t.create_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  {t.store_path}  "
          f"{yuan(t.principal_fen)} ({tender})  bonus {yuan(t.bonus_fen)}")
    done = change(wallet.RefundTopUp, wallet_pb2.RefundTopUpRequest(
        request_id=args.request_id, top_up_id=t.top_up_id, reason=args.reason), metadata=auth, timeout=10)
    print(f"refund {yuan(done.principal_fen)} to {tender}")
    print(f"bonus taken back {yuan(done.bonus_fen)}; stored value left {yuan(done.balance.available_fen)}")


def settlement(channel, auth, args) -> None:
    """Each store's position for stored value loaded in one store and spent in another."""
    from google.type import date_pb2

    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    if not (args.first_day and args.last_day):
        raise SystemExit("settlement needs --from and --to, e.g. --from 2026-11-01 --to 2026-11-30")
    period = {name: date_pb2.Date(year=d.year, month=d.month, day=d.day)
              for name, d in (("start_date", args.first_day), ("end_date", args.last_day))}
    found = wallet_pb2_grpc.WalletServiceStub(channel).GetSettlement(
        wallet_pb2.GetSettlementRequest(org_path=args.org, **period), metadata=auth, timeout=30)
    print(f"{'store':<24}{'owes others':>14}{'owed by others':>16}{'net':>14}")
    for p in found.positions:
        print(f"{p.store_path:<24}{yuan(p.loaded_here_spent_elsewhere_fen):>14}"
              f"{yuan(p.loaded_elsewhere_spent_here_fen):>16}{yuan(p.net_fen):>14}")
    if not found.positions:
        print("no stored value crossed stores in those days")
