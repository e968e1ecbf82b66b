"""User and department administration: /api/v1/admin/users and /api/v1/admin/departments."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from esn.accounts.actions import do_create_token
from esn.accounts.models import ApiToken, User
from esn.directory.actions import do_create_department
from esn.directory.models import Department, DepartmentAssignment
from esn.extensions import db
from esn.usage.models import UsageEvent
from tests.conftest import PASSWORD, ApiClient, fresh, make_user

USERS = "/api/v1/admin/users"
DEPARTMENTS = "/api/v1/admin/departments"


def make_department(code: str, name: str | None = None, parent_id: int | None = None) -> int:
    db.session.rollback()
    department = do_create_department(None, code, name or code.title(), parent_id)
    db.session.commit()
    return department.id


def events(kind: str) -> list[UsageEvent]:
    fresh()
    return list(
        db.session.scalars(
            select(UsageEvent).where(UsageEvent.kind == kind).order_by(UsageEvent.id)
        )
    )


def assignments(user_id: int) -> list[DepartmentAssignment]:
    fresh()
    return list(
        db.session.scalars(
            select(DepartmentAssignment)
            .where(DepartmentAssignment.user_id == user_id)
            .order_by(DepartmentAssignment.id)
        )
    )


def admin_events() -> int:
    fresh()
    return int(
        db.session.scalar(
            select(func.count()).select_from(UsageEvent).where(UsageEvent.kind.like("admin:%"))
        )
        or 0
    )


def count(model: Any) -> int:
    fresh()
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


# --- creating people ------------------------------------------------------------------------


def test_admin_creates_a_person(app, admin_api, admin):
    dept = make_department("ENG", "Engineering")
    body = {
        "email": "New.Person@Example.org",
        "display_name": "New Person",
        "employee_number": "E-1",
        "department_id": dept,
        "roles": ["employee", "moderator"],
        "password": "a long enough passphrase",
        "title": "Engineer",
        "location": "Delft",
        "time_zone": "Europe/Amsterdam",
        "skills": ["Python", " python "],
    }
    response = admin_api.post(USERS, json=body)
    assert response.status_code == 201, response.get_json()
    out = response.get_json()
    assert out["email"] == "new.person@example.org"
    assert out["roles"] == ["employee", "moderator"]
    assert out["department"]["code"] == "ENG"
    assert out["skills"] == ["Python"]
    assert out["employee_number"] == "E-1" and out["is_active"] is True
    assert "password" not in out and "password_hash" not in out
    [event] = [e for e in events("admin:user:create") if e.object_id == out["id"]]
    assert event.actor_id == admin.id
    [assignment] = assignments(out["id"])
    assert assignment.department_id == dept and assignment.ended_at is None
    # The new person can sign in with the password given.
    assert (
        ApiClient(app).sign_in("new.person@example.org", "a long enough passphrase").status_code
        == 200
    )
    assert admin_api.get(f"{USERS}/{out['id']}").get_json()["email"] == "new.person@example.org"


def test_person_created_without_password_cannot_sign_in(app, admin_api):
    response = admin_api.post(
        USERS, json={"email": "nopw@example.org", "display_name": "No Password"}
    )
    assert response.status_code == 201
    assert response.get_json()["roles"] == []
    assert ApiClient(app).sign_in("nopw@example.org", "").status_code in (401, 422)
    assert ApiClient(app).sign_in("nopw@example.org", PASSWORD).status_code == 401


@pytest.mark.parametrize("email", ["erin@example.org", "ERIN@Example.org"])
def test_duplicate_email_is_409(admin_api, employee, email):
    before = count(User)
    response = admin_api.post(USERS, json={"email": email, "display_name": "Erin Again"})
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/conflict")
    assert count(User) == before


def test_duplicate_employee_number_is_409(admin_api):
    make_user("one@example.org", employee_number="E-7", password=None)
    response = admin_api.post(
        USERS, json={"email": "two@example.org", "display_name": "Two", "employee_number": "E-7"}
    )
    assert response.status_code == 409


def test_unknown_department_is_422(admin_api):
    before = count(User)
    response = admin_api.post(
        USERS, json={"email": "x@example.org", "display_name": "X", "department_id": 999}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["pointer"] == "/department_id"
    assert count(User) == before


def test_weak_password_is_422(admin_api):
    before = count(User)
    for password in ["short", "weak@example.org", "Weak Person Name", "x" * 11]:
        body = {
            "email": "weak@example.org",
            "display_name": "Weak Person Name",
            "password": password,
        }
        response = admin_api.post(USERS, json=body)
        assert response.status_code == 422, password
        assert response.get_json()["errors"][0]["pointer"] == "/password"
    assert count(User) == before


INVALID_PEOPLE = [
    {"email": "not an address", "display_name": "X"},
    {"email": "ok@example.org", "display_name": ""},
    {"email": "ok@example.org", "display_name": "X", "roles": ["overlord"]},
    {"email": "ok@example.org", "display_name": "X", "time_zone": "Nowhere/Land"},
    {"email": "ok@example.org", "display_name": "X", "is_active": False},
]


def test_invalid_new_person_is_422(admin_api):
    before = count(User)
    for body in INVALID_PEOPLE:
        assert admin_api.post(USERS, json=body).status_code == 422, body
    assert count(User) == before


# --- editing people -------------------------------------------------------------------------


def test_admin_edits_roles(admin_api, employee):
    response = admin_api.patch(
        f"{USERS}/{employee.id}", json={"roles": ["moderator", "employee", "moderator"]}
    )
    assert response.status_code == 200
    assert response.get_json()["roles"] == ["employee", "moderator"]
    fresh()
    assert [r.value for r in db.session.get(User, employee.id).roles] == ["employee", "moderator"]
    [event] = events("admin:user:update")
    assert event.payload == {"fields": ["roles"]}
    # The same roles again: no change, no event.
    assert (
        admin_api.patch(
            f"{USERS}/{employee.id}", json={"roles": ["employee", "moderator"]}
        ).status_code
        == 200
    )
    assert len(events("admin:user:update")) == 1


def test_admin_cannot_take_own_admin_role_away(admin_api, admin):
    response = admin_api.patch(f"{USERS}/{admin.id}", json={"roles": ["employee"]})
    assert response.status_code == 409
    fresh()
    assert "admin" in db.session.get(User, admin.id).roles


def test_new_admin_can_administer(app, admin_api, employee):
    assert (
        admin_api.patch(f"{USERS}/{employee.id}", json={"roles": ["employee", "admin"]}).status_code
        == 200
    )
    client = ApiClient(app)
    client.sign_in(employee.email)
    assert client.post(DEPARTMENTS, json={"code": "NEW", "name": "New"}).status_code == 201


def test_department_change_moves_the_person_and_keeps_history(admin_api, admin):
    sales = make_department("SALES")
    eng = make_department("ENG")
    person = make_user("mover@example.org", department_id=sales, password=None)
    [first] = assignments(person.id)
    assert first.department_id == sales and first.ended_at is None

    response = admin_api.patch(f"{USERS}/{person.id}", json={"department_id": eng})
    assert response.status_code == 200
    assert response.get_json()["department"]["code"] == "ENG"
    old, new = assignments(person.id)
    assert old.department_id == sales and old.ended_at is not None
    assert new.department_id == eng and new.ended_at is None
    assert new.started_at == old.ended_at
    [move] = events("admin:user:move_department")
    assert move.actor_id == admin.id and move.object_id == person.id and move.owner_id == person.id
    assert move.payload == {"from_department_id": sales, "to_department_id": eng}
    # A move alone is not also logged as a field update.
    assert events("admin:user:update") == []

    # The same department again changes nothing.
    assert admin_api.patch(f"{USERS}/{person.id}", json={"department_id": eng}).status_code == 200
    assert len(assignments(person.id)) == 2
    assert len(events("admin:user:move_department")) == 1

    # Out of any department: the open stretch is closed and none is opened.
    response = admin_api.patch(f"{USERS}/{person.id}", json={"department_id": None})
    assert response.status_code == 200 and response.get_json()["department"] is None
    history = assignments(person.id)
    assert len(history) == 2 and all(a.ended_at is not None for a in history)
    assert events("admin:user:move_department")[-1].payload == {
        "from_department_id": eng,
        "to_department_id": None,
    }


def test_edit_with_fields_and_department_writes_both_events(admin_api, employee):
    eng = make_department("ENG")
    response = admin_api.patch(
        f"{USERS}/{employee.id}", json={"title": "Lead", "department_id": eng}
    )
    assert response.status_code == 200
    assert [e.payload for e in events("admin:user:update")] == [{"fields": ["title"]}]
    assert [e.payload for e in events("admin:user:move_department")] == [
        {"from_department_id": None, "to_department_id": eng}
    ]
    [assignment] = assignments(employee.id)
    assert assignment.department_id == eng and assignment.ended_at is None


def test_edit_to_unknown_department_is_422_and_changes_nothing(admin_api, employee):
    response = admin_api.patch(
        f"{USERS}/{employee.id}", json={"title": "Lead", "department_id": 999}
    )
    assert response.status_code == 422
    fresh()
    user = db.session.get(User, employee.id)
    assert user.title == "" and user.department_id is None
    assert events("admin:user:update") == []


def test_edit_email_to_a_taken_one_is_409(admin_api, admin, employee):
    response = admin_api.patch(f"{USERS}/{employee.id}", json={"email": "ADMIN@example.org"})
    assert response.status_code == 409
    # Keeping one's own address is no conflict.
    assert (
        admin_api.patch(f"{USERS}/{employee.id}", json={"email": "erin@example.org"}).status_code
        == 200
    )


def test_null_for_a_required_field_is_422(admin_api, employee):
    for field in ["email", "display_name", "roles", "is_bot", "title", "time_zone", "password"]:
        response = admin_api.patch(f"{USERS}/{employee.id}", json={field: None})
        assert response.status_code == 422, field


def test_admin_sets_a_password_and_signs_the_person_out(app, admin_api, employee_api, employee):
    response = admin_api.patch(
        f"{USERS}/{employee.id}", json={"password": "a brand new passphrase"}
    )
    assert response.status_code == 200
    assert employee_api.get("/api/v1/me").status_code == 401
    assert ApiClient(app).sign_in(employee.email, "a brand new passphrase").status_code == 200
    weak = admin_api.patch(f"{USERS}/{employee.id}", json={"password": "short"})
    assert weak.status_code == 422


def test_unknown_user_is_404(admin_api):
    assert admin_api.get(f"{USERS}/999").status_code == 404
    assert admin_api.patch(f"{USERS}/999", json={"title": "x"}).status_code == 404
    assert admin_api.post(f"{USERS}/999/deactivate").status_code == 404
    assert admin_api.post(f"{USERS}/999/reactivate").status_code == 404


# --- deactivating -----------------------------------------------------------------------------


def test_deactivate_and_reactivate(app, admin_api, admin, employee_api, employee):
    fresh()  # write from a fresh transaction: SQLite refuses a write on a stale snapshot
    _token, secret = do_create_token(db.session.get(User, employee.id), "script", None)
    db.session.commit()
    bearer = ApiClient(app, token=secret)
    assert bearer.get("/api/v1/me").status_code == 200

    response = admin_api.post(f"{USERS}/{employee.id}/deactivate")
    assert response.status_code == 200
    body = response.get_json()
    assert body["is_active"] is False and body["deactivated_at"] is not None
    # Signed out everywhere, tokens revoked, cannot sign in, hidden from the directory.
    assert employee_api.get("/api/v1/me").status_code == 401
    assert bearer.get("/api/v1/me").status_code == 401
    assert ApiClient(app).sign_in(employee.email).status_code == 401
    fresh()
    assert (
        db.session.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == employee.id))
        is not None
    )
    listed = admin_api.get("/api/v1/people").get_json()["items"]
    assert employee.id not in [p["id"] for p in listed]
    [event] = events("admin:user:deactivate")
    assert event.actor_id == admin.id and event.object_id == employee.id

    # Deactivating twice is harmless and is not logged again.
    assert admin_api.post(f"{USERS}/{employee.id}/deactivate").status_code == 200
    assert len(events("admin:user:deactivate")) == 1

    response = admin_api.post(f"{USERS}/{employee.id}/reactivate")
    assert response.status_code == 200
    body = response.get_json()
    assert body["is_active"] is True and body["deactivated_at"] is None
    assert ApiClient(app).sign_in(employee.email).status_code == 200
    # The revoked token stays revoked.
    assert bearer.get("/api/v1/me").status_code == 401
    assert len(events("admin:user:reactivate")) == 1
    assert admin_api.post(f"{USERS}/{employee.id}/reactivate").status_code == 200
    assert len(events("admin:user:reactivate")) == 1


def test_cannot_deactivate_self(admin_api, admin):
    response = admin_api.post(f"{USERS}/{admin.id}/deactivate")
    assert response.status_code == 409
    fresh()
    assert db.session.get(User, admin.id).is_active is True
    assert admin_api.get("/api/v1/me").status_code == 200


# --- non-administrators -----------------------------------------------------------------------


def test_non_admin_gets_403_on_every_admin_endpoint(employee_api, admin, employee):
    dept = make_department("ENG")
    before = (count(User), count(Department), admin_events())
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{USERS}/{admin.id}", {}),
        ("POST", USERS, {"json": {"email": "x@example.org", "display_name": "X"}}),
        ("PATCH", f"{USERS}/{employee.id}", {"json": {"roles": ["admin", "employee"]}}),
        ("PATCH", f"{USERS}/{admin.id}", {"json": {"title": "Demoted"}}),
        ("POST", f"{USERS}/{admin.id}/deactivate", {}),
        ("POST", f"{USERS}/{admin.id}/reactivate", {}),
        ("POST", DEPARTMENTS, {"json": {"code": "X", "name": "X"}}),
        ("PATCH", f"{DEPARTMENTS}/{dept}", {"json": {"name": "Renamed"}}),
        ("POST", "/api/v1/admin/imports", {"data": "email\n", "content_type": "text/csv"}),
    ]
    for method, path, kwargs in calls:
        response = employee_api.request(method, path, **kwargs)
        assert response.status_code == 403, (method, path, response.get_json())
        assert response.get_json()["type"].endswith("/forbidden")
    assert (count(User), count(Department), admin_events()) == before
    fresh()
    assert db.session.get(User, employee.id).roles == ["employee"]
    assert db.session.get(User, admin.id).title == ""
    assert db.session.get(Department, dept).name == "Eng"


# --- departments ------------------------------------------------------------------------------


def test_create_department(admin_api, admin):
    response = admin_api.post(DEPARTMENTS, json={"code": "ORG", "name": "Organisation"})
    assert response.status_code == 201
    org = response.get_json()
    assert org["code"] == "ORG" and org["parent_id"] is None and org["member_count"] == 0
    child = admin_api.post(
        DEPARTMENTS, json={"code": "ENG", "name": "Engineering", "parent_id": org["id"]}
    )
    assert child.status_code == 201 and child.get_json()["parent_id"] == org["id"]
    assert len(events("admin:department:create")) == 2


def test_duplicate_department_code_is_409(admin_api):
    make_department("ENG")
    response = admin_api.post(DEPARTMENTS, json={"code": "ENG", "name": "Engineering again"})
    assert response.status_code == 409
    assert count(Department) == 1


INVALID_DEPARTMENTS = [
    {"code": "", "name": "X"},
    {"code": "has space", "name": "X"},
    {"code": "X", "name": ""},
    {"code": "X", "name": "X", "parent_id": 999},
    {"code": "X" * 33, "name": "X"},
]


def test_invalid_department_is_422(admin_api):
    for body in INVALID_DEPARTMENTS:
        assert admin_api.post(DEPARTMENTS, json=body).status_code == 422, body
    assert count(Department) == 0


def test_rename_and_recode_department(admin_api):
    eng = make_department("ENG", "Engineering")
    make_department("OPS")
    response = admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"name": "Software", "code": "SW"})
    assert response.status_code == 200
    assert response.get_json()["name"] == "Software" and response.get_json()["code"] == "SW"
    [event] = events("admin:department:update")
    assert event.payload == {"fields": ["code", "name"]}
    taken = admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"code": "OPS"})
    assert taken.status_code == 409
    # Keeping its own code is no conflict, and no change.
    assert admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"code": "SW"}).status_code == 200
    assert len(events("admin:department:update")) == 1
    assert admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"name": None}).status_code == 422
    assert admin_api.patch(f"{DEPARTMENTS}/999", json={"name": "X"}).status_code == 404


def test_reparent_department_and_refuse_cycles(admin_api, employee):
    org = make_department("ORG")
    eng = make_department("ENG", parent_id=org)
    platform = make_department("PLAT", parent_id=eng)
    sales = make_department("SALES", parent_id=org)

    moved = admin_api.patch(f"{DEPARTMENTS}/{platform}", json={"parent_id": sales})
    assert moved.status_code == 200 and moved.get_json()["parent_id"] == sales
    fresh()
    assert db.session.get(Department, platform).parent_id == sales

    for department, parent in [
        (org, org),
        (org, eng),
        (org, platform),
        (sales, platform),
        (eng, eng),
    ]:
        response = admin_api.patch(f"{DEPARTMENTS}/{department}", json={"parent_id": parent})
        assert response.status_code == 409, (department, parent)
    fresh()
    assert [db.session.get(Department, d).parent_id for d in (org, eng, platform, sales)] == [
        None,
        org,
        sales,
        org,
    ]

    assert (
        admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"parent_id": None}).get_json()["parent_id"]
        is None
    )
    assert admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"parent_id": 999}).status_code == 422
    # Now that ENG is a root, ORG may go under it.
    assert admin_api.patch(f"{DEPARTMENTS}/{org}", json={"parent_id": eng}).status_code == 200


def test_department_list_counts_active_members(admin_api, employee_api, admin, employee):
    eng = make_department("ENG")
    sales = make_department("SALES")
    make_user("a@example.org", department_id=eng, password=None)
    make_user("b@example.org", department_id=eng, password=None)
    gone = make_user("c@example.org", department_id=eng, password=None)
    assert admin_api.post(f"{USERS}/{gone.id}/deactivate").status_code == 200
    assert (
        admin_api.patch(f"{USERS}/{employee.id}", json={"department_id": sales}).status_code == 200
    )

    listed = employee_api.get("/api/v1/departments")
    assert listed.status_code == 200
    counts = {d["code"]: d["member_count"] for d in listed.get_json()["items"]}
    assert counts == {"ENG": 2, "SALES": 1}
    renamed = admin_api.patch(f"{DEPARTMENTS}/{eng}", json={"name": "Engineering"})
    assert renamed.get_json()["member_count"] == 2
