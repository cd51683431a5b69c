"""Who is calling a service: the signed, short-lived token every call between processes
carries (docs/decisions/0001-service-authentication.md).

A caller - the gateway, or "operator" for the CLI and the demo - holds an Ed25519 key
of its own and signs a JWT for each service it calls: iss its name, aud the service,
iat, exp five minutes on, kid its name again (which public key verifies it). It sends
the token in METADATA_KEY and reuses it until half its life has gone, so signing costs
a call nothing. A service trusts the public keys of HUIYUAN_CALLER_KEYS_DIR, one
`<caller>.pub` each; it verifies a token once and remembers its caller until it expires.

A refusal is UNAUTHENTICATED with ErrorInfo SERVICE_CREDENTIAL_REQUIRED (no token),
SERVICE_CREDENTIAL_INVALID (not one this service can trust: malformed, signed by a key
it does not hold, made for another service, or made to live too long) or
SERVICE_CREDENTIAL_EXPIRED. Only some callers may name the Actor a request is made for
(the gateway, which took it from an API key; "operator" in local development): another
caller's request naming one is PERMISSION_DENIED ACTOR_NOT_ALLOWED (the interceptor).
"""

import os
import secrets
import time
from pathlib import Path
from typing import NamedTuple

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from huiyuan.runtime.config import CALLER_KEYS, IDENTITY_KEY, QR_SECRET, KeyFolder, MissingSecret, Settings, local_keys
from huiyuan.runtime.errors import DomainError, PermissionDenied, Unauthenticated

METADATA_KEY = "x-huiyuan-service-token"  # not `authorization`: the gateway's API keys travel in that
ALGORITHM = "EdDSA"
LIFETIME_S = 300
LONGEST_LIFETIME_S = 600  # a token made to live longer is refused: a leaked one is worth minutes
LEEWAY_S = 30  # the clocks of two machines may differ by this much
REMEMBERED = 1024  # verified tokens a service keeps; a caller holds one per service it calls

GATEWAY, OPERATOR = "gateway", "operator"
# The reasons a service refuses a caller's credential with (or its actor).
REFUSALS = frozenset(
    {"SERVICE_CREDENTIAL_REQUIRED", "SERVICE_CREDENTIAL_INVALID", "SERVICE_CREDENTIAL_EXPIRED", "ACTOR_NOT_ALLOWED"}
)


class Identity:
    """A caller's key and name: the token for each service it calls, signed once and
    reused until half its life has gone."""

    def __init__(self, name: str, key: Ed25519PrivateKey, lifetime_s: int = LIFETIME_S):
        self.name = name
        self.key = key
        self.lifetime_s = lifetime_s
        self.tokens: dict[str, tuple[str, float]] = {}  # audience -> (token, when to sign anew)

    @classmethod
    def from_file(cls, name: str, path: str | Path) -> "Identity":
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} holds no Ed25519 private key")
        return cls(name, key)

    def token(self, audience: str) -> str:
        now = time.time()
        held = self.tokens.get(audience)
        if held is not None and now < held[1]:
            return held[0]
        issued = int(now)
        token = jwt.encode(
            {"iss": self.name, "aud": audience, "iat": issued, "exp": issued + self.lifetime_s},
            self.key,
            algorithm=ALGORITHM,
            headers={"kid": self.name},
        )
        self.tokens[audience] = (token, issued + self.lifetime_s / 2)
        return token


class Caller(NamedTuple):
    """Who a verified token says is calling."""

    name: str
    may_set_actor: bool


class Gatekeeper:
    """A service's side: the caller a token proves, or the refusal."""

    def __init__(self, audience: str, keys: dict[str, Ed25519PublicKey], actor_setters: frozenset[str]):
        self.audience = audience
        self.keys = keys
        self.actor_setters = actor_setters
        self.verified: dict[str, tuple[Caller, float]] = {}  # token -> (its caller, when it stops counting)

    def caller(self, token: str | None) -> Caller:
        if not token:
            raise credential_required()
        now = time.time()
        held = self.verified.get(token)
        if held is None:
            held = self._verify(token)
            if len(self.verified) >= REMEMBERED:  # only callers holding a trusted key get here
                self.verified = {t: h for t, h in self.verified.items() if now < h[1]}
                if len(self.verified) >= REMEMBERED:
                    self.verified.clear()
            self.verified[token] = held
        if now >= held[1]:
            self.verified.pop(token, None)
            raise credential_expired()
        return held[0]

    def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            name = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError:
            raise credential_invalid("it is not a service token") from None
        if not isinstance(name, str) or (key := self.keys.get(name)) is None:
            raise credential_invalid("its caller is not one this service trusts")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=name,
                leeway=LEEWAY_S,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise credential_expired() from None
        except jwt.InvalidAudienceError:
            raise credential_invalid(f"it was made for another service than {self.audience}") from None
        except jwt.InvalidSignatureError:
            raise credential_invalid(f"it is not signed by the key of {name}") from None
        except jwt.InvalidTokenError as error:
            raise credential_invalid(f"it is malformed ({type(error).__name__})") from None
        if claims["exp"] - claims["iat"] > LONGEST_LIFETIME_S:
            raise credential_invalid(f"it is made to live longer than {LONGEST_LIFETIME_S} s")
        return Caller(name, name in self.actor_setters), claims["exp"] + LEEWAY_S


def credential_required() -> DomainError:
    return Unauthenticated(
        "SERVICE_CREDENTIAL_REQUIRED",
        f"Calls to this service need a service token ({METADATA_KEY}).",
        "调用本服务需要出示服务凭证。",
    )


def credential_invalid(why: str) -> DomainError:
    return Unauthenticated(
        "SERVICE_CREDENTIAL_INVALID", f"The service token is not valid: {why}.", "服务凭证无效，本服务不予受理。"
    )


def credential_expired() -> DomainError:
    return Unauthenticated("SERVICE_CREDENTIAL_EXPIRED", "The service token has expired.", "服务凭证已过期。")


def actor_not_allowed(caller: str) -> DomainError:
    return PermissionDenied(
        "ACTOR_NOT_ALLOWED",
        f"Caller {caller} may not name the actor of a request: only the gateway does.",
        "该调用方无权代表操作人员发起请求。",
        caller=caller,
    )


def gatekeeper(settings: Settings) -> Gatekeeper:
    """The service's gatekeeper: the callers of HUIYUAN_CALLER_KEYS_DIR; the gateway may
    name a request's actor, and in development the operator too (the demo's data)."""
    directory = settings.caller_keys_dir
    if not directory:
        raise MissingSecret(
            CALLER_KEYS, "is not set: the folder of the public keys (<caller>.pub) of the callers this service answers"
        )
    try:
        keys = trusted_keys(directory)
    except (OSError, ValueError) as error:
        raise MissingSecret(CALLER_KEYS, f"({directory}): a key cannot be read: {error}") from None
    if not keys:
        raise MissingSecret(CALLER_KEYS, f"({directory}) holds no <caller>.pub")
    setters = frozenset({GATEWAY, OPERATOR} if settings.development else {GATEWAY})
    return Gatekeeper(settings.service, keys, setters)


def identity(settings: Settings) -> Identity:
    """The process's own identity, its name the service's (the gateway)."""
    path = settings.identity_key_file
    if not path:
        raise MissingSecret(
            IDENTITY_KEY, "is not set: the private key (PEM, Ed25519) this process signs its calls to the services with"
        )
    try:
        return Identity.from_file(settings.service, path)
    except (OSError, ValueError) as error:
        raise MissingSecret(IDENTITY_KEY, f"({path}) cannot be read: {error}") from None


def trusted_keys(directory: str | Path) -> dict[str, Ed25519PublicKey]:
    """The public keys of a directory, by caller: `<caller>.pub`, PEM."""
    keys = {}
    for path in sorted(Path(directory).glob("*.pub")):
        key = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path} holds no Ed25519 public key")
        keys[path.stem] = key
    return keys


# ---------------------------------------------------------------- keys made here


def write_private(path: Path, data: bytes) -> None:
    """A secret file only its owner reads (0600 from the start, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def make_key_pair(private_path: Path, public_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    write_private(
        private_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def make_local_keys(folder: KeyFolder) -> dict[str, str]:
    """Keys for every process of one machine, made once in folder: the gateway's and the
    operator's key pairs, the services' trust in both, a QR secret. Returns the
    environment that points the processes at them."""
    folder.root.mkdir(parents=True, exist_ok=True)
    os.chmod(folder.root, 0o700)
    for caller in (GATEWAY, OPERATOR):
        if not folder.private_key(caller).exists():
            make_key_pair(folder.private_key(caller), folder.callers / f"{caller}.pub")
    if not folder.qr_secret.exists():
        write_private(folder.qr_secret, secrets.token_urlsafe(32).encode())
    return {
        CALLER_KEYS: str(folder.callers),
        IDENTITY_KEY: str(folder.private_key(GATEWAY)),
        QR_SECRET: folder.qr_secret.read_text().strip(),
    }


def operator_identity() -> Identity:
    """The CLI's and the demo's identity: the key of HUIYUAN_IDENTITY_KEY_FILE, else the
    operator's key `huiyuan up` made under var/keys."""
    path = os.environ.get(IDENTITY_KEY, "").strip() or str(local_keys().private_key(OPERATOR))
    try:
        return Identity.from_file(OPERATOR, path)
    except (OSError, ValueError) as error:
        raise MissingSecret(
            IDENTITY_KEY,
            f"({path}) cannot be read: {error}. `huiyuan up` makes a development "
            f"key there; elsewhere set {IDENTITY_KEY} to the operator's key",
        ) from None
