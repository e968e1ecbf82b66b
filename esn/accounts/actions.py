"""Every write to accounts: sign-in, passwords, tokens, profiles and user administration.

``do_*`` changes state and records its usage event; ``check_*`` validates, raising a Problem,
then calls ``do_*``. Nothing here commits: the boundary does, once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from esn.accounts.handles import new_handle
from esn.accounts.models import ApiToken, Role, Skill, User, UserRole, UserSkill
from esn.accounts.passwords import hash_password, needs_rehash, password_problems, verify_password
from esn.accounts.tokens import display_prefix, new_token, token_digest
from esn.api.problems import FieldError, Problem, conflict, not_found, validation_problem
from esn.clock import now
from esn.database import insert_ignoring_conflicts
from esn.directory.actions import do_move_department, open_assignment
from esn.directory.models import Department
from esn.directory.queries import normalise_skill
from esn.extensions import db
from esn.outbox import enqueue
from esn.usage import kinds
from esn.usage.recorder import record_usage

if TYPE_CHECKING:
    from esn.accounts.auth import Credential

PROFILE_FIELDS = ("display_name", "title", "location", "time_zone", "bio", "skills")

# Jobs after the commit, handled in esn/realtime/sessions.py: the sockets that a sign-in opened
# are closed when it ends (sign-out), and those of other sign-ins when a password change signs
# them out. (Token revocation is followed from its usage event, which names the token.)
SIGNED_OUT = "accounts.signed_out"
SIGNED_OUT_ELSEWHERE = "accounts.signed_out_elsewhere"


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.lower()))


# --- sign-in and passwords --------------------------------------------------------------------


def check_sign_in(email: str, password: str) -> User:
    """The person with these credentials, or a 401 that does not say which part was wrong."""
    user = find_by_email(email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Problem(
            401, "Unauthorized", "The e-mail address or password is wrong.", kind="sign-in-failed"
        )
    do_sign_in(user, password)
    return user


def do_sign_in(user: User, password: str) -> None:
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record_usage(kinds.SIGN_IN, user)


def do_sign_out(user: User, credential: Credential | None = None) -> None:
    """``credential``: what authenticated the sign-out request; if it is a cookie sign-in, the
    sockets it opened are closed after the commit (the person's others stay open)."""
    record_usage(kinds.SIGN_OUT, user)
    if credential is not None and credential.kind == "session":
        enqueue(SIGNED_OUT, {"user_id": user.id, "sign_in": credential.id})


def do_record_visit(user: User, session: Session | None = None) -> bool:
    """Record ``account:session:visit`` if it is ``user``'s first visit of the day; True when
    it was. A conditional update makes it at most once per person per day across processes
    (the visitor share A2 counts people, not requests). Runs in ``session``'s transaction
    (by default the request's)."""
    today = now().date()
    if user.is_bot or user.last_visit_on == today:
        return False
    claim = (
        update(User)
        .where(User.id == user.id, or_(User.last_visit_on.is_(None), User.last_visit_on < today))
        .values(last_visit_on=today)
        .execution_options(synchronize_session=False)
    )
    sess = session or db.session
    if cast(CursorResult[Any], sess.execute(claim)).rowcount != 1:
        return False
    record_usage(kinds.VISIT, user, session=session)
    return True


def _password_error(password: str, user_email: str, name: str, field: str) -> None:
    problems = password_problems(password, email=user_email, display_name=name)
    if problems:
        raise validation_problem(
            [FieldError(pointer=f"/{field}", location="body", message=p) for p in problems]
        )


def check_change_password(
    user: User, current: str, new: str, credential: Credential | None = None
) -> None:
    if not verify_password(user.password_hash, current):
        raise validation_problem(
            [FieldError(pointer="/current_password", location="body", message="is wrong")]
        )
    _password_error(new, user.email, user.display_name, "new_password")
    do_set_password(user, new, actor=user, keep=credential)


def do_set_password(
    user: User, password: str, *, actor: User | None, keep: Credential | None = None
) -> None:
    """Set the password and sign the person out everywhere else (their epoch moves on); the
    sockets of their cookie sign-ins are closed after the commit, except those of ``keep``'s
    sign-in (the one changing it, which the boundary re-issues with the new epoch)."""
    user.password_hash = hash_password(password)
    user.auth_epoch += 1
    record_usage(
        kinds.PASSWORD_CHANGE, actor, object_type="user", object_id=user.id, owner_id=user.id
    )
    payload: dict[str, Any] = {"user_id": user.id, "epoch": user.auth_epoch}
    if keep is not None and keep.kind == "session" and keep.id is not None:
        payload["keep_sign_in"] = keep.id
    enqueue(SIGNED_OUT_ELSEWHERE, payload)


# --- tokens -----------------------------------------------------------------------------------


def do_create_token(user: User, name: str, expires_in_days: int | None) -> tuple[ApiToken, str]:
    secret = new_token()
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=token_digest(secret),
        prefix=display_prefix(secret),
        created_at=now(),
        expires_at=now() + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    db.session.add(token)
    db.session.flush()
    record_usage(kinds.TOKEN_CREATE, user, object_type="api_token", object_id=token.id)
    return token, secret


def access_token(user: User, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise not_found("token")
    return token


def do_revoke_token(user: User, token: ApiToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = now()
    record_usage(kinds.TOKEN_REVOKE, user, object_type="api_token", object_id=token.id)


# --- profiles and skills ------------------------------------------------------------------------


def skill_ids(labels: list[str]) -> list[int]:
    """Ids of the skills named by ``labels``, creating the missing ones (race-safe)."""
    wanted: dict[str, str] = {}
    for label in labels:
        clean = " ".join(label.split())
        if clean:
            wanted.setdefault(clean.lower(), clean)
    if not wanted:
        return []
    dialect = db.session.get_bind().dialect.name
    db.session.execute(
        insert_ignoring_conflicts(Skill.__table__, dialect),
        [{"name": name, "label": label} for name, label in wanted.items()],
    )
    return list(db.session.scalars(select(Skill.id).where(Skill.name.in_(list(wanted)))))


def _set_skills(user: User, labels: list[str]) -> bool:
    before = {normalise_skill(s) for s in user.skills}
    after = {normalise_skill(s) for s in labels if s.strip()}
    if before == after:
        return False
    ids = skill_ids(labels)
    user.skill_rows = [UserSkill(user_id=user.id, skill_id=sid) for sid in ids]
    db.session.flush()
    db.session.expire(user, ["skill_rows"])
    return True


def _apply_fields(user: User, changes: dict[str, Any]) -> list[str]:
    changed: list[str] = []
    for key, value in changes.items():
        if key == "skills":
            if _set_skills(user, value):
                changed.append("skills")
        elif key == "roles":
            if set(value) != set(user.roles):
                user.role_rows = [UserRole(user_id=user.id, role=r) for r in sorted(set(value))]
                changed.append("roles")
        elif getattr(user, key) != value:
            setattr(user, key, value)
            changed.append(key)
    return changed


def do_update_profile(actor: User, user: User, changes: dict[str, Any]) -> list[str]:
    """Apply profile ``changes`` (only PROFILE_FIELDS); returns the names of changed fields."""
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"not profile fields: {sorted(unknown)}")
    changed = _apply_fields(user, changes)
    if changed:
        record_usage(
            kinds.PROFILE_UPDATE,
            actor,
            object_type="user",
            object_id=user.id,
            owner_id=user.id,
            payload={"fields": sorted(changed)},
        )
    return changed


# --- administration -----------------------------------------------------------------------------


def _check_department(department_id: int | None) -> None:
    if department_id is not None and db.session.get(Department, department_id) is None:
        raise validation_problem(
            [FieldError(pointer="/department_id", location="body", message="no such department")]
        )


def _check_unique(email: str | None, employee_number: str | None, exclude: int | None) -> None:
    if email is not None:
        other = db.session.scalar(select(User.id).where(User.email == email))
        if other is not None and other != exclude:
            raise conflict("Another person has this e-mail address.")
    if employee_number is not None:
        other = db.session.scalar(select(User.id).where(User.employee_number == employee_number))
        if other is not None and other != exclude:
            raise conflict("Another person has this employee number.")


def check_create_user(actor: User | None, fields: dict[str, Any]) -> User:
    _check_unique(fields["email"], fields.get("employee_number"), None)
    _check_department(fields.get("department_id"))
    if fields.get("password") is not None:
        _password_error(fields["password"], fields["email"], fields["display_name"], "password")
    return do_create_user(actor, fields)


def do_create_user(actor: User | None, fields: dict[str, Any]) -> User:
    data = dict(fields)
    password = data.pop("password", None)
    roles = data.pop("roles", [])
    skills = data.pop("skills", [])
    user = User(**data, created_at=now())
    user.handle = new_handle(user.email)
    if password:
        user.password_hash = hash_password(password)
    db.session.add(user)
    db.session.flush()
    user.role_rows = [UserRole(user_id=user.id, role=Role(r)) for r in sorted(set(roles))]
    if skills:
        _set_skills(user, skills)
    if user.department_id is not None:
        open_assignment(user, user.department_id, user.created_at)
    record_usage(kinds.USER_CREATE, actor, object_type="user", object_id=user.id, owner_id=user.id)
    return user


def check_update_user(actor: User, user: User, changes: dict[str, Any]) -> User:
    _check_unique(changes.get("email"), changes.get("employee_number"), user.id)
    if "department_id" in changes:
        _check_department(changes["department_id"])
    if changes.get("password") is not None:
        _password_error(
            changes["password"],
            changes.get("email", user.email),
            changes.get("display_name", user.display_name),
            "password",
        )
    if actor.id == user.id and "roles" in changes and Role.admin not in changes["roles"]:
        raise conflict("You cannot take the administrator role away from yourself.")
    return do_update_user(actor, user, changes)


def do_update_user(actor: User | None, user: User, changes: dict[str, Any]) -> User:
    data = dict(changes)
    password = data.pop("password", None)
    department_id = data.pop("department_id", user.department_id)
    changed = _apply_fields(user, data)
    if changed:
        record_usage(
            kinds.USER_UPDATE,
            actor,
            object_type="user",
            object_id=user.id,
            owner_id=user.id,
            payload={"fields": sorted(changed)},
        )
    if password:
        do_set_password(user, password, actor=actor)
    if department_id != user.department_id:
        do_move_department(actor, user, department_id)
    return user


def do_deactivate_user(actor: User | None, user: User) -> None:
    """Deactivate: sign out everywhere and revoke every token (a later reactivation must not
    bring old secrets back to life)."""
    if not user.is_active:
        return
    user.is_active = False
    user.deactivated_at = now()
    user.auth_epoch += 1
    db.session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    record_usage(
        kinds.USER_DEACTIVATE, actor, object_type="user", object_id=user.id, owner_id=user.id
    )


def check_deactivate_user(actor: User, user: User) -> None:
    if actor.id == user.id:
        raise conflict("You cannot deactivate yourself.")
    do_deactivate_user(actor, user)


def do_reactivate_user(actor: User | None, user: User) -> None:
    if user.is_active:
        return
    user.is_active = True
    user.deactivated_at = None
    record_usage(
        kinds.USER_REACTIVATE, actor, object_type="user", object_id=user.id, owner_id=user.id
    )
