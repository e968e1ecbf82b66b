"""Editing profiles: who may, what is validated, how skills are normalised, what is logged."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from esn.accounts.models import Role, Skill, User, UserSkill
from esn.extensions import db
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient, fresh, make_user

PROFILE_UPDATE = "account:profile:update"


def profile_events() -> list[UsageEvent]:
    fresh()
    return list(
        db.session.scalars(
            select(UsageEvent).where(UsageEvent.kind == PROFILE_UPDATE).order_by(UsageEvent.id)
        )
    )


def person(user_id: int) -> User:
    fresh()
    user = db.session.get(User, user_id)
    assert user is not None
    return user


def snapshot(user_id: int) -> dict[str, Any]:
    user = person(user_id)
    return {
        k: getattr(user, k)
        for k in ("display_name", "title", "location", "time_zone", "bio", "skills")
    }


def test_owner_edits_own_profile(employee_api, employee):
    changes = {
        "title": "Engineer",
        "location": "Rotterdam",
        "time_zone": "Europe/Amsterdam",
        "skills": ["Python", "SQL"],
        "bio": "Hello.\nSecond line.",
    }
    response = employee_api.patch(f"/api/v1/people/{employee.id}", json=changes)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    for key, value in changes.items():
        assert body[key] == value
    assert snapshot(employee.id) == {"display_name": "Erin Employee", **changes}
    [event] = profile_events()
    assert event.actor_id == employee.id
    assert (
        event.object_type == "user"
        and event.object_id == employee.id
        and event.owner_id == employee.id
    )
    assert event.payload == {"fields": ["bio", "location", "skills", "time_zone", "title"]}


def test_event_lists_only_the_fields_that_changed(employee_api, employee):
    employee_api.patch(f"/api/v1/people/{employee.id}", json={"title": "Engineer"})
    response = employee_api.patch(
        f"/api/v1/people/{employee.id}", json={"title": "Engineer", "location": "Delft", "bio": ""}
    )
    assert response.status_code == 200
    assert [e.payload for e in profile_events()] == [
        {"fields": ["title"]},
        {"fields": ["location"]},
    ]


def test_no_event_when_nothing_changed(employee_api, employee):
    for body in (
        {},
        {"title": "", "bio": "", "time_zone": "UTC"},
        {"skills": []},
        {"display_name": "Erin Employee"},
    ):
        response = employee_api.patch(f"/api/v1/people/{employee.id}", json=body)
        assert response.status_code == 200, body
    assert profile_events() == []


def test_invalid_time_zone_is_422_and_changes_nothing(employee_api, employee):
    before = snapshot(employee.id)
    for time_zone in ["Mars/Olympus_Mons", "", "UTC+99", "../../etc/passwd", "europe/amsterdam"]:
        response = employee_api.patch(
            f"/api/v1/people/{employee.id}", json={"title": "Boss", "time_zone": time_zone}
        )
        assert response.status_code == 422, time_zone
        assert any(e["pointer"] == "/time_zone" for e in response.get_json()["errors"])
    assert snapshot(employee.id) == before
    assert profile_events() == []


def test_null_for_a_field_is_422(employee_api, employee):
    before = snapshot(employee.id)
    for field in ["display_name", "title", "location", "time_zone", "skills", "bio"]:
        # Alongside a valid change, which must not be applied either.
        body: dict[str, Any] = {"bio": "X"} if field != "bio" else {"title": "X"}
        body[field] = None
        response = employee_api.patch(f"/api/v1/people/{employee.id}", json=body)
        assert response.status_code == 422, field
        assert response.get_json()["errors"][0]["pointer"] == f"/{field}"
    assert snapshot(employee.id) == before
    assert profile_events() == []


INVALID_EDITS = [
    {"email": "new@example.org"},
    {"roles": ["admin"]},
    {"is_bot": True},
    {"department_id": 1},
    {"title": "two\nlines"},
    {"display_name": ""},
    {"skills": [""]},
    {"skills": ["x" * 81]},
    {"skills": [f"skill {i}" for i in range(51)]},
    {"bio": "x" * 5001},
]


def test_invalid_or_foreign_fields_are_422(employee_api, employee):
    before = snapshot(employee.id)
    for body in INVALID_EDITS:
        response = employee_api.patch(f"/api/v1/people/{employee.id}", json=body)
        assert response.status_code == 422, body
    assert snapshot(employee.id) == before
    assert not person(employee.id).has_role(Role.admin)
    assert profile_events() == []


def test_another_employee_gets_403_and_nothing_changes(app, employee):
    other = make_user("olaf@example.org", display_name="Olaf Other")
    client = ApiClient(app)
    assert client.sign_in(other.email).status_code == 200
    before = snapshot(employee.id)
    response = client.patch(
        f"/api/v1/people/{employee.id}", json={"title": "Pwned", "skills": ["Evil"]}
    )
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/forbidden")
    assert snapshot(employee.id) == before
    assert profile_events() == []
    assert db.session.scalar(select(func.count()).select_from(Skill)) == 0


def test_admin_may_edit_anyone(admin_api, admin, employee):
    response = admin_api.patch(
        f"/api/v1/people/{employee.id}", json={"display_name": "Erin E. Employee", "title": "Lead"}
    )
    assert response.status_code == 200
    assert response.get_json()["display_name"] == "Erin E. Employee"
    assert person(employee.id).title == "Lead"
    [event] = profile_events()
    assert event.actor_id == admin.id and event.owner_id == employee.id
    assert event.payload == {"fields": ["display_name", "title"]}


def test_admin_may_edit_a_deactivated_person(admin_api, employee):
    from esn.accounts.actions import do_deactivate_user

    fresh()
    do_deactivate_user(None, db.session.get(User, employee.id))
    db.session.commit()
    response = admin_api.patch(f"/api/v1/people/{employee.id}", json={"title": "Former"})
    assert response.status_code == 200
    assert person(employee.id).title == "Former"


def test_editing_an_unknown_person_is_404(employee_api):
    assert employee_api.patch("/api/v1/people/999999", json={"title": "x"}).status_code == 404


def test_external_person_edits_own_profile_only(app, employee):
    guest = make_user("guest@example.org", display_name="Gus Guest", is_external=True)
    client = ApiClient(app)
    assert client.sign_in(guest.email).status_code == 200
    assert client.patch(f"/api/v1/people/{guest.id}", json={"title": "Partner"}).status_code == 200
    # Not readable to them, so not even its existence is confirmed.
    assert client.patch(f"/api/v1/people/{employee.id}", json={"title": "x"}).status_code == 404
    assert person(employee.id).title == ""


def test_skills_are_normalised_and_deduplicated(employee_api, employee):
    response = employee_api.patch(
        f"/api/v1/people/{employee.id}",
        json={"skills": ["  Data   Science ", "python", "PYTHON", "Data Science", "Python\t"]},
    )
    assert response.status_code == 200
    assert response.get_json()["skills"] == ["Data Science", "python"]
    fresh()
    assert sorted(db.session.scalars(select(Skill.name))) == ["data science", "python"]
    assert db.session.scalar(select(func.count()).select_from(UserSkill)) == 2
    [event] = profile_events()
    assert event.payload == {"fields": ["skills"]}

    # The same set written differently is no change.
    again = employee_api.patch(
        f"/api/v1/people/{employee.id}", json={"skills": ["PYTHON", "data science"]}
    )
    assert again.status_code == 200
    assert len(profile_events()) == 1


def test_skills_are_shared_and_keep_their_first_label(app, employee_api, employee):
    make_user("anna@example.org", display_name="Anna", skills=["PostgreSQL"], password=None)
    response = employee_api.patch(f"/api/v1/people/{employee.id}", json={"skills": ["postgresql"]})
    assert response.get_json()["skills"] == ["PostgreSQL"]
    fresh()
    assert db.session.scalar(select(func.count()).select_from(Skill)) == 1


def test_replacing_skills_keeps_the_overlap(employee_api, employee):
    url = f"/api/v1/people/{employee.id}"
    assert employee_api.patch(url, json={"skills": ["Go", "Rust", "SQL"]}).status_code == 200
    response = employee_api.patch(url, json={"skills": ["sql", "Haskell", "go"]})
    assert response.status_code == 200
    assert response.get_json()["skills"] == ["Go", "Haskell", "SQL"]
    assert person(employee.id).skills == ["Go", "Haskell", "SQL"]
    assert employee_api.patch(url, json={"skills": []}).get_json()["skills"] == []
    assert person(employee.id).skills == []
    assert [e.payload for e in profile_events()] == [{"fields": ["skills"]}] * 3


def test_edited_skill_is_found_in_the_directory(employee_api, employee):
    employee_api.patch(f"/api/v1/people/{employee.id}", json={"skills": ["Machine Learning"]})
    found = employee_api.get(
        "/api/v1/people", query_string={"skill": "machine learning"}
    ).get_json()
    assert [p["id"] for p in found["items"]] == [employee.id]
