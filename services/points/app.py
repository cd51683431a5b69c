from pathlib import Path

from huiyuan.points.v1 import points_pb2, points_pb2_grpc
from huiyuan.runtime.placeholder import placeholder_spec

SPEC, metadata = placeholder_spec("points", points_pb2, points_pb2_grpc, "PointsService", Path(__file__).parent)
