"""The tenders a till takes, as the gateway's and the wallet's contracts name them, and
what a receipt calls each; a refund's money back to them (the rule: domain/tenders.py).

The gateway's TenderKind and the wallet's Tender name the same four (the wallet adds
online self-service and a company's batch, which are never paid at a till)."""

from gateway.domain.tenders import TenderKey, split_back
from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import words
from huiyuan.wallet.v1 import wallet_pb2

TILL_TO_WALLET = {
    pb.TENDER_KIND_CASH: wallet_pb2.TENDER_CASH,
    pb.TENDER_KIND_BANK_CARD: wallet_pb2.TENDER_BANK_CARD,
    pb.TENDER_KIND_WECHAT_PAY: wallet_pb2.TENDER_WECHAT_PAY,
    pb.TENDER_KIND_ALIPAY: wallet_pb2.TENDER_ALIPAY,
}
WALLET_TO_TILL = {wallet: till for till, wallet in TILL_TO_WALLET.items()}
ON_RECEIPT = {kind: words.chinese(pb.TenderKind.Name(kind)) for kind in TILL_TO_WALLET}  # 现金, 微信支付...
STORED_VALUE: TenderKey = (pb.TENDER_KIND_STORED_VALUE, "")


def _tender_key(tender: pb.Tender) -> TenderKey:
    return tender.kind, tender.reference if tender.kind != pb.TENDER_KIND_STORED_VALUE else ""


def returned_by_tender(plans: list[pb.RefundResponse]) -> dict[TenderKey, int]:
    """What earlier refunds of an order gave back, by tender (kind and reference)."""
    returned: dict[TenderKey, int] = {}
    for plan in plans:
        for key, fen in [
            (STORED_VALUE, plan.stored_value_fen),
            *((_tender_key(t), t.amount_fen) for t in plan.tenders),
        ]:
            returned[key] = returned.get(key, 0) + fen
    return returned


def tenders_back(paid: list[pb.Tender], returned: dict[TenderKey, int], money: int) -> tuple[int, list[pb.Tender]]:
    """(stored value, the other tenders) that give back money after earlier refunds
    returned what `returned` says (domain/tenders.py: split_back)."""
    back = split_back([(_tender_key(t), t.amount_fen) for t in paid], returned, money)
    stored = sum(fen for key, fen in back if key[0] == pb.TENDER_KIND_STORED_VALUE)
    return stored, [
        pb.Tender(kind=kind, amount_fen=fen, reference=reference)
        for (kind, reference), fen in back
        if kind != pb.TENDER_KIND_STORED_VALUE and fen
    ]
