"""python -m console: the console on HUIYUAN_CONSOLE_HOST:HUIYUAN_CONSOLE_PORT (127.0.0.1:8080),
calling the gateway at HUIYUAN_GATEWAY_ADDR."""

import os
import signal
import sys

import uvicorn

from console.app import Settings, build


def main() -> None:
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again to the
    # handler it found: this one, so that a stop the orchestrator asked for exits 0 (as
    # the services do) rather than as killed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        build(Settings.from_env()),
        host=os.environ.get("HUIYUAN_CONSOLE_HOST", os.environ.get("HUIYUAN_HOST", "127.0.0.1")),
        port=int(os.environ.get("HUIYUAN_CONSOLE_PORT", "8080")),
        proxy_headers=True,  # behind the ingress: https as the person's browser sees it
        log_level=os.environ.get("HUIYUAN_CONSOLE_LOG_LEVEL", "warning"),
    )


if __name__ == "__main__":
    main()
