"""HTTP boundary of sign-in, the signed-in person, tokens and administration."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request, session
from flask_login import login_user, logout_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import func, select

from esn import access
from esn.accounts import actions
from esn.accounts.auth import current_credential, require_user, signed_in_user, start_sign_in
from esn.accounts.importer import import_people
from esn.accounts.models import ApiToken, User
from esn.accounts.schemas import (
    AdminUser,
    DepartmentCreate,
    DepartmentUpdate,
    ImportQuery,
    ImportReport,
    PasswordChange,
    SessionState,
    SignedInPerson,
    SignIn,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserCreate,
    UserUpdate,
)
from esn.api.problems import Problem, not_found, reject_nulls
from esn.api.spec import operation
from esn.directory import actions as directory_actions
from esn.directory.queries import access_department
from esn.directory.schemas import DepartmentOut
from esn.extensions import db, limiter
from esn.governance.queries import pending_acknowledgements
from esn.photos.queries import avatar_url

bp = Blueprint("accounts", __name__, url_prefix="/api/v1")


def _signed_in(user: User) -> SignedInPerson:
    person = SignedInPerson.model_validate(user)
    person.pending_acknowledgements = pending_acknowledgements(user)
    person.avatar_url = avatar_url(user.id)
    return person


def _signin_account_key() -> str:
    """Rate-limit key for one account: the e-mail address being tried."""
    data = request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else None
    return f"signin:{str(email).strip().lower()[:254]}" if email else "signin:-"


# --- session --------------------------------------------------------------------------------


@operation(
    bp,
    "/auth/session",
    "GET",
    summary="Who am I, and the CSRF token",
    tags=["auth"],
    auth="public",
    response=SessionState,
)
def get_session() -> SessionState:
    """Call this first from a browser: it sets the session cookie and returns the CSRF token to
    send as ``X-CSRFToken`` with every unsafe request made with that cookie."""
    user = signed_in_user()
    return SessionState(user=_signed_in(user) if user else None, csrf_token=generate_csrf())


@operation(
    bp,
    "/auth/sign-in",
    "POST",
    summary="Sign in with e-mail and password",
    tags=["auth"],
    auth="public",
    body=SignIn,
    response=SessionState,
    responses={401: "Wrong e-mail address or password.", 429: "Too many attempts."},
    decorators=[
        limiter.limit(lambda: current_app.config["SIGNIN_LIMIT_PER_IP"]),
        limiter.limit(
            lambda: current_app.config["SIGNIN_LIMIT_PER_ACCOUNT"],
            key_func=_signin_account_key,
            deduct_when=lambda response: response.status_code == 401,
        ),
    ],
)
def sign_in(body: SignIn) -> SessionState:
    """Needs the CSRF token from ``GET /auth/session``. The session is renewed on success (new
    cookie contents, new CSRF token), so nothing from before the sign-in carries over."""
    user = actions.check_sign_in(body.email, body.password)
    db.session.commit()
    session.clear()
    g.pop("csrf_token", None)  # Flask-WTF caches the request's token here
    login_user(user)
    start_sign_in()
    return SessionState(user=_signed_in(user), csrf_token=generate_csrf())


@operation(bp, "/auth/sign-out", "POST", summary="Sign out", tags=["auth"], status=204)
def sign_out() -> None:
    """Closes the sockets this sign-in opened (not those of the person's other sign-ins or
    tokens). With a bearer token it only records the sign-out: revoke the token instead."""
    user = require_user()
    actions.do_sign_out(user, current_credential())
    db.session.commit()
    logout_user()
    session.clear()


# --- me -------------------------------------------------------------------------------------


@operation(bp, "/me", "GET", summary="The signed-in person", tags=["me"], response=SignedInPerson)
def get_me() -> SignedInPerson:
    """``pending_acknowledgements`` lists the policy and netiquette versions to acknowledge
    (``POST /api/v1/governance/documents/{id}/acknowledge``)."""
    return _signed_in(require_user())


@operation(
    bp,
    "/me/password",
    "PUT",
    summary="Change my password",
    tags=["me"],
    body=PasswordChange,
    status=204,
)
def change_password(body: PasswordChange) -> None:
    """Signs out every other session, closing their sockets; this one stays signed in."""
    user = require_user()
    actions.check_change_password(
        user, body.current_password, body.new_password, current_credential()
    )
    db.session.commit()
    if request.authorization is None:
        login_user(user)  # re-issue this session with the new epoch


@operation(bp, "/me/tokens", "GET", summary="My API tokens", tags=["me"], response=TokenList)
def list_tokens() -> TokenList:
    user = require_user()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    )
    return TokenList(items=[TokenOut.model_validate(t) for t in tokens])


@operation(
    bp,
    "/me/tokens",
    "POST",
    summary="Create an API token",
    tags=["me"],
    body=TokenCreate,
    response=TokenCreated,
    status=201,
)
def create_token(body: TokenCreate) -> TokenCreated:
    """The secret is in the response and never again; store it now."""
    user = require_user()
    access.require(user, "tokens:manage")
    token, secret = actions.do_create_token(user, body.name, body.expires_in_days)
    db.session.commit()
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=secret)


@operation(
    bp,
    "/me/tokens/<int:token_id>",
    "DELETE",
    summary="Revoke an API token",
    tags=["me"],
    status=204,
)
def revoke_token(token_id: int) -> None:
    user = require_user()
    actions.do_revoke_token(user, actions.access_token(user, token_id))
    db.session.commit()


# --- administration ---------------------------------------------------------------------------


def _access_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise not_found("person")
    return user


@operation(
    bp,
    "/admin/users/<int:user_id>",
    "GET",
    summary="Read a person's account",
    tags=["admin"],
    response=AdminUser,
)
def admin_get_user(user_id: int) -> AdminUser:
    access.require(require_user(), "users:administer")
    return AdminUser.model_validate(_access_user(user_id))


@operation(
    bp,
    "/admin/users",
    "POST",
    summary="Create a person",
    tags=["admin"],
    body=UserCreate,
    response=AdminUser,
    status=201,
    responses={409: "E-mail or employee number taken."},
)
def admin_create_user(body: UserCreate) -> AdminUser:
    actor = require_user()
    access.require(actor, "users:administer")
    user = actions.check_create_user(actor, body.model_dump())
    db.session.commit()
    return AdminUser.model_validate(user)


@operation(
    bp,
    "/admin/users/<int:user_id>",
    "PATCH",
    summary="Edit a person",
    tags=["admin"],
    body=UserUpdate,
    response=AdminUser,
    responses={409: "E-mail or employee number taken."},
)
def admin_update_user(user_id: int, body: UserUpdate) -> AdminUser:
    """A department change is recorded as a move with today's date."""
    actor = require_user()
    access.require(actor, "users:administer")
    user = _access_user(user_id)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, nullable=frozenset({"department_id", "employee_number"}))
    actions.check_update_user(actor, user, changes)
    db.session.commit()
    return AdminUser.model_validate(user)


@operation(
    bp,
    "/admin/users/<int:user_id>/deactivate",
    "POST",
    summary="Deactivate a person",
    tags=["admin"],
    response=AdminUser,
    responses={409: "You cannot deactivate yourself."},
)
def admin_deactivate_user(user_id: int) -> AdminUser:
    """Signs the person out everywhere and revokes their API tokens."""
    actor = require_user()
    access.require(actor, "users:administer")
    user = _access_user(user_id)
    actions.check_deactivate_user(actor, user)
    db.session.commit()
    return AdminUser.model_validate(user)


@operation(
    bp,
    "/admin/users/<int:user_id>/reactivate",
    "POST",
    summary="Reactivate a person",
    tags=["admin"],
    response=AdminUser,
)
def admin_reactivate_user(user_id: int) -> AdminUser:
    actor = require_user()
    access.require(actor, "users:administer")
    user = _access_user(user_id)
    actions.do_reactivate_user(actor, user)
    db.session.commit()
    return AdminUser.model_validate(user)


@operation(
    bp,
    "/admin/departments",
    "POST",
    summary="Create a department",
    tags=["admin"],
    body=DepartmentCreate,
    response=DepartmentOut,
    status=201,
    responses={409: "The code is taken."},
)
def admin_create_department(body: DepartmentCreate) -> DepartmentOut:
    actor = require_user()
    access.require(actor, "departments:administer")
    dept = directory_actions.check_create_department(actor, body.code, body.name, body.parent_id)
    db.session.commit()
    return DepartmentOut(
        id=dept.id, code=dept.code, name=dept.name, parent_id=dept.parent_id, member_count=0
    )


@operation(
    bp,
    "/admin/departments/<int:department_id>",
    "PATCH",
    summary="Edit a department",
    tags=["admin"],
    body=DepartmentUpdate,
    response=DepartmentOut,
    responses={409: "The code is taken, or the move would make a cycle."},
)
def admin_update_department(department_id: int, body: DepartmentUpdate) -> DepartmentOut:
    actor = require_user()
    access.require(actor, "departments:administer")
    dept = access_department(department_id)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes, nullable=frozenset({"parent_id"}))
    directory_actions.check_update_department(actor, dept, changes)
    db.session.commit()
    members = db.session.scalar(
        select(func.count()).where(User.department_id == dept.id, User.is_active.is_(True))
    )
    return DepartmentOut(
        id=dept.id,
        code=dept.code,
        name=dept.name,
        parent_id=dept.parent_id,
        member_count=members or 0,
    )


@operation(
    bp,
    "/admin/imports",
    "POST",
    summary="Import departments and people from CSV",
    tags=["admin"],
    query=ImportQuery,
    raw_body="text/csv",
    max_body="MAX_IMPORT_BYTES",
    response=ImportReport,
    responses={422: "Invalid rows (nothing written unless skip_invalid)."},
)
def admin_import(query: ImportQuery) -> ImportReport:
    """The body is the HR export as CSV (see docs/operations.md for the columns). Idempotent by
    employee number, else e-mail. With ``dry_run`` nothing is written and the report says what
    would change. Invalid rows are listed with their line numbers; unless ``skip_invalid`` is
    set, nothing is written when any row is invalid."""
    actor = require_user()
    access.require(actor, "users:import")
    if request.mimetype not in {"text/csv", "text/plain"}:
        raise Problem(
            415,
            "Unsupported Media Type",
            "Send the file as text/csv.",
            kind="unsupported-media-type",
        )
    try:
        text = request.get_data(cache=False).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(
            400, "Bad Request", "The file is not UTF-8 text.", kind="bad-encoding"
        ) from None
    report = import_people(
        text,
        actor=actor,
        dry_run=query.dry_run,
        skip_invalid=query.skip_invalid,
        deactivate_missing=query.deactivate_missing,
    )
    if report.applied:
        db.session.commit()
    else:
        db.session.rollback()
    if report.errors and not report.applied and not query.dry_run:
        body = report.model_dump(mode="json")
        raise Problem(
            422,
            "Unprocessable Content",
            f"{len(report.errors)} invalid rows; nothing was written.",
            kind="import-invalid",
            report=body,
        )
    return report
