"""Browser sessions on top of the service's accounts and tokens, and CSRF protection.

The session cookie holds one of the service's opaque tokens (stored as a SHA-256 digest,
the same as ``POST /auth/token``), HttpOnly and SameSite=Lax, Secure over HTTPS.
Forms carry a CSRF token: signed in, an HMAC of the session token (an attacker cannot
read the HttpOnly cookie, so cannot compute it); before sign-in, a double-submit cookie.
A request whose ``Origin`` names another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import Request, Response
from sqlalchemy.orm import Session

from withdrawal.errors import WithdrawalError
from withdrawal.service.config import Settings
from withdrawal.service.models import User, utcnow
from withdrawal.service.security import issue_token, revoke_token, user_for_token

SESSION_COOKIE = "wd_session"
LOGIN_CSRF_COOKIE = "wd_login_csrf"


class CsrfError(WithdrawalError):
    """A form arrived without a valid CSRF token, or from another origin."""


def session_token(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and len(value) <= 200 else None


def web_user(request: Request, session: Session) -> User | None:
    """The signed-in user of this browser, or None."""
    token = session_token(request)
    if token is None:
        return None
    return user_for_token(session, token, utcnow())


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def sign_in(session: Session, response: Response, request: Request, user: User, settings: Settings) -> None:
    """Issue a fresh token (no session fixation) and set it as the session cookie; caller commits."""
    old = session_token(request)
    if old:
        revoke_token(session, old)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    token, _ = issue_token(session, user, ttl, utcnow())
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(ttl.total_seconds()), httponly=True, samesite="lax",
        secure=_secure(request), path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def sign_out(session: Session, response: Response, request: Request) -> None:
    token = session_token(request)
    if token:
        revoke_token(session, token)
    response.delete_cookie(SESSION_COOKIE, path="/")


def csrf_token(request: Request) -> str:
    """The token a form of this page must send back."""
    token = session_token(request)
    if token:
        return hmac.new(token.encode(), b"withdrawal-web-csrf", hashlib.sha256).hexdigest()
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    fresh: str = request.state.__dict__.setdefault("login_csrf", secrets.token_urlsafe(32))
    return fresh


def set_login_csrf_cookie(request: Request, response: Response) -> None:
    """Persist a freshly minted pre-sign-in CSRF token (double-submit cookie)."""
    fresh = request.state.__dict__.get("login_csrf")
    if fresh and not request.cookies.get(LOGIN_CSRF_COOKIE):
        response.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict", secure=_secure(request),
                            path="/", max_age=3600)


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return
    got = urlsplit(origin)
    host = request.headers.get("host", "")
    if got.netloc != host:
        raise CsrfError("cross-origin form")


def check_csrf(request: Request, sent: object) -> None:
    """Raise CsrfError unless the form's token matches this browser's."""
    check_origin(request)
    if not isinstance(sent, str) or not sent:
        raise CsrfError("missing CSRF token")
    token = session_token(request)
    if token:
        want = hmac.new(token.encode(), b"withdrawal-web-csrf", hashlib.sha256).hexdigest()
    else:
        want = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not want or not hmac.compare_digest(want.encode(), sent.encode()):
        raise CsrfError("bad CSRF token")
