"""The tenders a till takes, and how a refund's money goes back to them.

The gateway's TenderKind and the wallet's Tender name the same four (the wallet adds
online self-service and a company's batch, which are never paid at a till); this is
where one becomes the other, and what a receipt calls each."""

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import words
from huiyuan.runtime.money import cumulative_split, split_proportionally
from huiyuan.wallet.v1 import wallet_pb2

TILL_TO_WALLET = {pb.TENDER_KIND_CASH: wallet_pb2.TENDER_CASH, pb.TENDER_KIND_BANK_CARD: wallet_pb2.TENDER_BANK_CARD,
                  pb.TENDER_KIND_WECHAT_PAY: wallet_pb2.TENDER_WECHAT_PAY, pb.TENDER_KIND_ALIPAY: wallet_pb2.TENDER_ALIPAY}
WALLET_TO_TILL = {wallet: till for till, wallet in TILL_TO_WALLET.items()}
ON_RECEIPT = {kind: words.chinese(pb.TenderKind.Name(kind)) for kind in TILL_TO_WALLET}  # 现金, 微信支付...


def _tender_key(tender: pb.Tender) -> tuple[int, str]:
    return tender.kind, tender.reference if tender.kind != pb.TENDER_KIND_STORED_VALUE else ""


def returned_by_tender(plans: list[pb.RefundResponse]) -> dict[tuple[int, str], int]:
    """What earlier refunds of an order gave back, by tender (kind and reference)."""
    returned: dict[tuple[int, str], int] = {}
    for plan in plans:
        for key, fen in [((pb.TENDER_KIND_STORED_VALUE, ""), plan.stored_value_fen),
                         *((_tender_key(t), t.amount_fen) for t in plan.tenders)]:
            returned[key] = returned.get(key, 0) + fen
    return returned


def tenders_back(paid: list[pb.Tender], returned: dict[tuple[int, str], int], money: int) -> tuple[int, list[pb.Tender]]:
    """(stored value, the other tenders) that give back money after earlier refunds
    returned what `returned` says: each tender the share of all the money returned so
    far that it paid, less what it gave back already, so cash comes back as cash, and
    the last refund takes exactly what each tender has left. (Refunds made before this
    rule gave stored value back first: a tender that gave back more than its share then
    gives nothing now, and the others make up the money in proportion.)"""
    keys: list[tuple[int, str]] = []
    weights: dict[tuple[int, str], int] = {}
    for tender in paid:  # tenders of one kind and reference are one to the customer
        key = _tender_key(tender)
        keys += [] if key in weights else [key]
        weights[key] = weights.get(key, 0) + tender.amount_fen
    before = [returned.get(key, 0) for key in keys]
    share_now = cumulative_split(sum(before) + money, [weights[key] for key in keys])
    back = [max(0, now - earlier) for now, earlier in zip(share_now, before)]
    for i, fen in enumerate(split_proportionally(sum(back) - money, back)):  # only after the earlier rule
        back[i] -= fen
    stored = sum(fen for key, fen in zip(keys, back) if key[0] == pb.TENDER_KIND_STORED_VALUE)
    return stored, [pb.Tender(kind=kind, amount_fen=fen, reference=reference)
                    for (kind, reference), fen in zip(keys, back) if kind != pb.TENDER_KIND_STORED_VALUE and fen]
