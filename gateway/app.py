from pathlib import Path

from huiyuan.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from huiyuan.runtime.placeholder import placeholder_spec

SPEC, metadata = placeholder_spec("gateway", gateway_pb2, gateway_pb2_grpc, "GatewayService", Path(__file__).parent)
