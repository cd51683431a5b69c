"""`huiyuan pos` beside a sale: a card lost, found or replaced, and its history; the
points mall; a top-up refunded; the stores' settlement. Each goes through the gateway
with the service's own stub: the gateway passes these calls through within the key's
scope (gateway/servicers/passthrough.py)."""

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.money import yuan
from huiyuan_cli import cli_args
from huiyuan_cli.cli_text import enum_text, headings, left, right, t
from huiyuan_cli.pos_retry import change


def card(channel, auth, args) -> None:
    """挂失, 解挂, 补卡 or 销卡, through the member service's calls the gateway passes through."""
    from huiyuan.member.v1 import card_pb2, card_pb2_grpc

    if not args.card:
        raise SystemExit(t("needs_card", action=args.action))
    cards = card_pb2_grpc.CardServiceStub(channel)
    common = {"request_id": args.request_id, "card_number": args.card, "reason": args.reason}
    if args.action == "replace-card":
        done = change(
            cards.ReplaceCard,
            card_pb2.ReplaceCardRequest(new_card_number=args.new_card, **common),
            metadata=auth,
            timeout=10,
        )
        print(t("card_replaced", card=args.card, new_card=done.new_card.card_number))
        return
    request_type, method, after = {
        "report-lost": (card_pb2.ReportCardLostRequest, cards.ReportCardLost, t("card_cannot_pay")),
        "cancel-loss": (card_pb2.CancelCardLossRequest, cards.CancelCardLoss, ""),
        "cancel-card": (card_pb2.CancelCardRequest, cards.CancelCard, t("balances_stay")),
    }[args.action]
    state = change(method, request_type(**common), metadata=auth, timeout=10).card.state
    print(t("card_now", card=args.card, state=enum_text(card_pb2.CardState, state), after=after))


def card_history(channel, auth, args) -> None:
    """A card's state and what happened to it: who, where, when and why (a manager's key)."""
    from huiyuan.member.v1 import card_pb2, card_pb2_grpc

    if not args.card:
        raise SystemExit(t("needs_card", action=args.action))
    cards = card_pb2_grpc.CardServiceStub(channel)
    card = cards.GetCard(card_pb2.GetCardRequest(card_number=args.card), metadata=auth, timeout=10).card
    print(
        t(
            "card_heading",
            card=card.card_number,
            state=enum_text(card_pb2.CardState, card.state),
            member_id=card.member_id,
            org=card.issued_org_path,
        )
    )
    request = card_pb2.ListCardEventsRequest(card_number=args.card, page_size=500)
    for e in every(cards.ListCardEvents, request, "card_events", auth):
        print(
            f"  {e.event_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  "
            f"{left(enum_text(card_pb2.CardAction, e.action), 12)} {left(enum_text(card_pb2.CardState, e.to_state), 10)} "
            f"{e.org_path}  {e.operator_id}  {e.reason}".rstrip()
        )


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
        gifts = list(every(points.ListGifts, points_pb2.ListGiftsRequest(page_size=500), "gifts", auth))
        for g in gifts:
            limit = t("gift_limit", limit=g.per_member_limit) if g.per_member_limit else ""
            print(t("gift_line", gift_id=g.gift_id, name=g.name, points=g.points, stock=g.stock, limit=limit))
        if not gifts:
            print(t("no_gifts"))
        return
    if not args.gift:
        raise SystemExit(t("redeem_needs"))
    member = lookup().member
    done = change(
        points.RedeemGift,
        points_pb2.RedeemGiftRequest(
            request_id=args.request_id,
            member_id=member.member_id,
            gift_id=args.gift,
            quantity=args.quantity,
            credential=payment_credential(args),
        ),
        metadata=auth,
        timeout=10,
    )
    print(
        t(
            "redeemed",
            name=member.name,
            quantity=args.quantity,
            gift_id=args.gift,
            points=done.points,
            left=done.stock_left,
        )
    )
    print(t("points_left", points=done.balance.available_points))


def payment_credential(args):
    """What the member presents to spend their balances: --card, --qr or --pin."""
    from huiyuan.common.v1 import credential_pb2

    proof = (
        {"card_number": args.card}
        if args.card
        else {"qr_token": args.qr}
        if args.qr
        else {"pin": args.pin}
        if args.pin
        else {}
    )
    return credential_pb2.PaymentCredential(**proof)


def pin(channel, auth, args, lookup) -> None:
    """支付密码: set by the member (who shows their card, QR code or PIN), or unlocked or
    cleared by a manager."""
    from huiyuan.member.v1 import payment_pin_pb2, payment_pin_pb2_grpc

    pins = payment_pin_pb2_grpc.PaymentPinServiceStub(channel)
    member = lookup().member
    if args.action == "set-pin":
        if not args.new_pin:
            raise SystemExit(t("set_pin_needs"))
        change(
            pins.SetPaymentPin,
            payment_pin_pb2.SetPaymentPinRequest(
                request_id=args.request_id, member_id=member.member_id, pin=args.new_pin, proof=payment_credential(args)
            ),
            metadata=auth,
            timeout=10,
        )
        print(t("pin_set", name=member.name))
        return
    state = change(
        pins.ResetPaymentPin,
        payment_pin_pb2.ResetPaymentPinRequest(
            request_id=args.request_id, member_id=member.member_id, clear=args.clear
        ),
        metadata=auth,
        timeout=10,
    ).state
    print(t("pin_unlocked" if state.pin_set else "pin_cleared", name=member.name))


def refund_top_up(channel, auth, args) -> None:
    """A top-up's money back to its tender, its bonus taken back; what it was, first."""
    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    wallet = wallet_pb2_grpc.WalletServiceStub(channel)
    top_up = wallet.GetTopUp(wallet_pb2.GetTopUpRequest(top_up_id=args.id or ""), metadata=auth, timeout=10).top_up
    tender = " ".join(
        x for x in (enum_text(wallet_pb2.Tender, top_up.tender), top_up.tender_reference) if x
    )  # "wechat-pay WX-4242"
    print(
        t(
            "top_up_heading",
            top_up_id=top_up.top_up_id,
            store=top_up.store_path,
            amount=yuan(top_up.principal_fen),
            time=f"{top_up.create_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}",
            tender=tender,
            bonus=yuan(top_up.bonus_fen),
        )
    )
    done = change(
        wallet.RefundTopUp,
        wallet_pb2.RefundTopUpRequest(request_id=args.request_id, top_up_id=top_up.top_up_id, reason=args.reason),
        metadata=auth,
        timeout=10,
    )
    print(t("refund_to", amount=yuan(done.principal_fen), tender=tender))
    print(t("bonus_taken_back", bonus=yuan(done.bonus_fen), left=yuan(done.balance.available_fen)))


def settlement(channel, auth, args) -> None:
    """Each store's position for stored value loaded in one store and spent in another."""
    from google.type import date_pb2

    from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc

    first, last = cli_args.period(args)
    period = {
        name: date_pb2.Date(year=d.year, month=d.month, day=d.day)
        for name, d in (("start_date", first), ("end_date", last))
    }
    found = wallet_pb2_grpc.WalletServiceStub(channel).GetSettlement(
        wallet_pb2.GetSettlementRequest(org_path=args.org, **period), metadata=auth, timeout=30
    )
    print(t("period_of", first=first, last=last))
    store, owes, owed, net = headings("settlement_header")
    print(f"{left(store, 24)}{right(owes, 14)}{right(owed, 16)}{right(net, 14)}")
    for p in found.positions:
        print(
            f"{p.store_path:<24}{yuan(p.loaded_here_spent_elsewhere_fen):>14}"
            f"{yuan(p.loaded_elsewhere_spent_here_fen):>16}{yuan(p.net_fen):>14}"
        )
    if not found.positions:
        print(t("settlement_none"))
