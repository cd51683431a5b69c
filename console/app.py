"""The console's web app (Starlette, server-rendered Jinja2 pages): wiring only. The
pages are in console/pages/; each asks the gateway (console/client.py) with the
person's session and renders what it answers, or its refusal.

Run it with `python -m console` (console/__main__.py) or `huiyuan up`."""

import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import grpc
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from console import formats
from console.client import Gateway, Refusal
from console.security import SESSION_COOKIE, CsrfRefused, Keys, SecurityHeaders

HERE = Path(__file__).parent


@dataclass
class Settings:
    gateway_address: str
    secret: str = ""  # HUIYUAN_CONSOLE_SECRET
    secure_cookies: bool = False  # HUIYUAN_CONSOLE_SECURE_COOKIES: always Secure (behind a TLS ingress)
    chain_time_zone: str = "Asia/Shanghai"

    @classmethod
    def from_env(cls) -> "Settings":
        from huiyuan.runtime.config import service_address

        return cls(
            gateway_address=service_address("gateway"),
            secret=os.environ.get("HUIYUAN_CONSOLE_SECRET", ""),
            secure_cookies=os.environ.get("HUIYUAN_CONSOLE_SECURE_COOKIES", "") in ("1", "true", "yes"),
            chain_time_zone=os.environ.get("HUIYUAN_CHAIN_TIME_ZONE", "Asia/Shanghai"),
        )


class NeedLogin(Exception):
    pass


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        yuan=formats.yuan,
        rate=formats.rate,
        share=formats.share,
        cell=formats.cell_text,
        role=lambda name: formats.ROLE_WORDS.get(name, name),
        role_of=formats.role_of,
    )
    return env


def build(settings: Settings) -> Starlette:
    from console.pages import (
        auth,
        campaigns,
        count_card_plans,
        coupons,
        dashboard,
        gifts,
        loyalty_rules,
        members,
        orders,
        org,
        packages,
        reports,
        tiers,
    )

    gateway = Gateway(settings.gateway_address)

    @asynccontextmanager
    async def lifespan(app):
        await gateway.open()
        try:
            yield
        finally:
            await gateway.close()

    async def refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refusal)
        if error.code == grpc.StatusCode.UNAUTHENTICATED:
            response = RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        status = {
            grpc.StatusCode.PERMISSION_DENIED: 403,
            grpc.StatusCode.NOT_FOUND: 404,
            grpc.StatusCode.INVALID_ARGUMENT: 400,
        }.get(error.code, 502)
        return page(request, "error.html", {"message": error.message, "reason": error.reason}, status)

    async def need_login(request: Request, error: Exception) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    async def csrf_refused(request: Request, error: Exception) -> Response:
        return page(
            request, "error.html", {"message": "表单已失效或来源不明，请刷新页面后重试。", "reason": "CSRF"}, 403
        )

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/healthz", health),
        *auth.ROUTES,
        *dashboard.ROUTES,
        *reports.ROUTES,
        *members.ROUTES,
        *orders.ROUTES,
        *campaigns.ROUTES,
        *coupons.ROUTES,
        *packages.ROUTES,
        *loyalty_rules.ROUTES,
        *gifts.ROUTES,
        *count_card_plans.ROUTES,
        *tiers.ROUTES,
        *org.ROUTES,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={Refusal: refused, NeedLogin: need_login, CsrfRefused: csrf_refused},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.settings = settings
    app.state.keys = Keys(settings.secret)
    app.state.templates = templates()
    return app


def page(request: Request, name: str, context: dict, status: int = 200) -> HTMLResponse:
    """A template rendered with what every page shows: the person and the CSRF token."""
    env: Environment = request.app.state.templates
    me = getattr(request.state, "me", None)
    csrf = getattr(request.state, "csrf", "")
    html = env.get_template(name).render(request=request, me=me, csrf_token=csrf, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)
