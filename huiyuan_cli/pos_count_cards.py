"""`huiyuan pos` for count cards (计次卡): the plans on sale at the till, a card sold to
a member, a use punched (核销) and undone, a card refunded, and a card's history. Each
goes through the gateway with the wallet's own CountCardService stub, which the gateway
passes through within the key's scope (gateway/servicers/passthrough.py)."""

from huiyuan.runtime.business_time import CHAIN_ZONE
from huiyuan.runtime.money import yuan
from huiyuan_cli.cli_text import enum_text, left, right, t
from huiyuan_cli.pos_counter import every, payment_credential
from huiyuan_cli.pos_retry import change


def card_line(c) -> str:
    """One card as the till shows it: id, name, uses and value left, until when."""
    from huiyuan.wallet.v1 import count_card_pb2

    until = (
        t("until", day=f"{c.expire_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d}") if c.HasField("expire_time") else ""
    )
    state = (
        ""
        if c.state == count_card_pb2.COUNT_CARD_STATE_ACTIVE
        else f"  {enum_text(count_card_pb2.CountCardState, c.state)}"
    )
    return t(
        "count_card_line",
        card_id=c.card_id,
        name=c.name,
        left=c.uses_left,
        total=c.uses_total,
        value=yuan(c.value_left_fen),
        until=until,
        state=state,
    )


def count_cards(channel, auth, args, lookup) -> None:
    """Dispatches the count card commands (lookup finds the member a sale is for)."""
    from huiyuan.wallet.v1 import count_card_pb2 as cc, count_card_pb2_grpc, wallet_pb2

    cards = count_card_pb2_grpc.CountCardServiceStub(channel)
    if args.action == "count-card-plans":
        plans = list(every(cards.ListCountCardPlans, cc.ListCountCardPlansRequest(page_size=500), "plans", auth))
        for p in plans:
            valid = t("plan_valid_days", days=p.valid_days) if p.valid_days else t("plan_never_expires")
            services = t("plan_services", skus=", ".join(p.skus)) if p.skus else ""
            print(
                t(
                    "plan_line",
                    plan_id=p.plan_id,
                    name=p.name,
                    uses=p.uses,
                    price=yuan(p.price_fen),
                    valid=valid,
                    services=services,
                )
            )
        if not plans:
            print(t("no_plans"))
        return
    if args.action == "sell-count-card":
        if not args.plan:
            raise SystemExit(t("sell_needs"))
        member = lookup().member
        tender = wallet_pb2.Tender.Value("TENDER_" + args.tender.upper().replace("-", "_"))  # wechat-pay
        card = change(
            cards.SellCountCard,
            cc.SellCountCardRequest(
                request_id=args.request_id, member_id=member.member_id, plan_id=args.plan, tender=tender
            ),
            metadata=auth,
            timeout=10,
        ).card
        print(
            t(
                "sold",
                name=member.name,
                card=card.name,
                price=yuan(card.price_fen),
                tender=enum_text(wallet_pb2.Tender, tender),
            )
        )
        print(card_line(card))
        return
    if not args.id:
        raise SystemExit(
            t("needs_use_id" if args.action == "undo-punch" else "needs_count_card_id", action=args.action)
        )
    if args.action == "punch":
        done = change(
            cards.UseCountCard,
            cc.UseCountCardRequest(
                request_id=args.request_id,
                card_id=args.id,
                uses=args.quantity,
                sku=args.sku,
                credential=payment_credential(args),
            ),
            metadata=auth,
            timeout=10,
        )
        print(t("punched", uses=-done.use.uses_delta, use_id=done.use.entry_id))  # what undo-punch names
        print(card_line(done.card))
    elif args.action == "undo-punch":
        done = change(
            cards.UndoCountCardUse,
            cc.UndoCountCardUseRequest(request_id=args.request_id, use_id=args.id, reason=args.reason),
            metadata=auth,
            timeout=10,
        )
        print(t("undone", use_id=args.id, uses=done.undo.uses_delta))
        print(card_line(done.card))
    elif args.action == "refund-count-card":
        done = change(
            cards.RefundCountCard,
            cc.RefundCountCardRequest(request_id=args.request_id, card_id=args.id, reason=args.reason),
            metadata=auth,
            timeout=10,
        )
        reference = f" {done.tender_reference}" if done.tender_reference else ""
        print(
            t("refund_to", amount=yuan(done.refund_fen), tender=enum_text(wallet_pb2.Tender, done.tender) + reference)
        )
        print(card_line(done.card))
    else:
        history(cards, auth, args.id)


def history(cards, auth, card_id: str) -> None:
    """The card, then its entries newest first: who did what, where, and what was left."""
    from huiyuan.wallet.v1 import count_card_pb2 as cc, wallet_pb2

    card = cards.GetCountCard(cc.GetCountCardRequest(card_id=card_id), metadata=auth, timeout=10).card
    print(card_line(card))
    request = cc.ListCountCardEntriesRequest(card_id=card_id, page_size=500)
    for e in every(cards.ListCountCardEntries, request, "entries", auth):
        # a sale's memo is its tender, printed as the commands take it (wechat-pay)
        memo = enum_text(wallet_pb2.Tender, card.tender) if e.kind == cc.COUNT_CARD_ENTRY_KIND_SALE else e.memo
        why = "  ".join(x for x in (e.sku, memo, t("entry_undone") if e.undone_by_entry_id else "") if x)
        print(
            f"  {e.post_time.ToDatetime(tzinfo=CHAIN_ZONE):%Y-%m-%d %H:%M}  "
            f"{left(enum_text(cc.CountCardEntryKind, e.kind), 11)} {e.uses_delta:+d}  {right(yuan(e.value_delta_fen), 10)}  "
            + t("uses_left_after", left=e.uses_left_after)
            + f"  {e.store_path}  {e.operator_id}  {why}".rstrip()
        )
