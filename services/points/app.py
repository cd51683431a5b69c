"""The points service process: its servicers (points, the reports' rollups),
migrations, the sweeper that lapses offset holds past their deadline and the loop that
folds the rollups' outbox."""

from pathlib import Path

from huiyuan.common.v1 import rollup_pb2, rollup_pb2_grpc
from huiyuan.database import Idempotency
from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime.rollup_service import RollupServicer, folder
from huiyuan.runtime.server import ServiceContext, ServiceSpec
from huiyuan.runtime.sweeper import sweeper
from services.points.servicers.points import PointsServicer
from services.points.storage import tables
from services.points.storage.rollups import ROLLUPS
from services.points.use_cases import spending

metadata = tables.metadata


def register(server, ctx: ServiceContext) -> None:
    idempotency = Idempotency(ctx.database, tables.idempotency_keys, "points")
    points_pb2_grpc.add_PointsServiceServicer_to_server(PointsServicer(ctx, idempotency), server)
    rollup_pb2_grpc.add_RollupServiceServicer_to_server(RollupServicer(ctx, ROLLUPS), server)


SPEC = ServiceSpec(
    name="points",
    service_names=[
        points_pb2.DESCRIPTOR.services_by_name["PointsService"].full_name,
        rollup_pb2.DESCRIPTOR.services_by_name["RollupService"].full_name,
    ],
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    background=[sweeper(spending.lapsed_holds, spending.expire), folder(ROLLUPS)],
)
