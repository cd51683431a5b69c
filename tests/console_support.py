"""The console served for tests: the real app on an ephemeral port, uvicorn in a thread,
pointed at a gateway; Chromium (Debian's package) driven by Playwright."""

import asyncio
import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

CHROMIUM = os.environ.get("HUIYUAN_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"  # git-ignored


class ConsoleThread:
    def __init__(self, gateway_address: str):
        import uvicorn

        from console.app import Settings, build

        self.app = build(Settings(gateway_address=gateway_address, secret="test-secret"))
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])), daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def chromium_or_skip() -> str:
    """Chromium's path; without it the browser tests fail under CI and are skipped
    elsewhere (scripts/dev test installs it where apt-get may)."""
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found:
        return found
    reason = f"Chromium is not installed ({CHROMIUM}): apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(f"The browser tests need Chromium under CI. {reason}")
    pytest.skip(reason)
    raise AssertionError  # unreachable


class LosingProxy(grpc.GenericRpcHandler):
    """A gRPC proxy in front of the real gateway that passes every unary call through,
    except the next call of a method it is told to lose: that one is passed through and
    its answer replaced by a code (DEADLINE_EXCEEDED - the change made, the answer lost on
    the way), or not passed at all (UNAVAILABLE - nothing sent), as a network or a
    restarting gateway may do to the console."""

    def __init__(self, target: str):
        self.channel = grpc.insecure_channel(target)
        self.losing: dict[str, tuple[grpc.StatusCode, bool]] = {}
        self.passed: list[str] = []
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((self,))
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def lose_next(self, method: str, code: grpc.StatusCode, passed_through: bool) -> None:
        self.losing[method] = (code, passed_through)

    def service(self, handler_call_details):
        method = handler_call_details.method
        return grpc.unary_unary_rpc_method_handler(lambda request, context: self._unary(method, request, context))

    def _unary(self, method: str, request: bytes, context):
        metadata = tuple((k, v) for k, v in context.invocation_metadata() if k == "authorization")
        lost = self.losing.pop(method, None)
        if lost is not None and not lost[1]:
            context.abort(lost[0], "the proxy did not pass the call")
        try:
            answer = self.channel.unary_unary(method)(request, metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            if lost is not None:
                context.abort(lost[0], "the proxy lost the answer")
            context.set_trailing_metadata(error.trailing_metadata())  # type: ignore[attr-defined]
            context.abort(error.code(), error.details())  # type: ignore[attr-defined]
        self.passed.append(method)
        if lost is not None:
            context.abort(lost[0], "the proxy lost the answer")
        return answer

    def stop(self) -> None:
        self.server.stop(0)
        self.channel.close()
