"""Who may look at the bench and who may act on it.

- Listening on loopback needs no token, but the Host header must name loopback too: a web page
  elsewhere cannot reach a loopback server through a DNS name it controls (DNS rebinding).
- Listening anywhere else needs a token: ``$RIG_SERVE_TOKEN``, else one generated once and kept
  owner-only (0600) in ``$XDG_CONFIG_HOME/rig/serve-token``. Every page, API call, event stream
  and /metrics checks it: ``Authorization: Bearer``, or the HttpOnly SameSite=Strict cookie set by
  opening any page once with ``?token=``.
- A state-changing request (anything but GET/HEAD/OPTIONS) must carry ``X-Rig-Request: 1``, which
  no cross-site form can send and no cross-site script can add without a CORS preflight this
  server never grants, and must not come from another origin (Origin, Sec-Fetch-Site).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "RIG_SERVE_TOKEN"
COOKIE = "rig_token"
ACTION_HEADER = "x-rig-request"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ACCESS_TOKEN = "token"          # the request showed the token
ACCESS_LOCAL = "local"          # loopback, no token needed
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class TokenFileError(RuntimeError):
    """The token file exists but others may read it, or it cannot be written."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name, without port) is this machine only."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_token_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".config"
    return base / "rig" / "serve-token"


def load_token(path: Path | None = None) -> str:
    """The token: ``$RIG_SERVE_TOKEN``, else the token file, created owner-only when missing.
    A token file that group or others may read is refused, not silently used."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = path or default_token_path()
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise TokenFileError(f"{path} is readable by others (mode {mode:o}); "
                                 f"chmod 600 {path}")
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TokenFileError(f"cannot create {path}: {exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return token


@dataclass(frozen=True)
class Policy:
    """What the middleware enforces: a token (None: none needed) and loopback Host checking."""

    token: str | None
    loopback: bool


class Guard:
    """ASGI middleware that enforces a Policy on every HTTP request before the app sees it."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        # How this request got in, for the records of who did what (``request.state``): with
        # the token (its holder), or from this machine with none needed.
        scope.setdefault("state", {})["rig_access"] = ACCESS_TOKEN if self.policy.token \
            else ACCESS_LOCAL
        await self.app(scope, receive, send)

    def check(self, scope: Scope) -> Response | None:
        """The refusal for this request, or None to let it through."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = urlsplit("//" + headers.get("host", "")).hostname or ""
        if self.policy.loopback and not is_loopback(host):
            return _refuse(scope, 421, f"this server answers to loopback names only, not {host!r}")
        if self.policy.token is not None:
            given = _presented_token(scope, headers)
            if given is None or not hmac.compare_digest(given, self.policy.token):
                return _refuse(scope, 401, "a valid token is needed (Authorization: Bearer, "
                                           "or open a page once with ?token=)")
            if _query_token(scope) is not None and scope["method"] == "GET":
                return _login_redirect(scope, given)
        if scope["method"] not in SAFE_METHODS:
            return _cross_site(scope, headers)
        return None


def _presented_token(scope: Scope, headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = SimpleCookie()
    cookie.load(headers.get("cookie", ""))
    if COOKIE in cookie:
        return cookie[COOKIE].value
    return _query_token(scope)


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _login_redirect(scope: Scope, token: str) -> Response:
    """``?token=`` once: keep it in a cookie and drop it from the address bar and history."""
    query = {k: v for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()
             if k != "token"}
    target = scope["path"] + ("?" + urlencode(query, doseq=True) if query else "")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=scope.get("scheme") == "https")
    return response


def _cross_site(scope: Scope, headers: dict[str, str]) -> Response | None:
    if headers.get(ACTION_HEADER) != "1":
        return _refuse(scope, 403, f"a state-changing request needs the header "
                                   f"{ACTION_HEADER.title()}: 1")
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _refuse(scope, 403, "cross-site request refused")
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != headers.get("host", ""):
        return _refuse(scope, 403, f"cross-origin request from {origin} refused")
    return None


def _refuse(scope: Scope, status: int, why: str) -> Response:
    if scope["path"].startswith("/api/"):
        return JSONResponse({"detail": why}, status_code=status)
    return PlainTextResponse(why + "\n", status_code=status)
