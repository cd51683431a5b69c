"""Configuration from environment variables. Every variable has a default that runs
the whole system on one machine with SQLite files under var/.

| variable                          | default                        |
|-----------------------------------|--------------------------------|
| HUIYUAN_HOST                      | 127.0.0.1                      |
| HUIYUAN_<SERVICE>_PORT            | 7400 gateway, 7401 member, 7402 wallet, 7403 points, 7404 campaign |
| HUIYUAN_<SERVICE>_ADDR            | 127.0.0.1:<its port> (where others call it) |
| HUIYUAN_DATABASE_URL              | unset: SQLite var/<service>.db; a postgresql:// URL gives every service its own schema in that database |
| HUIYUAN_<SERVICE>_DATABASE_URL    | overrides HUIYUAN_DATABASE_URL for one service |
| HUIYUAN_VAR_DIR                   | ./var                          |
| HUIYUAN_TRACES_EXPORTER           | none (or console, otlp; otlp reads OTEL_EXPORTER_OTLP_ENDPOINT) |
| HUIYUAN_LOG_LEVEL                 | INFO                           |
| HUIYUAN_ACCESS_LOG                | 0 (1 logs every call)          |
| HUIYUAN_CALL_TIMEOUT_S            | 2.0 (deadline of outgoing calls) |
| HUIYUAN_SHUTDOWN_GRACE_S          | 10 (in-flight calls may finish) |
| HUIYUAN_QR_SECRET                 | a development secret (set it in production) |
| HUIYUAN_DB_POOL_SIZE              | 10                             |
"""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORTS = {"gateway": 7400, "member": 7401, "wallet": 7402, "points": 7403, "campaign": 7404}
DEV_QR_SECRET = "huiyuan-development-qr-secret"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def service_port(service: str) -> int:
    return int(_env(f"HUIYUAN_{service.upper()}_PORT", str(DEFAULT_PORTS[service])))


def service_address(service: str) -> str:
    host = _env("HUIYUAN_HOST", "127.0.0.1")
    return _env(f"HUIYUAN_{service.upper()}_ADDR", f"{host}:{service_port(service)}")


@dataclass(frozen=True)
class Settings:
    service: str
    host: str
    port: int
    database_url: str
    var_dir: Path
    traces_exporter: str
    log_level: str
    access_log: bool
    call_timeout_s: float
    shutdown_grace_s: float
    qr_secret: str
    db_pool_size: int

    @classmethod
    def from_env(cls, service: str) -> "Settings":
        var_dir = Path(_env("HUIYUAN_VAR_DIR", "var")).resolve()
        url = _env(f"HUIYUAN_{service.upper()}_DATABASE_URL", _env("HUIYUAN_DATABASE_URL", ""))
        if not url:
            url = f"sqlite:///{var_dir / (service + '.db')}"
        return cls(
            service=service,
            host=_env("HUIYUAN_HOST", "127.0.0.1"),
            port=service_port(service),
            database_url=url,
            var_dir=var_dir,
            traces_exporter=_env("HUIYUAN_TRACES_EXPORTER", "none").lower(),
            log_level=_env("HUIYUAN_LOG_LEVEL", "INFO").upper(),
            access_log=_env("HUIYUAN_ACCESS_LOG", "0") == "1",
            call_timeout_s=float(_env("HUIYUAN_CALL_TIMEOUT_S", "2.0")),
            shutdown_grace_s=float(_env("HUIYUAN_SHUTDOWN_GRACE_S", "10")),
            qr_secret=_env("HUIYUAN_QR_SECRET", DEV_QR_SECRET),
            db_pool_size=int(_env("HUIYUAN_DB_POOL_SIZE", "10")),
        )
