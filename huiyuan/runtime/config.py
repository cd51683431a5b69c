"""Configuration from environment variables. Every variable but the secrets has a
default that runs the whole system on one machine with SQLite files under var/; the
secrets `huiyuan up` makes under var/keys (local development).

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
| HUIYUAN_DB_POOL_SIZE              | 10                             |
| HUIYUAN_ENV                       | production (`development` only as `huiyuan up` sets it) |
| HUIYUAN_QR_SECRET                 | none: the member service needs it (development: var/keys/qr-secret) |
| HUIYUAN_QR_LIFETIME_S             | 300: the longest a member's QR code is good for |
| HUIYUAN_CALLER_KEYS_DIR           | none: every service but the gateway needs it (development: var/keys/callers) |
| HUIYUAN_IDENTITY_KEY_FILE         | none: the gateway needs it (development: var/keys/gateway.key) |

Outside development a process missing a secret it needs does not start, and says which
(MissingSecret): no development secret can reach production by default.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

DEFAULT_PORTS = {"gateway": 7400, "member": 7401, "wallet": 7402, "points": 7403, "campaign": 7404}
DEVELOPMENT = "development"
# The secrets a process may need (ServiceSpec.secrets, huiyuan/runtime/server.py).
IDENTITY_KEY, CALLER_KEYS, QR_SECRET = "HUIYUAN_IDENTITY_KEY_FILE", "HUIYUAN_CALLER_KEYS_DIR", "HUIYUAN_QR_SECRET"
SHORTEST_QR_SECRET = 16


class MissingSecret(Exception):
    """A secret a process cannot run without is not set, or cannot be used."""

    def __init__(self, variable: str, why: str):
        super().__init__(f"{variable} {why}")
        self.variable = variable


class KeyFolder(NamedTuple):
    """Where the keys made for one machine lie (service_auth.make_local_keys): `huiyuan up`'s
    are var/keys, the tests' and the benches' in a folder of their own."""

    root: Path

    @property
    def callers(self) -> Path:  # <caller>.pub, each a public key the services trust
        return self.root / "callers"

    @property
    def qr_secret(self) -> Path:
        return self.root / "qr-secret"

    def private_key(self, caller: str) -> Path:
        return self.root / f"{caller}.key"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def var_dir() -> Path:
    return Path(_env("HUIYUAN_VAR_DIR", "var")).resolve()


def local_keys() -> KeyFolder:
    """The keys `huiyuan up` makes for local development: var/keys."""
    return KeyFolder(var_dir() / "keys")


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
    db_pool_size: int
    development: bool  # HUIYUAN_ENV=development: set by `huiyuan up` only
    qr_secret: str  # "" when not set
    qr_lifetime_s: int
    caller_keys_dir: str  # "" when not set
    identity_key_file: str  # "" when not set

    @classmethod
    def from_env(cls, service: str) -> "Settings":
        var = var_dir()
        development = _env("HUIYUAN_ENV", "") == DEVELOPMENT
        keys = local_keys()
        url = _env(f"HUIYUAN_{service.upper()}_DATABASE_URL", _env("HUIYUAN_DATABASE_URL", ""))
        if not url:
            url = f"sqlite:///{var / (service + '.db')}"
        return cls(
            service=service,
            host=_env("HUIYUAN_HOST", "127.0.0.1"),
            port=service_port(service),
            database_url=url,
            var_dir=var,
            traces_exporter=_env("HUIYUAN_TRACES_EXPORTER", "none").lower(),
            log_level=_env("HUIYUAN_LOG_LEVEL", "INFO").upper(),
            access_log=_env("HUIYUAN_ACCESS_LOG", "0") == "1",
            call_timeout_s=float(_env("HUIYUAN_CALL_TIMEOUT_S", "2.0")),
            shutdown_grace_s=float(_env("HUIYUAN_SHUTDOWN_GRACE_S", "10")),
            db_pool_size=int(_env("HUIYUAN_DB_POOL_SIZE", "10")),
            development=development,
            # In development what `huiyuan up` made under var/keys stands in for what is not set.
            qr_secret=_env(QR_SECRET, _read(keys.qr_secret) if development else ""),
            qr_lifetime_s=int(_env("HUIYUAN_QR_LIFETIME_S", "300")),
            caller_keys_dir=_env(CALLER_KEYS, str(keys.callers) if development else ""),
            identity_key_file=_env(IDENTITY_KEY, str(keys.private_key(service)) if development else ""),
        )

    def required_qr_secret(self) -> str:
        if not self.qr_secret:
            raise MissingSecret(QR_SECRET, "is not set: it signs the members' QR codes")
        if len(self.qr_secret) < SHORTEST_QR_SECRET:
            raise MissingSecret(QR_SECRET, f"is too short: at least {SHORTEST_QR_SECRET} random characters")
        return self.qr_secret


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
