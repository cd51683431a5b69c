"""The tenders a till takes. The gateway's TenderKind and the wallet's Tender name the
same four (the wallet adds online self-service and a company's batch, which are never
paid at a till); this is where one becomes the other, and what a receipt calls each."""

from huiyuan.gateway.v1 import gateway_pb2 as pb
from huiyuan.runtime import words
from huiyuan.wallet.v1 import wallet_pb2

TILL_TO_WALLET = {pb.TENDER_KIND_CASH: wallet_pb2.TENDER_CASH, pb.TENDER_KIND_BANK_CARD: wallet_pb2.TENDER_BANK_CARD,
                  pb.TENDER_KIND_WECHAT_PAY: wallet_pb2.TENDER_WECHAT_PAY, pb.TENDER_KIND_ALIPAY: wallet_pb2.TENDER_ALIPAY}
WALLET_TO_TILL = {wallet: till for till, wallet in TILL_TO_WALLET.items()}
ON_RECEIPT = {kind: words.chinese(pb.TenderKind.Name(kind)) for kind in TILL_TO_WALLET}  # 现金, 微信支付...
