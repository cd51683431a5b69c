"""An RPC whose implementation comes later answers UNIMPLEMENTED, and its service is SERVING."""

import tempfile

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from huiyuan.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from tests.conftest import ServiceThread


@pytest.mark.parametrize("module, stub, call, request_message", [
    ("gateway.app", gateway_pb2_grpc.GatewayServiceStub, "GetStoreDailySummary", gateway_pb2.GetStoreDailySummaryRequest(store_path="hq/e/s")),
])
def test_placeholder_serves_health_and_unimplemented(module, stub, call, request_message):
    import importlib

    spec = importlib.import_module(module).SPEC
    service = ServiceThread(spec, f"sqlite:///{tempfile.mkdtemp()}/{spec.name}.db")
    try:
        health = health_pb2_grpc.HealthStub(service.channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            getattr(stub(service.channel), call)(request_message)
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        service.stop()
