"""python -m console: the console on HUIYUAN_CONSOLE_HOST:HUIYUAN_CONSOLE_PORT (127.0.0.1:8080),
calling the gateway at HUIYUAN_GATEWAY_ADDR."""

import os

import uvicorn

from console.app import Settings, build


def main() -> None:
    uvicorn.run(
        build(Settings.from_env()),
        host=os.environ.get("HUIYUAN_CONSOLE_HOST", os.environ.get("HUIYUAN_HOST", "127.0.0.1")),
        port=int(os.environ.get("HUIYUAN_CONSOLE_PORT", "8080")),
        proxy_headers=True,  # behind the ingress: https as the person's browser sees it
        log_level=os.environ.get("HUIYUAN_CONSOLE_LOG_LEVEL", "warning"),
    )


if __name__ == "__main__":
    main()
