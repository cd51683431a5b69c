"""The console served for tests: the real app on an ephemeral port, uvicorn in a thread,
pointed at a gateway; Chromium (Debian's package) driven by Playwright."""

import asyncio
import os
import shutil
import socket
import threading
import time
from pathlib import Path

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
