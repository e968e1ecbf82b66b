"""Writes to departments and department membership."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from esn.accounts.models import User
from esn.api.problems import Problem, conflict
from esn.clock import now
from esn.directory.models import Department, DepartmentAssignment
from esn.extensions import db
from esn.usage import kinds
from esn.usage.recorder import record_usage


def do_create_department(
    actor: User | None, code: str, name: str, parent_id: int | None
) -> Department:
    department = Department(code=code, name=name, parent_id=parent_id)
    db.session.add(department)
    db.session.flush()
    record_usage(kinds.DEPARTMENT_CREATE, actor, object_type="department", object_id=department.id)
    return department


def check_create_department(actor: User, code: str, name: str, parent_id: int | None) -> Department:
    if db.session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise conflict(f"A department with code {code!r} exists already.")
    if parent_id is not None and db.session.get(Department, parent_id) is None:
        raise Problem(
            422,
            "Unprocessable Content",
            "The parent department does not exist.",
            kind="validation-error",
        )
    return do_create_department(actor, code, name, parent_id)


def _ancestors(department_id: int | None) -> set[int]:
    seen: set[int] = set()
    while department_id is not None and department_id not in seen:
        seen.add(department_id)
        department_id = db.session.scalar(
            select(Department.parent_id).where(Department.id == department_id)
        )
    return seen


def check_update_department(
    actor: User, department: Department, changes: dict[str, object]
) -> Department:
    if "code" in changes and changes["code"] != department.code:
        taken = db.session.scalar(select(Department.id).where(Department.code == changes["code"]))
        if taken is not None:
            raise conflict(f"A department with code {changes['code']!r} exists already.")
    if "parent_id" in changes and changes["parent_id"] is not None:
        parent_id = changes["parent_id"]
        assert isinstance(parent_id, int)
        if db.session.get(Department, parent_id) is None:
            raise Problem(
                422,
                "Unprocessable Content",
                "The parent department does not exist.",
                kind="validation-error",
            )
        if department.id in _ancestors(parent_id):
            raise conflict("A department cannot be placed under itself or its own sub-department.")
    return do_update_department(actor, department, changes)


def do_update_department(
    actor: User | None, department: Department, changes: dict[str, object]
) -> Department:
    changed = [k for k, v in changes.items() if getattr(department, k) != v]
    for key in changed:
        setattr(department, key, changes[key])
    if changed:
        record_usage(
            kinds.DEPARTMENT_UPDATE,
            actor,
            object_type="department",
            object_id=department.id,
            payload={"fields": sorted(changed)},
        )
    return department


def do_move_department(
    actor: User | None, person: User, department_id: int | None, at: datetime | None = None
) -> None:
    """Put ``person`` in ``department_id`` from ``at`` (default: now), keeping the history."""
    moment = at or now()
    previous = person.department_id
    if previous == department_id:
        return
    db.session.flush()
    db.session.execute(
        update(DepartmentAssignment)
        .where(DepartmentAssignment.user_id == person.id, DepartmentAssignment.ended_at.is_(None))
        .values(ended_at=moment)
    )
    person.department_id = department_id
    if department_id is not None:
        open_assignment(person, department_id, moment)
    record_usage(
        kinds.DEPARTMENT_MOVE,
        actor,
        object_type="user",
        object_id=person.id,
        owner_id=person.id,
        payload={"from_department_id": previous, "to_department_id": department_id},
        at=moment,
    )


def open_assignment(person: User, department_id: int, at: datetime) -> None:
    """Start ``person``'s membership of ``department_id`` (the person must have an id)."""
    db.session.add(
        DepartmentAssignment(user_id=person.id, department_id=department_id, started_at=at)
    )
