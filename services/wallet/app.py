from pathlib import Path

from huiyuan.wallet.v1 import wallet_pb2, wallet_pb2_grpc
from huiyuan.runtime.placeholder import placeholder_spec

SPEC, metadata = placeholder_spec("wallet", wallet_pb2, wallet_pb2_grpc, "WalletService", Path(__file__).parent)
