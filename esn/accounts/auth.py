"""Who is asking: cookie sessions, bearer tokens, CSRF policy, and the daily visit event.

A request that carries ``Authorization: Bearer`` is authenticated by that token alone (any
cookie is ignored), and such requests are exempt from CSRF because a browser never adds the
header on its own. Every other unsafe request made with a signed-in session must carry the
CSRF token, as must the sign-in itself (login CSRF).

Each sign-in gets a random identifier in its session (``SIGN_IN_KEY``), so that what it opened
(sockets) can be told apart from what the person's other sign-ins opened: the session
identifier ``"<user id>:<auth epoch>"`` is the same for all of them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from flask import Flask, current_app, g, request
from flask import session as cookie_session
from flask_login import current_user
from itsdangerous import BadSignature
from sqlalchemy import CursorResult, or_, select
from sqlalchemy.orm import Session, lazyload

from esn.accounts.actions import do_record_visit
from esn.accounts.models import ApiToken, User
from esn.accounts.tokens import TOKEN_PREFIX, token_digest
from esn.api.problems import Problem
from esn.clock import now
from esn.database import write_intent
from esn.extensions import csrf, db, login_manager

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN_KEY = "esn_sign_in"  # the sign-in's random identifier, in the (signed) session cookie
# Endpoints that need CSRF protection even without a signed-in session.
CSRF_ANONYMOUS_ENDPOINTS = {"accounts.sign_in"}


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip()


@dataclass(frozen=True)
class Credential:
    """What authenticated a request or opened a socket.

    ``session``: a cookie sign-in; ``id`` is its sign-in identifier (None for a session signed
    in before sign-ins had one) and ``epoch`` the auth epoch it carries. ``token``: an API
    token; ``id`` is the token's row id, never its secret. ``expires_at``: when it stops being
    accepted, if known (a token's expiry; for a socket, its session cookie's).
    """

    kind: Literal["session", "token"]
    id: str | int | None
    epoch: int | None = None
    expires_at: datetime | None = None


def token_credential(token: ApiToken) -> Credential:
    return Credential("token", token.id, expires_at=token.expires_at)


def start_sign_in() -> None:
    """Give the session just signed in its own identifier (call after ``login_user``)."""
    cookie_session[SIGN_IN_KEY] = secrets.token_urlsafe(16)


def current_credential() -> Credential | None:
    """The credential that authenticated this request, or None if nobody is signed in."""
    if signed_in_user() is None:
        return None
    found: Credential | None = g.get("credential")
    return found


def session_cookie_expires_at() -> datetime | None:
    """When this request's session cookie stops being accepted: Flask refuses a cookie signed
    longer ago than the session lifetime (counted in whole seconds: refused once the age in
    whole seconds exceeds it). None if there is no readable cookie."""
    app = current_app
    value = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
    make_serializer = getattr(app.session_interface, "get_signing_serializer", None)
    serializer = make_serializer(app) if value and make_serializer is not None else None
    if serializer is None:
        return None
    try:
        _, signed_at = serializer.loads(value, return_timestamp=True)
    except BadSignature:
        return None
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    expires: datetime = signed_at + timedelta(seconds=lifetime + 1)
    return expires


# Who is asking needs the person's row only: their department, roles and skills are loaded
# when something reads them (most requests never do), instead of three queries on every request.
_PERSON_ONLY = [lazyload("*")]


@login_manager.user_loader
def _load_from_session(session_id: str) -> User | None:
    if _bearer() is not None:
        return None  # a bearer request is authenticated by its token only
    user_id, _, epoch = session_id.partition(":")
    if not user_id.isdigit() or not epoch.isdigit():
        return None
    user = db.session.get(User, int(user_id), options=_PERSON_ONLY)
    if user is None or not user.is_active or user.auth_epoch != int(epoch):
        return None
    g.auth_method = "session"
    sign_in = cookie_session.get(SIGN_IN_KEY)
    g.credential = Credential(
        "session", sign_in if isinstance(sign_in, str) else None, epoch=int(epoch)
    )
    return user


@login_manager.request_loader
def _load_from_bearer(_request: object) -> User | None:
    token = _bearer()
    if token is None:
        return None
    g.auth_error = "The API token is invalid, expired or revoked."
    found = token_holder(token)
    if found is None:
        return None
    api_token, user = found
    if not user.is_active:
        g.auth_error = "This account is deactivated."
        return None
    g.auth_method = "token"
    g.api_token_id = api_token.id
    g.credential = token_credential(api_token)
    return user


def token_holder(token: str) -> tuple[ApiToken, User] | None:
    """The live token and its holder (active or not), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    row = db.session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == token_digest(token),
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now()),
        )
        .options(*_PERSON_ONLY)
    ).first()
    return (row[0], row[1]) if row is not None else None


def signed_in_user() -> User | None:
    if current_user.is_authenticated:
        return cast(User, current_user._get_current_object())
    return None


def require_user() -> User:
    """The signed-in, active person, or a 401 problem."""
    user = signed_in_user()
    if user is None:
        detail = getattr(g, "auth_error", None) or "Sign in, or send a personal API token."
        raise Problem(
            401,
            "Unauthorized",
            detail,
            kind="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="esn"'},
        )
    return user


def _csrf_policy() -> None:
    if request.method in SAFE_METHODS or _bearer() is not None:
        return
    if request.endpoint in CSRF_ANONYMOUS_ENDPOINTS or current_user.is_authenticated:
        csrf.protect()


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _record_visit() -> None:
    """Record ``account:session:visit`` on a person's first authenticated request of the day.

    A request that writes anyway records it in its own transaction; a read-only request uses a
    separate short transaction, so reads never hold SQLite's write lock.
    """
    user = signed_in_user()
    if user is None or user.is_bot or user.last_visit_on == now().date():
        return
    if request.method not in SAFE_METHODS:
        do_record_visit(user)
        return
    with write_intent(), Session(db.engine) as session, session.begin():
        do_record_visit(user, session)


def init_auth(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    # No redirects: the API answers 401 itself (see require_user).
    login_manager.unauthorized_handler(require_user)
    app.before_request(_csrf_policy)
    app.before_request(_record_visit)
