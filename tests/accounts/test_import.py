"""The HR import of departments and people (esn.accounts.importer): its semantics, through the
action, the API (POST /api/v1/admin/imports) and, for 10,000 people, the CLI."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from esn.accounts.actions import do_create_token
from esn.accounts.importer import import_people
from esn.accounts.models import ApiToken, User
from esn.accounts.schemas import ImportReport
from esn.clock import frozen_at
from esn.database import write_intent
from esn.directory.models import Department, DepartmentAssignment
from esn.extensions import Base, db
from esn.usage.models import UsageEvent
from tests.conftest import ApiClient, fresh, make_user

IMPORTS = "/api/v1/admin/imports"
APPLY = "admin:import:apply"
COLUMNS = [
    "employee_number", "email", "display_name", "department_code", "department_name",
    "parent_department_code", "title", "location", "bio", "time_zone", "skills", "roles",
    "is_external", "is_bot", "active",
]  # fmt: skip

# A small organisation: children before their parents, a department described on one row and
# used on another, an external without a department, roles and skills in every form.
ORG: list[dict[str, str]] = [
    {"employee_number": "1001", "email": "Anna@Example.org", "display_name": "Anna de Vries",
     "department_code": "RND-LAB-EU", "department_name": "Lab Europe",
     "parent_department_code": "RND-LAB", "title": "Chemist", "location": "Delft",
     "time_zone": "Europe/Amsterdam", "skills": "HPLC; Python"},
    {"employee_number": "1002", "email": "bo@example.org", "display_name": "Bo Jansen",
     "department_code": "RND-LAB", "department_name": "Laboratory", "parent_department_code": "RND",
     "title": "Lab lead", "roles": "employee;innovation_manager"},
    {"employee_number": "1003", "email": "cas@example.org", "display_name": "Cas Smit",
     "department_code": "RND", "department_name": "Research & Development", "roles": "employee;hr",
     "bio": "Line one,\nline two."},
    {"employee_number": "1004", "email": "dee@partner.example", "display_name": "Dee Partner",
     "is_external": "yes"},
    {"employee_number": "1005", "email": "eve@example.org", "display_name": "Eve Analyst",
     "department_code": "RND-LAB-EU", "skills": "python;hplc;Mass  spectrometry"},
]  # fmt: skip


def to_csv(rows: list[dict[str, str]], columns: list[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def run(text: str, **options: Any) -> ImportReport:
    """Import as the CLI does: in one transaction, committed only when applied."""
    db.session.rollback()
    with write_intent():
        report = import_people(text, actor=options.pop("actor", None), **options)
        if report.applied:
            db.session.commit()
        else:
            db.session.rollback()
    return report


def table_counts() -> dict[str, int]:
    fresh()
    return {
        table.name: int(db.session.scalar(select(func.count()).select_from(table)) or 0)
        for table in Base.metadata.sorted_tables
    }


def person(email: str) -> User:
    fresh()
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def departments() -> dict[str, tuple[str, str | None]]:
    """code -> (name, parent code)."""
    fresh()
    rows = list(db.session.scalars(select(Department)))
    code_of = {d.id: d.code for d in rows}
    return {d.code: (d.name, code_of.get(d.parent_id) if d.parent_id else None) for d in rows}


def history(user_id: int) -> list[tuple[str, datetime, datetime | None]]:
    fresh()
    rows = db.session.execute(
        select(Department.code, DepartmentAssignment.started_at, DepartmentAssignment.ended_at)
        .join(Department, Department.id == DepartmentAssignment.department_id)
        .where(DepartmentAssignment.user_id == user_id)
        .order_by(DepartmentAssignment.id)
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def import_events() -> list[UsageEvent]:
    fresh()
    return list(db.session.scalars(select(UsageEvent).where(UsageEvent.kind == APPLY)))


def errors_of(report: Any) -> set[tuple[int, str | None]]:
    errors = report["errors"] if isinstance(report, dict) else report.model_dump()["errors"]
    return {(e["line"], e["field"]) for e in errors}


# --- creating ----------------------------------------------------------------------------------


def test_creates_departments_with_parents_in_any_order_and_people(app):
    report = run(to_csv(ORG))

    assert report.applied and not report.errors
    assert (report.departments_created, report.users_created, report.users_updated) == (3, 5, 0)
    assert departments() == {
        "RND": ("Research & Development", None),
        "RND-LAB": ("Laboratory", "RND"),
        "RND-LAB-EU": ("Lab Europe", "RND-LAB"),
    }
    assert [(c.action, c.key, c.line) for c in report.changes] == [
        ("department_created", "RND", 4),
        ("department_created", "RND-LAB", 3),
        ("department_created", "RND-LAB-EU", 2),
        ("created", "anna@example.org", 2),
        ("created", "bo@example.org", 3),
        ("created", "cas@example.org", 4),
        ("created", "dee@partner.example", 6),  # Cas's bio spans two lines
        ("created", "eve@example.org", 7),
    ]

    anna = person("anna@example.org")  # e-mail addresses are stored lower-cased
    assert anna.employee_number == "1001" and anna.display_name == "Anna de Vries"
    assert anna.department is not None and anna.department.code == "RND-LAB-EU"
    assert (anna.title, anna.location, anna.time_zone) == ("Chemist", "Delft", "Europe/Amsterdam")
    assert anna.skills == ["HPLC", "Python"]
    assert anna.roles == ["employee"]  # an empty roles cell: the default
    assert anna.password_hash is None and anna.is_active and not anna.is_external
    assert person("bo@example.org").roles == ["employee", "innovation_manager"]
    cas = person("cas@example.org")
    assert cas.roles == ["employee", "hr"] and cas.bio == "Line one,\nline two."
    dee = person("dee@partner.example")
    assert dee.is_external and dee.roles == [] and dee.department_id is None
    assert dee.time_zone == "UTC"
    eve = person("eve@example.org")
    # Skills are one row per skill whatever their spelling; the first spelling is the label.
    assert eve.skills == ["HPLC", "Mass spectrometry", "Python"]

    assert [code for code, _, ended in history(anna.id) if ended is None] == ["RND-LAB-EU"]
    assert history(dee.id) == []
    assert table_counts()["department_assignments"] == 4
    assert table_counts()["skills"] == 3


def test_second_run_of_the_same_file_changes_nothing(app):
    first = run(to_csv(ORG))
    assert first.applied
    before = table_counts()
    updated_at = person("anna@example.org").updated_at

    second = run(to_csv(ORG))

    assert second.applied and not second.errors and second.changes == []
    assert second.users_unchanged == len(ORG)
    assert (second.users_created, second.users_updated, second.users_deactivated) == (0, 0, 0)
    assert (second.departments_created, second.departments_updated) == (0, 0)
    assert table_counts() == before  # not a single row, not even a usage event
    assert person("anna@example.org").updated_at == updated_at


def test_column_absent_leaves_the_field_alone_and_empty_cell_clears_it(app):
    run(to_csv(ORG))
    only_names = [{"email": r["email"], "display_name": r["display_name"]} for r in ORG]
    report = run(to_csv(only_names, ["email", "display_name"]))
    assert report.users_unchanged == len(ORG) and report.changes == []

    cleared = [{**ORG[0], "title": "", "skills": "", "time_zone": ""}]
    report = run(to_csv(cleared))
    assert [(c.key, c.fields) for c in report.changes] == [
        ("anna@example.org", ["skills", "title"])
    ]
    anna = person("anna@example.org")
    assert (anna.title, anna.skills, anna.time_zone) == ("", [], "Europe/Amsterdam")


# --- matching ----------------------------------------------------------------------------------


def test_matches_by_employee_number_first_then_by_email(app):
    known = make_user("old@example.org", employee_number="2001", display_name="Pat Known")
    unnumbered = make_user("nonum@example.org", display_name="Nonum")
    users_before = table_counts()["users"]
    rows = [
        {"employee_number": "2001", "email": "new@example.org", "display_name": "Pat Known"},
        {"employee_number": "2002", "email": "nonum@example.org", "display_name": "Nonum"},
    ]

    report = run(to_csv(rows, ["employee_number", "email", "display_name"]))

    assert report.applied and report.users_created == 0 and report.users_updated == 2
    assert [(c.line, c.key, c.fields) for c in report.changes] == [
        (2, "old@example.org", ["email"]),
        (3, "nonum@example.org", ["employee_number"]),
    ]
    assert person("new@example.org").id == known.id
    assert person("nonum@example.org").id == unnumbered.id
    assert person("nonum@example.org").employee_number == "2002"
    assert table_counts()["users"] == users_before


def test_an_address_of_someone_else_is_invalid(app):
    make_user("a@example.org", employee_number="3001")
    make_user("b@example.org", employee_number="3002")
    make_user("c@example.org")
    before = table_counts()
    rows = [
        {"employee_number": "3001", "email": "c@example.org", "display_name": "A"},
        {"employee_number": "3003", "email": "a@example.org", "display_name": "New"},
        {"employee_number": "3002", "email": "b2@example.org", "display_name": "B"},
        {"employee_number": "", "email": "b@example.org", "display_name": "B again"},
    ]

    report = run(to_csv(rows, ["employee_number", "email", "display_name"]))

    assert not report.applied
    assert errors_of(report) == {(2, "email"), (3, "email"), (5, None)}
    assert "another person" in report.errors[0].message
    assert "line 4" in report.errors[2].message  # B is matched twice
    assert table_counts() == before


# --- departments ---------------------------------------------------------------------------------


def test_department_moves_are_recorded_in_the_history(app):
    rows = [
        {"employee_number": "1", "email": "mover@example.org", "display_name": "Mover",
         "department_code": "A", "department_name": "Alpha"},
        {"employee_number": "2", "email": "leaver@example.org", "display_name": "Leaver",
         "department_code": "A"},
        {"employee_number": "3", "email": "stayer@example.org", "display_name": "Stayer",
         "department_code": "B", "department_name": "Beta"},
    ]  # fmt: skip
    start, later = datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 3, 2, 9, tzinfo=UTC)
    with frozen_at(start):
        run(to_csv(rows))
    rows[0].update(department_code="B", department_name="")
    rows[1]["department_code"] = ""  # no department any more

    with frozen_at(later):
        report = run(to_csv(rows))

    assert report.users_updated == 2 and report.users_unchanged == 1
    assert {c.key: c.fields for c in report.changes} == {
        "mover@example.org": ["department_code"],
        "leaver@example.org": ["department_code"],
    }
    mover, leaver, stayer = (person(f"{n}@example.org") for n in ("mover", "leaver", "stayer"))
    assert mover.department is not None and mover.department.code == "B"
    assert history(mover.id) == [("A", start, later), ("B", later, None)]
    assert leaver.department_id is None
    assert history(leaver.id) == [("A", start, later)]
    assert history(stayer.id) == [("B", start, None)]


def test_departments_are_renamed_and_moved(app):
    run(to_csv(ORG))
    rows = [
        {**ORG[2], "department_name": "R&D", "parent_department_code": "HQ"},
        {"email": "hq@example.org", "display_name": "Head", "department_code": "HQ",
         "department_name": "Headquarters"},
    ]  # fmt: skip

    report = run(to_csv(rows))

    assert (report.departments_created, report.departments_updated) == (1, 1)
    assert [(c.action, c.key, c.fields) for c in report.changes[:2]] == [
        ("department_created", "HQ", []),
        ("department_updated", "RND", ["name", "parent"]),
    ]
    assert departments()["RND"] == ("R&D", "HQ")
    assert departments()["HQ"] == ("Headquarters", None)
    assert run(to_csv(rows)).changes == []


def test_a_department_described_differently_on_two_rows_is_invalid(app):
    text = to_csv([
        {"email": "a@example.org", "display_name": "A", "department_code": "OPS",
         "department_name": "Operations"},
        {"email": "b@example.org", "display_name": "B", "department_code": "OPS",
         "department_name": "Ops"},
        {"email": "c@example.org", "display_name": "C", "department_name": "Orphan"},
        {"email": "d@example.org", "display_name": "D", "department_code": "OPS",
         "is_external": "maybe"},
    ])  # fmt: skip
    report = run(text)
    assert errors_of(report) == {(3, "department_name"), (4, "department_code"), (5, "is_external")}
    assert "'Operations'" in report.errors[0].message


def test_nul_characters_are_refused_everywhere(app):
    columns = ["email", "display_name", "title", "bio", "skills", "employee_number"]
    rows = [{"email": f"p{n}@example.org", "display_name": "P"} for n in range(5)]
    for row, column in zip(rows, columns[1:], strict=True):
        row[column] = "bad\x00value"
    report = run(to_csv(rows, columns))
    assert errors_of(report) == {(n + 2, column) for n, column in enumerate(columns[1:])}


# --- roles ---------------------------------------------------------------------------------------


def test_roles_follow_the_file_but_the_admin_role_stays(app):
    boss = make_user("boss@example.org", roles=["admin", "employee"], employee_number="1")
    mod = make_user("mod@example.org", roles=["employee", "moderator"], employee_number="2")
    rows = [
        {"employee_number": "1", "email": boss.email, "display_name": "Boss", "roles": "hr"},
        {"employee_number": "2", "email": mod.email, "display_name": "Mod", "roles": ""},
    ]
    report = run(to_csv(rows, ["employee_number", "email", "display_name", "roles"]))
    assert {c.key: c.fields for c in report.changes} == {
        boss.email: ["roles"],
        mod.email: ["roles"],
    }
    assert person(boss.email).roles == ["admin", "hr"]
    assert person(mod.email).roles == ["employee"]  # an empty cell: the default
    assert run(to_csv(rows, ["employee_number", "email", "display_name", "roles"])).changes == []


# --- dry run -------------------------------------------------------------------------------------


def test_dry_run_reports_exactly_what_would_change_and_writes_nothing(app):
    run(to_csv(ORG))
    cas = person("cas@example.org")
    do_create_token(cas, "laptop", None)
    db.session.commit()
    before = table_counts()
    rows = [
        {**ORG[0], "title": "Senior chemist", "roles": "employee;moderator"},
        *ORG[1:2],
        *ORG[3:],
        {"employee_number": "1006", "email": "fay@example.org", "display_name": "Fay",
         "department_code": "OPS", "department_name": "Operations"},
    ]  # fmt: skip

    report = run(to_csv(rows), dry_run=True, deactivate_missing=True)

    assert report.dry_run and not report.applied and not report.errors
    assert report.model_dump(include={
        "departments_created", "departments_updated", "users_created", "users_updated",
        "users_unchanged", "users_deactivated", "rows_skipped",
    }) == {
        "departments_created": 1, "departments_updated": 0, "users_created": 1,
        "users_updated": 1, "users_unchanged": 3, "users_deactivated": 1, "rows_skipped": 0,
    }  # fmt: skip
    assert [(c.line, c.action, c.key, c.fields) for c in report.changes] == [
        (6, "department_created", "OPS", []),
        (2, "updated", "anna@example.org", ["roles", "title"]),
        (6, "created", "fay@example.org", []),
        (None, "deactivated", "cas@example.org", ["active"]),
    ]
    assert table_counts() == before  # every table, the usage log included
    assert person("anna@example.org").title == "Chemist"
    assert person("cas@example.org").is_active


# --- invalid rows --------------------------------------------------------------------------------

INVALID = (
    "employee_number,email,display_name,department_code,department_name,time_zone,roles,bio\r\n"
    '1,ok@example.org,Okay,OPS,Operations,,,"a bio on\r\ntwo lines"\r\n'  # lines 2-3
    "2,not-an-email,Bad Mail,OPS,,,,\r\n"  # 4
    "3,nodept@example.org,No Dept,NOPE,,,,\r\n"  # 5
    "4,tz@example.org,Bad Zone,OPS,,Mars/Olympus,,\r\n"  # 6
    "1,dup@example.org,Duplicate,OPS,,,,\r\n"  # 7
    "5,boss@example.org,Would Be Admin,OPS,,,employee;admin,\r\n"  # 8
    "\r\n"  # 9: blank lines are ignored
    "6,short@example.org,Too Few Cells\r\n"  # 10
    "7,fine@example.org,Fine,OPS,,,,\r\n"  # 11
)


def test_invalid_rows_are_reported_with_their_lines_and_nothing_is_written(app):
    make_user("admin@example.org", roles=["admin", "employee"])
    before = table_counts()

    report = run(INVALID)

    assert not report.applied and report.rows == 8
    assert errors_of(report) == {
        (4, "email"), (5, "department_code"), (6, "time_zone"), (7, "employee_number"),
        (8, "roles"), (10, None),
    }  # fmt: skip
    messages = {e.line: e.message for e in report.errors}
    assert "unknown department NOPE" in messages[5]
    assert "also on line 2" in messages[7]
    assert "admin" in messages[8]
    assert "3 cells" in messages[10]
    # The counts say what the valid rows would do.
    assert (report.users_created, report.departments_created) == (2, 1)
    assert table_counts() == before


def test_unknown_column_is_refused_before_reading_any_row(app):
    before = table_counts()
    report = run("email,display_name,favourite_colour\r\nx@example.org,X,green\r\n")
    assert not report.applied and report.rows == 0
    assert errors_of(report) == {(1, None)}
    assert "favourite_colour" in report.errors[0].message
    assert run("").errors[0].line == 1
    assert "missing columns: display_name" in run("email\r\nx@example.org\r\n").errors[0].message
    assert table_counts() == before


def test_a_cycle_of_parent_departments_is_invalid(app):
    text = (
        "email,display_name,department_code,department_name,parent_department_code\r\n"
        "x@example.org,X,X,Dept X,Y\r\n"  # 2
        "y@example.org,Y,Y,Dept Y,X\r\n"  # 3
        "z@example.org,Z,Z,Dept Z,X\r\n"  # 4: under the cycle
        "z2@example.org,Z2,Z,,\r\n"  # 5: in the department under the cycle
        "w@example.org,W,W,Dept W,\r\n"  # 6: fine
    )
    before = table_counts()

    report = run(text)

    assert not report.applied
    assert errors_of(report) == {
        (2, "parent_department_code"), (3, "parent_department_code"),
        (4, "parent_department_code"), (5, "department_code"),
    }  # fmt: skip
    assert "X > Y > X" in report.errors[0].message or "Y > X > Y" in report.errors[0].message
    assert table_counts() == before

    skipped = run(text, skip_invalid=True)
    assert skipped.applied and skipped.rows_skipped == 4 and skipped.users_created == 1
    assert departments() == {"W": ("Dept W", None)}

    # A cycle through departments that exist: T is under S; the file puts S under T.
    run("email,display_name,department_code,department_name,parent_department_code\r\n"
        "s@example.org,S,S,Dept S,\r\nt@example.org,T,T,Dept T,S\r\n")  # fmt: skip
    report = run(
        "email,display_name,department_code,parent_department_code\r\ns@example.org,S,S,T\r\n"
    )
    assert errors_of(report) == {(2, "parent_department_code")}
    assert "cycle" in report.errors[0].message


def test_with_skip_invalid_the_valid_rows_are_written(app):
    report = run(INVALID, skip_invalid=True)

    assert report.applied and len(report.errors) == 6 and report.rows_skipped == 6
    assert (report.users_created, report.departments_created) == (2, 1)
    fresh()
    assert sorted(db.session.scalars(select(User.email))) == ["fine@example.org", "ok@example.org"]
    assert person("ok@example.org").bio == "a bio on\r\ntwo lines"
    (event,) = import_events()
    assert event.payload["rows_skipped"] == 6 and event.payload["users_created"] == 2


def test_skip_invalid_skips_every_row_of_an_unknown_department(app):
    text = to_csv([
        {"email": "a@example.org", "display_name": "A", "department_code": "GHOST"},
        {"email": "b@example.org", "display_name": "B", "department_code": "GHOST"},
        {"email": "c@example.org", "display_name": "C", "department_code": ""},
    ])  # fmt: skip
    report = run(text, skip_invalid=True)
    assert errors_of(report) == {(2, "department_code"), (3, "department_code")}
    assert report.users_created == 1 and departments() == {}


# --- deactivation --------------------------------------------------------------------------------


def test_deactivate_missing_deactivates_people_absent_from_the_file(app):
    admin = make_user("admin@example.org", roles=["admin", "employee"])  # no employee number
    bot = make_user("bot@example.org", employee_number="9999", is_bot=True)
    run(to_csv(ORG))
    bo, cas = person("bo@example.org"), person("cas@example.org")
    do_create_token(bo, "laptop", None)
    db.session.commit()
    epoch = bo.auth_epoch
    # Bo is absent; Cas is present on an invalid row (a typo must never deactivate anyone).
    rows = [ORG[0], {**ORG[2], "time_zone": "Nowhere/Town"}, *ORG[3:]]

    report = run(to_csv(rows), skip_invalid=True, deactivate_missing=True)

    assert report.applied and report.users_deactivated == 1
    assert errors_of(report) == {(3, "time_zone")}
    assert [(c.action, c.key) for c in report.changes] == [("deactivated", "bo@example.org")]
    bo = person("bo@example.org")
    assert not bo.is_active and bo.deactivated_at is not None and bo.auth_epoch == epoch + 1
    fresh()
    assert db.session.scalar(select(ApiToken.revoked_at).where(ApiToken.user_id == bo.id))
    assert person("cas@example.org").is_active and cas.is_active
    assert person(admin.email).is_active and person(bot.email).is_active

    # Without the option nobody is deactivated; an 'active' column does it per row.
    report = run(to_csv([{**ORG[0], "active": "no"}]))
    assert report.users_deactivated == 0
    assert [(c.key, c.fields) for c in report.changes] == [("anna@example.org", ["active"])]
    assert not person("anna@example.org").is_active
    assert person("cas@example.org").is_active
    report = run(to_csv([{**ORG[0], "active": ""}]))  # empty is true: back again
    anna = person("anna@example.org")
    assert anna.is_active and anna.deactivated_at is None


def test_the_importing_person_is_never_deactivated(app):
    hr = make_user("hr@example.org", roles=["hr"], employee_number="7000")
    report = run(to_csv(ORG), deactivate_missing=True, actor=hr)
    assert report.users_deactivated == 0 and person(hr.email).is_active


# --- the usage event -----------------------------------------------------------------------------


def test_one_usage_event_per_applied_import_with_the_counts(app):
    run(INVALID)  # refused
    run(to_csv(ORG), dry_run=True)
    assert import_events() == []

    run(to_csv(ORG))
    (event,) = import_events()
    assert event.actor_id is None and event.object_type == "import"
    assert event.payload == {
        "departments_created": 3, "departments_updated": 0, "users_created": 5,
        "users_updated": 0, "users_deactivated": 0, "rows_skipped": 0,
    }  # fmt: skip
    run(to_csv(ORG))  # nothing to change: nothing written
    assert len(import_events()) == 1
    run(to_csv([{**ORG[0], "title": "Senior chemist"}]))
    assert [e.payload["users_updated"] for e in import_events()] == [0, 1]


# --- the API -------------------------------------------------------------------------------------


def post_csv(client: ApiClient, text: str, query: str = "", **kw: Any) -> Any:
    kw.setdefault("content_type", "text/csv")
    return client.post(IMPORTS + query, data=text.encode(), **kw)


def test_api_import_by_an_administrator(app, admin_api, admin):
    response = post_csv(admin_api, to_csv(ORG))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["applied"] and body["users_created"] == 5 and body["departments_created"] == 3
    (event,) = import_events()
    assert event.actor_id == admin.id
    assert person("anna@example.org").department is not None


def test_api_import_by_hr(app):
    make_user("hr@example.org", roles=["employee", "hr"])
    client = ApiClient(app)
    assert client.sign_in("hr@example.org").status_code == 200
    response = post_csv(client, "\ufeff" + to_csv(ORG))  # with the BOM spreadsheets write
    assert response.status_code == 200 and response.get_json()["users_created"] == 5


def test_api_import_is_refused_to_an_employee(app, employee_api):
    before = table_counts()
    response = post_csv(employee_api, to_csv(ORG))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert table_counts() == before


def test_api_import_needs_csv(app, admin_api):
    response = admin_api.post(IMPORTS, json={"email": "x@example.org"})
    assert response.status_code == 415
    assert response.mimetype == "application/problem+json"


def test_api_invalid_rows_are_422_with_the_report(app, admin_api):
    before = table_counts()
    response = post_csv(admin_api, INVALID)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"].endswith("/import-invalid")
    assert not body["report"]["applied"]
    assert errors_of(body["report"]) == errors_of(run(INVALID))
    assert table_counts() == before

    response = post_csv(admin_api, INVALID, "?skip_invalid=true")
    assert response.status_code == 200 and response.get_json()["users_created"] == 2


def test_api_dry_run(app, admin_api):
    before = table_counts()
    response = post_csv(admin_api, to_csv(ORG), "?dry_run=true")
    assert response.status_code == 200
    body = response.get_json()
    assert body["dry_run"] and not body["applied"] and body["users_created"] == 5
    assert len(body["changes"]) == 8
    assert table_counts() == before
    # A dry run of an invalid file is a report, not an error.
    response = post_csv(admin_api, INVALID, "?dry_run=true")
    assert response.status_code == 200 and len(response.get_json()["errors"]) == 6


# --- 10,000 people through the CLI ---------------------------------------------------------------


def hr_export(people: int, seed: int = 7) -> str:
    """A realistic export: 8 divisions of 6 departments, each row naming its department and
    parent as HR systems do; skills; a few HR people, moderators and externals."""
    rng = random.Random(seed)
    skills = [f"skill {n}" for n in range(300)]
    divisions = [(f"D{d}", "") for d in range(8)]
    codes = divisions + [(f"D{d}-{s}", f"D{d}") for d in range(8) for s in range(6)]
    rows = []
    for n in range(people):
        code, parent = divisions[n] if n < len(divisions) else rng.choice(codes)
        rows.append({
            "employee_number": f"E{n:06d}",
            "email": f"person{n}@example.org",
            "display_name": f"Person {n}",
            "department_code": code,
            "department_name": f"Department {code}",
            "parent_department_code": parent,
            "title": rng.choice(["Engineer", "Analyst", "Manager", ""]),
            "location": rng.choice(["Delft", "Lyon", "Porto"]),
            "time_zone": rng.choice(["Europe/Amsterdam", "Europe/Paris", "Europe/Lisbon", ""]),
            "skills": ";".join(rng.sample(skills, rng.randint(0, 5))),
            "roles": rng.choice(["", "", "", "", "employee;moderator", "employee;hr"]),
            "is_external": "yes" if n % 50 == 49 else "",
        })  # fmt: skip
    return to_csv(rows)


def test_ten_thousand_people_through_the_cli(app, tmp_path: Path):
    path = tmp_path / "people.csv"
    path.write_text(hr_export(10_000), encoding="utf-8")
    runner = app.test_cli_runner()

    first = runner.invoke(args=["users", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "applied: 10000 rows" in first.output and "people created 10000" in first.output
    assert table_counts()["users"] == 10_000
    counts = table_counts()

    second = runner.invoke(args=["users", "import", str(path)])
    assert second.exit_code == 0, second.output
    assert "people created 0, updated 0, unchanged 10000" in second.output
    assert second.output.rstrip().endswith("no changes")
    assert table_counts() == counts
