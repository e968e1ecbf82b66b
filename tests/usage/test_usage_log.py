"""The usage event log: one event per action, in its transaction, from a closed vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from esn.accounts import actions
from esn.accounts.models import User
from esn.directory import actions as directory_actions
from esn.extensions import db
from esn.outbox.dispatch import enqueue, register_handler, unregister_handler
from esn.outbox.models import OutboxJob
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import record_usage
from tests.conftest import PASSWORD, make_user


def _kinds() -> Counter[str]:
    return Counter(db.session.scalars(select(UsageEvent.kind)))


def _count(model: type) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def _dept(code: str = "ENG") -> int:
    dept = directory_actions.do_create_department(None, code, code.title(), None)
    db.session.commit()
    return dept.id


# Each case: (expected kind, action). The action runs against a fresh admin and employee.
ActionCase = tuple[str, Callable[[User, User], Any]]
CASES: list[ActionCase] = [
    ("account:session:sign_in", lambda admin, emp: actions.check_sign_in(emp.email, PASSWORD)),
    ("account:session:sign_out", lambda admin, emp: actions.do_sign_out(emp)),
    (
        "account:password:change",
        lambda admin, emp: actions.check_change_password(emp, PASSWORD, "another long passphrase"),
    ),
    ("account:token:create", lambda admin, emp: actions.do_create_token(emp, "t", None)),
    (
        "account:profile:update",
        lambda admin, emp: actions.do_update_profile(
            emp, emp, {"title": "Chemist", "skills": ["HPLC"]}
        ),
    ),
    (
        "admin:user:create",
        lambda admin, emp: actions.do_create_user(
            admin, {"email": "new@example.org", "display_name": "New"}
        ),
    ),
    (
        "admin:user:update",
        lambda admin, emp: actions.do_update_user(admin, emp, {"display_name": "Renamed"}),
    ),
    ("admin:user:deactivate", lambda admin, emp: actions.do_deactivate_user(admin, emp)),
    (
        "admin:user:move_department",
        lambda admin, emp: directory_actions.do_move_department(admin, emp, _dept()),
    ),
    (
        "admin:department:create",
        lambda admin, emp: directory_actions.do_create_department(admin, "OPS", "Operations", None),
    ),
]


@pytest.mark.parametrize(("kind", "action"), CASES, ids=[c[0] for c in CASES])
def test_every_action_writes_exactly_its_event(app, admin, employee, kind, action):
    admin_id, employee_id = admin.id, employee.id
    # Department creation for the move case happens first, outside the measured window.
    if kind == "admin:user:move_department":
        dept_id = _dept()
        measured = lambda a, e: directory_actions.do_move_department(a, e, dept_id)  # noqa: E731
    else:
        measured = action
    db.session.rollback()
    before = _kinds()
    measured(db.session.get(User, admin_id), db.session.get(User, employee_id))
    db.session.commit()
    added = _kinds() - before
    assert added == Counter({kind: 1})
    event = db.session.scalars(
        select(UsageEvent).where(UsageEvent.kind == kind).order_by(UsageEvent.id.desc())
    ).first()
    assert event.occurred_at.tzinfo is not None
    assert event.actor_id in (admin_id, employee_id)


def test_token_revoke_and_reactivate_events(app, admin, employee):
    token, _secret = actions.do_create_token(employee, "t", None)
    db.session.commit()
    before = _kinds()
    actions.do_revoke_token(employee, token)
    actions.do_deactivate_user(admin, employee)
    actions.do_reactivate_user(admin, employee)
    db.session.commit()
    assert _kinds() - before == Counter(
        {"account:token:revoke": 1, "admin:user:deactivate": 1, "admin:user:reactivate": 1}
    )


def test_event_carries_the_department_at_the_time(app, admin):
    first, second = _dept("ONE"), _dept("TWO")
    person = make_user("mover@example.org", department_id=first)
    actions.do_update_profile(person, person, {"title": "Before"})
    db.session.commit()
    directory_actions.do_move_department(admin, person, second)
    db.session.commit()
    actions.do_update_profile(person, person, {"title": "After"})
    db.session.commit()
    departments = db.session.scalars(
        select(UsageEvent.actor_department_id)
        .where(UsageEvent.kind == "account:profile:update", UsageEvent.actor_id == person.id)
        .order_by(UsageEvent.id)
    ).all()
    assert departments == [first, second]


class _Boom(RuntimeError):
    pass


def test_a_rolled_back_action_leaves_no_row_no_event_no_outbox(app, admin):
    register_handler("test.noop", lambda payload: None)
    try:
        db.session.rollback()
        users, events, jobs = _count(User), _count(UsageEvent), _count(OutboxJob)
        with pytest.raises(_Boom):
            try:
                actions.do_create_user(
                    admin, {"email": "ghost@example.org", "display_name": "Ghost"}
                )
                enqueue("test.noop", {"x": 1})
                db.session.flush()  # the rows really reached the database before the failure
                raise _Boom
            except _Boom:
                db.session.rollback()
                raise
        assert (_count(User), _count(UsageEvent), _count(OutboxJob)) == (users, events, jobs)
    finally:
        unregister_handler("test.noop")


def test_failed_request_writes_nothing(app, admin_api, admin):
    db.session.rollback()
    events = _count(UsageEvent)
    # Valid shape, but the department does not exist: 422 and no partial user.
    response = admin_api.post(
        "/api/v1/admin/users",
        json={"email": "x@example.org", "display_name": "X", "department_id": 999},
    )
    assert response.status_code == 422
    db.session.rollback()
    assert _count(UsageEvent) == events
    assert db.session.scalar(select(User).where(User.email == "x@example.org")) is None


def test_unknown_kind_is_an_error(app, admin):
    with pytest.raises(kinds.UsageKindError):
        record_usage("blog:post:levitate", admin)


def test_unknown_payload_field_is_an_error(app, admin):
    with pytest.raises(kinds.UsageKindError):
        record_usage(kinds.PROFILE_UPDATE, admin, payload={"fields": ["title"], "password": "x"})
    with pytest.raises(kinds.UsageKindError):
        record_usage(kinds.SIGN_IN, admin, payload={"anything": 1})


def test_kinds_are_well_formed_and_declared_once():
    names = [k.name for k in kinds.all_kinds()]
    assert len(names) == len(set(names))
    assert all(kinds.KIND_PATTERN.match(n) for n in names)
    with pytest.raises(kinds.UsageKindError):
        kinds.declare("account:session:sign_in")
    with pytest.raises(kinds.UsageKindError):
        kinds.declare("Not A Kind")

    class Loose(BaseModel):
        model_config = ConfigDict(extra="allow")

    with pytest.raises(kinds.UsageKindError):
        kinds.declare("test:loose:payload", Loose)


def test_first_request_of_the_day_records_one_visit(app, employee_api, employee):
    for _ in range(3):
        assert employee_api.get("/api/v1/me").status_code == 200
    db.session.rollback()
    visits = db.session.scalar(
        select(func.count()).where(
            UsageEvent.kind == "account:session:visit", UsageEvent.actor_id == employee.id
        )
    )
    assert visits == 1
