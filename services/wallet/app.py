"""The wallet service process: its servicers (stored value, count cards, the reports'
rollups), migrations, the sweeper that lapses holds past their deadline and the loop
that folds the rollups' outbox."""

import os
from pathlib import Path

from huiyuan.common.v1 import rollup_pb2, rollup_pb2_grpc
from huiyuan.database import Idempotency
from huiyuan.runtime.rollup_service import RollupServicer, folder
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from huiyuan.runtime.sweeper import sweeper
from huiyuan.wallet.v1 import count_card_pb2, count_card_pb2_grpc, wallet_pb2, wallet_pb2_grpc
from services.wallet.domain.spend_policy import SpendPolicy
from services.wallet.servicers.count_cards import CountCardServicer
from services.wallet.servicers.wallet import WalletServicer
from services.wallet.storage import tables
from services.wallet.storage.rollups import ROLLUPS
from services.wallet.use_cases import holds

metadata = tables.metadata


def spend_policy() -> SpendPolicy:
    """HUIYUAN_WALLET_SPEND_POLICY: PROPORTIONAL (default), PRINCIPAL_FIRST or BONUS_FIRST."""
    name = os.environ.get("HUIYUAN_WALLET_SPEND_POLICY", SpendPolicy.PROPORTIONAL.value).upper()
    try:
        return SpendPolicy(name)
    except ValueError:
        raise SystemExit(f"HUIYUAN_WALLET_SPEND_POLICY must be one of {[p.value for p in SpendPolicy]}") from None


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, tables.idempotency_keys, "wallet")
    wallet_pb2_grpc.add_WalletServiceServicer_to_server(WalletServicer(ctx, idempotency, spend_policy()), server)
    count_card_pb2_grpc.add_CountCardServiceServicer_to_server(CountCardServicer(ctx, idempotency), server)
    rollup_pb2_grpc.add_RollupServiceServicer_to_server(RollupServicer(ctx, ROLLUPS), server)


SPEC = ServiceSpec(
    name="wallet",
    service_names=[
        wallet_pb2.DESCRIPTOR.services_by_name["WalletService"].full_name,
        count_card_pb2.DESCRIPTOR.services_by_name["CountCardService"].full_name,
        rollup_pb2.DESCRIPTOR.services_by_name["RollupService"].full_name,
    ],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    background=[sweeper(holds.lapsed_holds, holds.expire), folder(ROLLUPS)],
)
