"""THE visibility and permission policy. Every read and write path asks it.

``can(user, action, obj)`` answers for one object; features that list objects use the matching
bulk filters defined here, so that a list can never show what the object check refuses.
Actions are strings named ``subject:verb``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_, true

from esn.accounts.models import Role, User
from esn.api.problems import Problem, forbidden


def _active(user: User | None) -> bool:
    return user is not None and user.is_active


def is_admin(user: User | None) -> bool:
    return _active(user) and user is not None and user.has_role(Role.admin)


def can(user: User | None, action: str, obj: Any = None) -> bool:
    """True when ``user`` may perform ``action`` (on ``obj``). Unknown actions are refused."""
    if not _active(user):
        return False
    assert user is not None
    match action:
        case "directory:browse":
            # The directory is for the organisation's own people, not customers and partners.
            return not user.is_external
        case "profile:read":
            target: User = obj
            if user.id == target.id or is_admin(user):
                return True
            return not user.is_external and target.is_active
        case "profile:edit":
            target = obj
            return user.id == target.id or is_admin(user)
        case "profile:move_department" | "users:administer" | "departments:administer":
            return is_admin(user)
        case "users:import":
            return is_admin(user) or user.has_role(Role.hr)
        case "tokens:manage":
            return True
        case _:
            return False


def require(user: User | None, action: str, obj: Any = None, *, hide: bool = False) -> None:
    """Raise 403 (or 404 with ``hide``, where existence itself is private) unless allowed."""
    if can(user, action, obj):
        return
    if hide:
        raise Problem(404, "Not Found", "No such resource.", kind="not-found")
    raise forbidden()


def directory_filter(user: User | None) -> Any:
    """The bulk form of ``profile:read`` for people listings: a WHERE clause on ``User`` that
    keeps exactly the people ``can(user, "profile:read", person)`` allows, branch for branch."""
    if not _active(user):
        return false()
    assert user is not None
    if is_admin(user):
        return true()
    if user.is_external:
        return User.id == user.id
    return or_(User.id == user.id, User.is_active.is_(True))
