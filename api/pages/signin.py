"""Signing a browser in to a set of web pages with an API key: the review pages (/admin, admin keys) and the
front-desk pages (/desk, service or admin keys) share it.

The browser holds a random session token in an HttpOnly, SameSite=Strict cookie scoped to the pages' path
(services.identity.auth keeps the sessions); every form carries the session's CSRF token, checked on POST, and
the sign-in form itself a double-submit token."""

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Form, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from core.enums import Role
from core.errors import ForbiddenError, UnauthorizedError
from db.models import AdminSession, ApiKey
from db.session import session_scope
from services.identity import auth

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

SignedIn = tuple[AdminSession, ApiKey]


class SignInThrottle:
    """Failed sign-ins per client address: after `limit` of them within `window_s`, the address waits (429 with
    Retry-After) until the oldest leaves the window. Keys are 256 random bits, so guessing is hopeless anyway;
    this keeps a script from hammering the key lookup and the log. One per process (api.lifespan)."""

    MAX_ADDRESSES = 10_000

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.get(address, deque())
        while failures and now - failures[0] >= self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, address: str) -> float:
        """How long this address must wait before its next sign-in attempt (0: it may try now)."""
        now = self._clock()
        with self._lock:
            failures = self._recent(address, now)
            return self.window_s - (now - failures[0]) if len(failures) >= self.limit else 0.0

    def failed(self, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= self.MAX_ADDRESSES:  # forget addresses whose failures have all expired
                self._failures = {a: f for a, f in self._failures.items() if self._recent(a, now)}
            failures = self._recent(address, now)
            failures.append(now)
            self._failures[address] = failures


class LoginRequired(Exception):
    def __init__(self, login_url: str):
        super().__init__(login_url)
        self.login_url = login_url


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def to_login(_: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(exc.login_url, status_code=303)


@dataclass(frozen=True)
class PageSignIn:
    """Sign-in for the pages under `prefix`, open to keys allowed `role` (services.identity.auth.allows)."""

    prefix: str
    role: Role
    cookie: str
    title: str  # the pages' heading, e.g. "FaceGate review"
    key_label: str  # the keys that may sign in, e.g. "admin API key"

    @property
    def login_url(self) -> str:
        return f"{self.prefix}/login"

    @property
    def login_csrf_cookie(self) -> str:
        return f"{self.cookie}_login_csrf"

    def lookup(self, session: Session, cookies: Mapping[str, str]) -> SignedIn | None:
        return auth.page_session_for(session, cookies.get(self.cookie), role=self.role)

    def current(self, request: Request, session: SessionDep) -> SignedIn:
        """The dependency of every page: the signed-in session and key, or a redirect to the sign-in page."""
        signed_in = self.lookup(session, request.cookies)
        if signed_in is None:
            raise LoginRequired(self.login_url)
        return signed_in

    def current_for_script(self, request: Request) -> SignedIn:
        """The dependency of the JSON calls a page's script makes: 401 when signed out, and the session's CSRF
        token in the X-CSRF-Token header, as forms carry it. Looked up in its own short transaction, like an API
        key (api.deps.get_caller), so none is open while the route runs the models."""
        with session_scope() as session:
            signed_in = self.lookup(session, request.cookies)
        if signed_in is None:
            raise self._signed_out()
        auth.check_csrf(signed_in[0], request.headers.get("x-csrf-token", ""))
        return signed_in

    def websocket_key(self, websocket: WebSocket) -> ApiKey:
        """The key signed in to these pages, for a WebSocket one of them opens: the session cookie, from a page of
        this origin (a browser sends Origin with every WebSocket, and no CSRF token can ride along)."""
        if urlsplit(websocket.headers.get("origin", "")).netloc != websocket.headers.get("host"):
            raise ForbiddenError("WebSockets are accepted from this site's pages only.")
        with session_scope() as session:
            signed_in = self.lookup(session, websocket.cookies)
        if signed_in is None:
            raise self._signed_out()
        return signed_in[1]

    def _signed_out(self) -> UnauthorizedError:
        return UnauthorizedError(
            f"Not signed in, or the sign-in expired: sign in at {self.login_url}.",
            code="not_signed_in",
            login_url=self.login_url,
        )

    def cookie_args(self, request: Request) -> dict[str, Any]:
        return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": self.prefix}

    def page(
        self, request: Request, name: str, signed_in: SignedIn | None = None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            name,
            {
                "signin": self,
                "key": signed_in[1] if signed_in else None,
                "csrf": signed_in[0].csrf_token if signed_in else None,
                **context,
            },
            status_code=status_code,
        )

    def add_routes(self, router: APIRouter) -> None:
        """GET/POST {prefix}/login and POST {prefix}/logout on the pages' router (whose prefix is `prefix`)."""

        @router.get("/login", response_class=HTMLResponse)
        def login_form(request: Request) -> HTMLResponse:
            token = secrets.token_urlsafe(32)
            response = self.page(request, "login.html", login_csrf=token)
            response.set_cookie(self.login_csrf_cookie, token, max_age=3600, **self.cookie_args(request))
            return response

        @router.post("/login")
        def login(
            request: Request,
            session: SessionDep,
            settings: SettingsDep,
            api_key: Annotated[str, Form()],
            csrf_token: Annotated[str, Form()],
        ) -> Response:
            throttle: SignInThrottle = request.app.state.signin_throttle
            address = request.client.host if request.client else ""
            if wait_s := throttle.wait_s(address):
                refused = self.page(
                    request,
                    "login.html",
                    login_csrf=csrf_token,
                    status_code=429,
                    error="Too many failed sign-ins from this address; try again later.",
                )
                refused.headers["Retry-After"] = str(math.ceil(wait_s))
                return refused
            # Double-submit check: a cross-site form cannot read or set our login cookie.
            sent = request.cookies.get(self.login_csrf_cookie, "")
            if not secrets.compare_digest(sent.encode(), csrf_token.encode()):
                return self.page(
                    request, "login.html", login_csrf=csrf_token, error="The form expired; try again.", status_code=403
                )
            key = auth.authenticate(session, api_key.strip())
            if key is None or not auth.allows(key, self.role):
                throttle.failed(address)
                return self.page(
                    request,
                    "login.html",
                    login_csrf=csrf_token,
                    status_code=401,
                    error=f"That is not an active {self.key_label}.",
                )
            token, _ = auth.start_admin_session(session, key, hours=settings.admin_session_hours)
            response = RedirectResponse(self.prefix, status_code=303)
            response.set_cookie(
                self.cookie, token, max_age=int(settings.admin_session_hours * 3600), **self.cookie_args(request)
            )
            response.delete_cookie(self.login_csrf_cookie, path=self.prefix)
            return response

        @router.post("/logout")
        def logout(request: Request, session: SessionDep, csrf_token: Annotated[str, Form()]) -> Response:
            signed_in = self.current(request, session)
            auth.check_csrf(signed_in[0], csrf_token)
            auth.end_admin_session(session, signed_in[0])
            response = RedirectResponse(self.login_url, status_code=303)
            response.delete_cookie(self.cookie, path=self.prefix)
            return response
