"""What keeps the console safe as a web app (docs/console.md, Security):

- the session cookie holds the gateway's session token, HttpOnly (no script reads it),
  SameSite=Lax (no other site's form or fetch sends it), Secure when the console is
  served over TLS (HUIYUAN_CONSOLE_SECURE_COOKIES, or the request came over https);
- every form carries a CSRF token checked on POST: for a signed-in person an HMAC of
  their session with the console's secret, before sign-in a random value in a cookie of
  its own, submitted again in the form (double submit);
- every answer carries a Content-Security-Policy with scripts from the console alone
  (no inline script, no eval), no frames, forms posting to the console only;
- pages are Jinja2 templates with autoescape on, and no secret is ever put in one (the
  session token stays in its cookie)."""

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "hy_session"
LOGIN_CSRF_COOKIE = "hy_login_csrf"
CSRF_FIELD = "csrf_token"

# ECharts styles its tooltips with inline style attributes; scripts are the console's own.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class CsrfRefused(Exception):
    pass


class SecurityHeaders:
    """Adds HEADERS to every answer, and no-store to every page (a person's figures
    stay out of shared caches)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


class Keys:
    """The console's secret for CSRF tokens: HUIYUAN_CONSOLE_SECRET (the same for every
    replica), else one made when the process starts (a restart asks forms again)."""

    def __init__(self, secret: str = ""):
        self.secret = (secret or secrets.token_urlsafe(32)).encode()

    def csrf_token(self, session_token: str) -> str:
        return hmac.new(self.secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def is_secure(request: Request, always: bool) -> bool:
    return always or request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, *, always_secure: bool) -> None:
    response.set_cookie(name, value, httponly=True, samesite="lax", secure=is_secure(request, always_secure), path="/")


def check_form(form: FormData, expected: str) -> None:
    """The form's CSRF token is the one expected, else CsrfRefused."""
    sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfRefused
