"""登录, 登出, 修改密码."""

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from console.app import page
from console.client import Refusal
from console.pages.common import gateway, posted, request_id, signed_in, token
from console.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE, check_form, set_cookie
from huiyuan.gateway.v1 import gateway_pb2 as pb


def _safe_next(value: str) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _login_page(request: Request, error: str = "", login: str = "", status: int = 200) -> Response:
    pre = secrets.token_urlsafe(24)
    request.state.csrf = pre
    response = page(
        request,
        "login.html",
        {"error": error, "login": login, "next": _safe_next(request.query_params.get("next", "/"))},
        status,
    )
    set_cookie(response, request, LOGIN_CSRF_COOKIE, pre, always_secure=request.app.state.settings.secure_cookies)
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login(request: Request) -> Response:
    form = await request.form()
    check_form(form, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    name, password = str(form.get("login", "")).strip(), str(form.get("password", ""))
    gw = gateway(request)
    try:
        answer = await gw.call(gw.gateway.SignIn, pb.SignInRequest(login=name, password=password))
    except Refusal as refusal:
        return _login_page(request, refusal.message, name, 401 if refusal.reason == "LOGIN_FAILED" else 400)
    response = RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)
    always = request.app.state.settings.secure_cookies
    set_cookie(response, request, SESSION_COOKIE, answer.session_token, always_secure=always)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


async def logout(request: Request) -> Response:
    await posted(request)
    gw = gateway(request)
    try:
        await gw.call(gw.gateway.SignOut, pb.SignOutRequest(), token(request))
    except Refusal:
        pass  # ended already: signed out either way
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def password_form(request: Request) -> Response:
    await signed_in(request)
    return page(request, "password.html", {"fields": {}, "error": "", "done": False})


async def change_password(request: Request) -> Response:
    _, form = await posted(request)
    gw = gateway(request)
    ask = pb.ChangePasswordRequest(
        request_id=request_id(),
        current_password=str(form.get("current_password", "")),
        new_password=str(form.get("new_password", "")),
    )
    if ask.new_password != str(form.get("new_password_again", "")):
        fields = {"new_password_again": "两次输入的新密码不一致。"}
        return page(request, "password.html", {"fields": fields, "error": "", "done": False}, 400)
    try:
        await gw.call(gw.gateway.ChangePassword, ask, token(request))
    except Refusal as refusal:
        return page(request, "password.html", {"fields": refusal.fields, "error": refusal.message, "done": False}, 400)
    return page(request, "password.html", {"fields": {}, "error": "", "done": True})


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/password", password_form, methods=["GET"]),
    Route("/password", change_password, methods=["POST"]),
]
