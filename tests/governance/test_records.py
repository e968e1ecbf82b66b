"""The governance records through the API: who may read and write them, process scopes,
ambitions, the roadmap, evidence with four eyes, the policy and netiquette with
acknowledgements asked again after a new version, training (API and CSV import), the
escalation declaration and the privacy record."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.directory.actions import do_create_department
from esn.extensions import db
from esn.governance.models import TrainingRecord
from esn.groups.actions import do_create_group, do_join
from esn.groups.models import JoinPolicy, Visibility
from esn.processes import Process
from esn.usage.models import UsageEvent
from tests.api.helpers import assert_problem, snapshot
from tests.conftest import ApiClient, fresh, make_user

G = "/api/v1/governance"
# A fixed "today" for every test: dates in the past and future stay where they are.
NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


def iso(moment: datetime) -> str:
    """A time as the API writes it."""
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def clock() -> Any:
    with frozen_at(NOW) as c:
        yield c


def _client(app: Flask, email: str, **fields: Any) -> tuple[User, ApiClient]:
    user = make_user(email, **fields)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return user, client


@pytest.fixture
def lead(app: Flask) -> tuple[User, ApiClient]:
    return _client(
        app, "lena@example.org", roles=["employee", "governance_lead"], display_name="Lena Lead"
    )


@pytest.fixture
def lead2(app: Flask) -> tuple[User, ApiClient]:
    return _client(
        app, "gus@example.org", roles=["employee", "governance_lead"], display_name="Gus Second"
    )


def _group(actor: User, name: str, process: Process, **fields: Any) -> Any:
    settings = {"visibility": Visibility.public, "join_policy": JoinPolicy.open, **fields}
    return do_create_group(actor, {"name": name, "process": process, **settings})


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def pointers(problem: dict[str, Any]) -> set[str]:
    return {e["pointer"] for e in problem.get("errors", [])}


def kinds_recorded() -> list[str]:
    fresh()
    return list(
        db.session.scalars(
            select(UsageEvent.kind)
            .where(UsageEvent.kind.like("governance:%"))
            .order_by(UsageEvent.id)
        )
    )


# --- permissions --------------------------------------------------------------------------------

GOVERNANCE_ONLY: list[tuple[str, str, Any]] = [
    ("GET", "/scopes", None),
    ("GET", "/scopes/marketing", None),
    ("PUT", "/scopes/marketing", {}),
    ("GET", "/ambitions", None),
    ("POST", "/ambitions", {"process": "service", "target_level": 3, "target_date": "2027-01-01"}),
    ("GET", "/roadmap", None),
    ("POST", "/roadmap", {"process": "service", "deliverable": "x", "due_on": "2027-01-01"}),
    ("GET", "/roadmap/1", None),
    ("PATCH", "/roadmap/1", {"status": "done"}),
    ("DELETE", "/roadmap/1", None),
    ("GET", "/evidence", None),
    ("POST", "/evidence", {"gate": "policy_described", "link": "https://x.example/p"}),
    ("GET", "/evidence/1", None),
    ("POST", "/evidence/1/approve", None),
    ("POST", "/evidence/1/withdraw", None),
    ("GET", "/documents", None),
    ("POST", "/documents", {"kind": "policy", "title": "P", "body": "B"}),
    ("PATCH", "/documents/1", {"title": "Q"}),
    ("DELETE", "/documents/1", None),
    ("POST", "/documents/1/publish", None),
    ("GET", "/training/records", None),
    ("POST", "/training/records", {"user_id": 1, "training": "t", "completed_on": "2026-01-01"}),
    ("DELETE", "/training/records/1", None),
    ("GET", "/training/requirements", None),
    ("POST", "/training/requirements", {"process": "service", "role": "employee", "training": "t"}),
    ("DELETE", "/training/requirements/1", None),
    ("GET", "/escalation", None),
    ("PUT", "/escalation", {"document_link": "https://x.example/e"}),
    ("GET", "/privacy", None),
    (
        "PUT",
        "/privacy",
        {
            "dpia_reference": "D",
            "works_council_consent_on": "2026-01-01",
            "works_council_reference": "W",
        },
    ),
]


def test_employees_may_not_read_or_write_governance_records(app, employee_api, lead):
    _, gov = lead
    # Records exist, so that a 403 is not a 404 in disguise.
    ok(gov.post(f"{G}/roadmap", json=GOVERNANCE_ONLY[6][2]), 201)
    ok(gov.post(f"{G}/evidence", json=GOVERNANCE_ONLY[11][2]), 201)
    ok(gov.post(f"{G}/documents", json=GOVERNANCE_ONLY[16][2]), 201)
    ok(employee_api.get("/api/v1/me"))
    before = snapshot()
    for method, path, body in GOVERNANCE_ONLY:
        kwargs = {"json": body} if body is not None else {}
        response = employee_api.request(method, G + path, **kwargs)
        problem = assert_problem(response, 403)
        assert problem["type"].endswith("/forbidden"), (method, path)
    assert snapshot() == before
    anonymous = ApiClient(app)
    assert_problem(anonymous.get(f"{G}/scopes"), 401)
    assert_problem(anonymous.get(f"{G}/documents/current"), 401)


def test_administrators_may_manage_governance_records(admin_api):
    assert len(ok(admin_api.get(f"{G}/scopes"))["items"]) == 5
    ok(admin_api.put(f"{G}/escalation", json={"document_link": "https://wiki.example/esc"}))


# --- process scopes -----------------------------------------------------------------------------


def test_scopes_default_to_the_whole_organisation_and_can_be_set(app, lead, employee):
    lead_user, gov = lead
    sales = do_create_department(None, "SALES", "Sales", None)
    sales_nl = do_create_department(None, "SALES.NL", "Sales NL", sales.id)
    db.session.commit()
    seller = make_user("sam@example.org", department_id=sales_nl.id)
    make_user("bot@example.org", department_id=sales.id, is_bot=True)
    make_user("ext@example.org", department_id=sales.id, is_external=True)
    tagged = _group(seller, "Campaigns", Process.marketing)
    extra = _group(seller, "Brand", Process.general)
    audience = _group(employee, "Agency", Process.general)
    secret = _group(
        seller,
        "Hush",
        Process.marketing,
        visibility=Visibility.secret,
        join_policy=JoinPolicy.invite,
    )
    do_join(employee, tagged)
    db.session.commit()

    scopes = ok(gov.get(f"{G}/scopes"))["items"]
    assert [s["process"] for s in scopes] == [
        "marketing",
        "recruitment",
        "innovation",
        "production",
        "service",
    ]
    marketing = scopes[0]
    # Everyone counted: the lead, the employee and the seller (not the bot, not the external).
    assert marketing["audience_size"] == 3
    assert marketing["owner"] is None and marketing["ambition"] is None
    assert [
        (g["name"], g["active_members"], g["automatic"]) for g in marketing["tagged_groups"]
    ] == [("Campaigns", 2, True)]
    assert marketing["hidden_groups"] == 1  # the secret one is counted, never named

    body = {
        "owner_id": seller.id,
        "audience_department_ids": [sales.id],
        "audience_group_ids": [audience.id],
        "tagged_group_ids": [extra.id],
    }
    scope = ok(gov.put(f"{G}/scopes/marketing", json=body))
    assert scope["owner"] == {"id": seller.id, "display_name": "Sam"}
    assert [d["code"] for d in scope["audience_departments"]] == ["SALES"]
    assert [g["name"] for g in scope["audience_groups"]] == ["Agency"]
    assert {g["name"]: g["automatic"] for g in scope["tagged_groups"]} == {
        "Campaigns": True,
        "Brand": False,
    }
    # The seller (in a sub-department of SALES) and the employee (in the audience group).
    assert scope["audience_size"] == 2
    assert ok(gov.get(f"{G}/scopes/marketing")) == scope
    assert kinds_recorded() == ["governance:scope:update"]
    # The same again changes nothing and records nothing.
    ok(gov.put(f"{G}/scopes/marketing", json=body))
    assert kinds_recorded() == ["governance:scope:update"]

    # Unknown departments and groups, and a secret group one is not in, are refused.
    before = snapshot()
    bad = {
        "owner_id": 999_999,
        "audience_department_ids": [sales.id, 999_999],
        "audience_group_ids": [secret.id],
        "tagged_group_ids": [999_999],
    }
    problem = assert_problem(gov.put(f"{G}/scopes/marketing", json=bad), 422)
    assert pointers(problem) == {"/owner_id"}
    bad["owner_id"] = lead_user.id
    problem = assert_problem(gov.put(f"{G}/scopes/marketing", json=bad), 422)
    assert pointers(problem) == {
        "/audience_department_ids/1",
        "/audience_group_ids/0",
        "/tagged_group_ids/0",
    }
    assert_problem(gov.get(f"{G}/scopes/general"), 404)
    assert_problem(gov.put(f"{G}/scopes/nope", json={}), 404)
    assert snapshot() == before

    # Emptying the scope makes the whole organisation the audience again.
    scope = ok(gov.put(f"{G}/scopes/marketing", json={}))
    assert scope["audience_size"] == 3 and scope["owner"] is None


# --- ambitions ----------------------------------------------------------------------------------


def test_ambitions_keep_their_history_and_the_latest_is_current(lead, clock):
    _, gov = lead
    first = ok(
        gov.post(
            f"{G}/ambitions",
            json={"process": "service", "target_level": 3, "target_date": "2027-06-30"},
        ),
        201,
    )
    clock.set(NOW + timedelta(hours=1))
    second = ok(
        gov.post(
            f"{G}/ambitions",
            json={
                "process": "service",
                "target_level": 4,
                "target_date": "2028-06-30",
                "note": "Good is good enough elsewhere.",
            },
        ),
        201,
    )
    ok(
        gov.post(
            f"{G}/ambitions",
            json={"process": "marketing", "target_level": 2, "target_date": "2027-01-01"},
        ),
        201,
    )
    history = ok(gov.get(f"{G}/ambitions", query_string={"process": "service"}))["items"]
    assert [a["id"] for a in history] == [second["id"], first["id"]]
    assert history[0]["set_by"]["display_name"] == "Lena Lead"
    scope = ok(gov.get(f"{G}/scopes/service"))
    assert scope["ambition"]["target_level"] == 4
    assert scope["ambition"]["target_date"] == "2028-06-30"
    assert len(ok(gov.get(f"{G}/ambitions"))["items"]) == 3

    for body, pointer in (
        ({"process": "service", "target_level": 6, "target_date": "2027-01-01"}, "/target_level"),
        ({"process": "service", "target_level": 0, "target_date": "2027-01-01"}, "/target_level"),
        ({"process": "general", "target_level": 3, "target_date": "2027-01-01"}, "/process"),
        ({"process": "service", "target_level": 3, "target_date": "2020-01-01"}, "/target_date"),
        ({"process": "service", "target_level": 3, "target_date": "27-1-1"}, "/target_date"),
        ({"process": "service", "target_level": "3", "target_date": "2027-01-01"}, "/target_level"),
    ):
        assert pointers(assert_problem(gov.post(f"{G}/ambitions", json=body), 422)) == {pointer}
    assert kinds_recorded() == ["governance:ambition:set"] * 3


# --- roadmap ------------------------------------------------------------------------------------


def test_roadmap_items_are_created_filtered_changed_and_deleted(lead, clock):
    _, gov = lead
    item = ok(
        gov.post(
            f"{G}/roadmap",
            json={
                "process": "marketing",
                "deliverable": "Choose the campaign platform",
                "due_on": "2027-02-15",
                "gate": "platforms_chosen",
            },
        ),
        201,
    )
    assert (item["quarter"], item["status"], item["done_at"]) == ("2027Q1", "planned", None)
    assert item["created_by"]["display_name"] == "Lena Lead"
    other = ok(
        gov.post(
            f"{G}/roadmap",
            json={
                "process": "service",
                "deliverable": "Answer every question within a day",
                "due_on": "2026-05-31",
                "quarter": "2026Q2",
                "status": "done",
            },
        ),
        201,
    )
    assert other["done_at"] == iso(NOW)
    assert [i["id"] for i in ok(gov.get(f"{G}/roadmap"))["items"]] == [other["id"], item["id"]]
    marketing = ok(gov.get(f"{G}/roadmap", query_string={"process": "marketing"}))["items"]
    assert [i["id"] for i in marketing] == [item["id"]]
    done = ok(gov.get(f"{G}/roadmap", query_string={"status": "done"}))["items"]
    assert [i["id"] for i in done] == [other["id"]]

    path = f"{G}/roadmap/{item['id']}"
    # A new due date moves the quarter along.
    changed = ok(gov.patch(path, json={"due_on": "2027-04-01", "status": "in_progress"}))
    assert (changed["quarter"], changed["status"]) == ("2027Q2", "in_progress")
    clock.set(NOW + timedelta(days=1))
    changed = ok(gov.patch(path, json={"status": "done"}))
    assert changed["done_at"] == iso(NOW + timedelta(days=1))
    given = iso(NOW - timedelta(days=3))
    assert ok(gov.patch(path, json={"done_at": given}))["done_at"] == given
    # Leaving done clears done_at.
    assert ok(gov.patch(path, json={"status": "planned"}))["done_at"] is None
    assert ok(gov.patch(path, json={"gate": None}))["gate"] is None
    assert ok(gov.get(path))["status"] == "planned"

    before = snapshot()
    for body, pointer in (
        ({"quarter": "2027Q3"}, "/quarter"),
        ({"quarter": "2027Q5"}, "/quarter"),
        ({"gate": "Platforms Chosen!"}, "/gate"),
        ({"done_at": given}, "/done_at"),  # not done
        ({"status": "done", "done_at": (NOW + timedelta(days=9)).isoformat()}, "/done_at"),
        ({"deliverable": None}, "/deliverable"),
        ({"deliverable": "x" * 501}, "/deliverable"),
        ({"status": "finished"}, "/status"),
        ({"due_on": "3000-01-01"}, "/due_on"),
    ):
        assert pointers(assert_problem(gov.patch(path, json=body), 422)) == {pointer}, body
    create = {
        "process": "marketing",
        "deliverable": "x",
        "due_on": "2027-01-01",
        "quarter": "2026Q4",
    }
    assert pointers(assert_problem(gov.post(f"{G}/roadmap", json=create), 422)) == {"/quarter"}
    assert snapshot() == before

    assert gov.delete(path).status_code == 204
    assert_problem(gov.get(path), 404)
    assert_problem(gov.patch(path, json={"status": "done"}), 404)
    assert kinds_recorded() == [
        "governance:roadmap:create",
        "governance:roadmap:create",
        "governance:roadmap:update",
        "governance:roadmap:update",
        "governance:roadmap:update",
        "governance:roadmap:update",
        "governance:roadmap:update",
        "governance:roadmap:delete",
    ]


# --- evidence -----------------------------------------------------------------------------------


def test_evidence_needs_a_different_approver(app, lead, lead2, employee_api):
    lead_user, gov = lead
    lead2_user, l2 = lead2
    evidence = ok(
        gov.post(
            f"{G}/evidence",
            json={
                "gate": "escalation_declared",
                "process": "service",
                "link": "https://wiki.example/escalation",
                "expires_on": "2027-06-10",
            },
        ),
        201,
    )
    assert evidence["status"] == "pending"
    assert evidence["attested_by"]["id"] == lead_user.id
    assert (evidence["attested_on"], evidence["approved_by"]) == (TODAY.isoformat(), None)
    path = f"{G}/evidence/{evidence['id']}"

    # Four eyes: the attester cannot approve; an employee is not allowed to.
    before = snapshot()
    problem = assert_problem(gov.post(f"{path}/approve"), 409)
    assert problem["type"].endswith("/four-eyes")
    assert_problem(employee_api.post(f"{path}/approve"), 403)
    assert snapshot() == before

    approved = ok(l2.post(f"{path}/approve"))
    assert approved["status"] == "approved"
    assert approved["approved_by"] == {"id": lead2_user.id, "display_name": "Gus Second"}
    assert_problem(l2.post(f"{path}/approve"), 409)

    document = ok(
        l2.post(
            f"{G}/evidence",
            json={"gate": "policy_described", "document_ref": "DMS-2026-0042"},
        ),
        201,
    )
    assert document["process"] is None and document["link"] is None
    listed = ok(gov.get(f"{G}/evidence"))["items"]
    assert [e["id"] for e in listed] == [document["id"], evidence["id"]]
    by_gate = ok(gov.get(f"{G}/evidence", query_string={"gate": "policy_described"}))["items"]
    assert [e["id"] for e in by_gate] == [document["id"]]

    withdrawn = ok(gov.post(f"{path}/withdraw"))
    assert withdrawn["status"] == "withdrawn"
    assert_problem(gov.post(f"{path}/withdraw"), 409)
    assert_problem(l2.post(f"{path}/approve"), 409)
    assert [e["id"] for e in ok(gov.get(f"{G}/evidence"))["items"]] == [document["id"]]
    everything = ok(gov.get(f"{G}/evidence", query_string={"include_withdrawn": "true"}))["items"]
    assert len(everything) == 2

    before = snapshot()
    for body, pointer in (
        ({"gate": "policy_described"}, "/link"),  # neither link nor document
        ({"gate": "policy_described", "link": "javascript:alert(1)"}, "/link"),
        ({"gate": "policy_described", "link": "https://x.example/a b"}, "/link"),
        ({"gate": "Policy described", "link": "https://x.example/"}, "/gate"),
        ({"gate": "g" * 65, "link": "https://x.example/"}, "/gate"),
        ({"gate": "g", "link": "https://x.example/", "attested_on": "2026-07-01"}, "/attested_on"),
        ({"gate": "g", "link": "https://x.example/", "expires_on": "2026-06-01"}, "/expires_on"),
        ({"gate": "g", "document_ref": "two\nlines"}, "/document_ref"),
    ):
        assert pointers(assert_problem(gov.post(f"{G}/evidence", json=body), 422)) == {pointer}
    assert_problem(gov.post(f"{G}/evidence/999999/approve"), 404)
    assert snapshot() == before
    assert kinds_recorded() == [
        "governance:evidence:attest",
        "governance:evidence:approve",
        "governance:evidence:attest",
        "governance:evidence:withdraw",
    ]


def test_expired_evidence_cannot_be_approved(lead, lead2, clock):
    _, gov = lead
    _, l2 = lead2
    evidence = ok(
        gov.post(
            f"{G}/evidence",
            json={"gate": "g", "link": "https://x.example/", "expires_on": "2026-06-30"},
        ),
        201,
    )
    clock.set(NOW + timedelta(days=30))
    assert ok(gov.get(f"{G}/evidence/{evidence['id']}"))["status"] == "expired"
    assert_problem(l2.post(f"{G}/evidence/{evidence['id']}/approve"), 409)


# --- policy and netiquette ----------------------------------------------------------------------


def _draft(client: ApiClient, kind: str = "policy", **fields: Any) -> dict[str, Any]:
    body = {"kind": kind, "title": f"Social-media {kind}", "body": "# Rules\n\nBe *kind*."}
    return ok(client.post(f"{G}/documents", json={**body, **fields}), 201)  # type: ignore[no-any-return]


def test_documents_are_drafted_published_by_someone_else_and_versioned(
    app, lead, lead2, employee_api
):
    lead_user, gov = lead
    lead2_user, l2 = lead2
    draft = _draft(gov, body="Hello <script>alert(1)</script> **world**")
    assert (draft["status"], draft["version"], draft["published_at"]) == ("draft", None, None)
    assert "<script>" not in draft["body_html"] and "<strong>world</strong>" in draft["body_html"]
    path = f"{G}/documents/{draft['id']}"

    # A draft is invisible to employees, changed only by its author, published by another.
    assert_problem(employee_api.get(path), 404)
    assert_problem(employee_api.post(f"{path}/acknowledge"), 404)
    assert_problem(l2.patch(path, json={"title": "Mine now"}), 403)
    assert ok(gov.patch(path, json={"change_note": "First version"}))["change_note"] == (
        "First version"
    )
    problem = assert_problem(gov.post(f"{path}/publish"), 409)
    assert problem["type"].endswith("/four-eyes")
    assert_problem(gov.post(f"{path}/acknowledge"), 409)  # a draft is not acknowledged
    problem = assert_problem(gov.patch(path, json={"cites_reading_id": 424242}), 422)
    assert pointers(problem) == {"/cites_reading_id"}

    published = ok(l2.post(f"{path}/publish"))
    assert (published["status"], published["version"]) == ("published", 1)
    assert published["author"]["id"] == lead_user.id
    assert published["approver"]["id"] == lead2_user.id
    assert published["acknowledgements"] == 0
    assert_problem(l2.post(f"{path}/publish"), 409)
    assert_problem(gov.patch(path, json={"title": "Changed"}), 409)
    assert_problem(gov.delete(path), 409)

    # Drafts can be deleted by their author.
    scrap = _draft(gov, kind="netiquette")
    assert gov.delete(f"{G}/documents/{scrap['id']}").status_code == 204
    assert_problem(gov.get(f"{G}/documents/{scrap['id']}"), 404)

    second = _draft(l2, title="Social-media policy, revised")
    ok(gov.post(f"{G}/documents/{second['id']}/publish"))
    versions = ok(gov.get(f"{G}/documents", query_string={"kind": "policy"}))["items"]
    assert [(d["version"], d["status"]) for d in versions] == [
        (2, "published"),
        (1, "superseded"),
    ]
    # Employees read published versions (the current one and earlier ones), not the list.
    assert ok(employee_api.get(path))["status"] == "superseded"
    assert_problem(employee_api.get(f"{G}/documents"), 403)
    # Bad bodies.
    for body, pointer in (
        ({"kind": "manifesto", "title": "T", "body": "B"}, "/kind"),
        ({"kind": "policy", "title": "", "body": "B"}, "/title"),
        ({"kind": "policy", "title": "T", "body": ""}, "/body"),
        ({"kind": "policy", "title": "T", "body": "x" * 100_001}, "/body"),
        ({"kind": "policy", "title": "T", "body": "B", "cites_reading_id": 0}, "/cites_reading_id"),
    ):
        assert pointers(assert_problem(gov.post(f"{G}/documents", json=body), 422)) == {pointer}


def test_acknowledgement_is_asked_again_after_a_new_version(app, lead, lead2, employee):
    _, gov = lead
    _, l2 = lead2
    client = ApiClient(app)
    signed_in = ok(client.sign_in(employee.email))
    assert signed_in["user"]["pending_acknowledgements"] == []

    policy = _draft(gov)
    ok(l2.post(f"{G}/documents/{policy['id']}/publish"))
    netiquette = _draft(gov, kind="netiquette", title="Netiquette")
    ok(l2.post(f"{G}/documents/{netiquette['id']}/publish"))

    # Asked at the next sign-in, and on /me until done.
    signed_in = ok(client.sign_in(employee.email))
    expected = [
        {
            "document_id": policy["id"],
            "kind": "policy",
            "version": 1,
            "title": "Social-media policy",
        },
        {
            "document_id": netiquette["id"],
            "kind": "netiquette",
            "version": 1,
            "title": "Netiquette",
        },
    ]
    assert signed_in["user"]["pending_acknowledgements"] == expected
    assert ok(client.get("/api/v1/me"))["pending_acknowledgements"] == expected
    current = ok(client.get(f"{G}/documents/current"))["items"]
    assert [(d["kind"], d["version"], d["acknowledged_at"]) for d in current] == [
        ("policy", 1, None),
        ("netiquette", 1, None),
    ]
    assert all(d["acknowledgements"] is None for d in current)  # counts are for governance

    acknowledged = ok(client.post(f"{G}/documents/{policy['id']}/acknowledge"))
    assert acknowledged["acknowledged_at"] == iso(NOW)
    # Again: nothing changes.
    assert ok(client.post(f"{G}/documents/{policy['id']}/acknowledge")) == acknowledged
    ok(client.post(f"{G}/documents/{netiquette['id']}/acknowledge"))
    assert ok(client.get("/api/v1/me"))["pending_acknowledgements"] == []
    assert ok(client.sign_in(employee.email))["user"]["pending_acknowledgements"] == []
    counted = ok(gov.get(f"{G}/documents/{policy['id']}"))
    assert counted["acknowledgements"] == 1

    # A new policy version: asked again at the next sign-in, for the new version only.
    revised = _draft(l2, title="Social-media policy 2")
    ok(gov.post(f"{G}/documents/{revised['id']}/publish"))
    signed_in = ok(client.sign_in(employee.email))
    assert signed_in["user"]["pending_acknowledgements"] == [
        {
            "document_id": revised["id"],
            "kind": "policy",
            "version": 2,
            "title": "Social-media policy 2",
        }
    ]
    # The superseded version is not acknowledged any more.
    problem = assert_problem(client.post(f"{G}/documents/{policy['id']}/acknowledge"), 409)
    assert problem["current_document_id"] == revised["id"]
    ok(client.post(f"{G}/documents/{revised['id']}/acknowledge"))
    assert ok(client.get("/api/v1/auth/session"))["user"]["pending_acknowledgements"] == []
    assert kinds_recorded().count("governance:document:acknowledge") == 3


def test_bots_are_not_asked_to_acknowledge(app, lead, lead2):
    _, gov = lead
    _, l2 = lead2
    policy = _draft(gov)
    ok(l2.post(f"{G}/documents/{policy['id']}/publish"))
    _, client = _client(app, "bot@example.org", is_bot=True)
    assert ok(client.get("/api/v1/me"))["pending_acknowledgements"] == []
    assert_problem(client.post(f"{G}/documents/{policy['id']}/acknowledge"), 403)


# --- training -----------------------------------------------------------------------------------


def test_training_records_and_requirements(lead, employee):
    _, gov = lead
    record = ok(
        gov.post(
            f"{G}/training/records",
            json={
                "user_id": employee.id,
                "training": "Social-Media-Basics",
                "completed_on": "2026-05-01",
                "expires_on": "2028-05-01",
            },
        ),
        201,
    )
    assert record["training"] == "social-media-basics"  # keys compare in lower case
    assert record["user"] == {"id": employee.id, "display_name": "Erin Employee"}
    assert record["source"] == "api"
    duplicate = {
        "user_id": employee.id,
        "training": "social-media-basics",
        "completed_on": "2026-05-01",
    }
    assert_problem(gov.post(f"{G}/training/records", json=duplicate), 409)
    later = {**duplicate, "completed_on": "2026-06-01"}
    ok(gov.post(f"{G}/training/records", json=later), 201)
    page = ok(gov.get(f"{G}/training/records", query_string={"limit": 1}))
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = ok(gov.get(f"{G}/training/records", query_string={"cursor": page["next_cursor"]}))
    assert rest["next_cursor"] is None
    assert [r["id"] for r in page["items"] + rest["items"]][-1] == record["id"]
    assert ok(gov.get(f"{G}/training/records", query_string={"training": "nothing"}))["items"] == []

    for body, pointer in (
        ({**duplicate, "user_id": 999_999}, "/user_id"),
        ({**duplicate, "completed_on": "2026-07-01"}, "/completed_on"),
        ({**duplicate, "completed_on": "2026-01-02", "expires_on": "2026-01-01"}, "/expires_on"),
        ({**duplicate, "training": "has space"}, "/training"),
    ):
        assert pointers(assert_problem(gov.post(f"{G}/training/records", json=body), 422)) == {
            pointer
        }
    assert gov.delete(f"{G}/training/records/{record['id']}").status_code == 204
    assert_problem(gov.delete(f"{G}/training/records/{record['id']}"), 404)

    requirement = ok(
        gov.post(
            f"{G}/training/requirements",
            json={"process": "service", "role": "moderator", "training": "escalation-101"},
        ),
        201,
    )
    assert requirement["role"] == "moderator"
    same = {"process": "service", "role": "moderator", "training": "Escalation-101"}
    assert_problem(gov.post(f"{G}/training/requirements", json=same), 409)
    listed = ok(gov.get(f"{G}/training/requirements", query_string={"process": "service"}))
    assert [r["id"] for r in listed["items"]] == [requirement["id"]]
    assert (
        ok(gov.get(f"{G}/training/requirements", query_string={"process": "marketing"}))["items"]
        == []
    )
    bad_role = {"process": "service", "role": "king", "training": "x"}
    assert pointers(assert_problem(gov.post(f"{G}/training/requirements", json=bad_role), 422)) == {
        "/role"
    }
    assert gov.delete(f"{G}/training/requirements/{requirement['id']}").status_code == 204
    assert ok(gov.get(f"{G}/training/requirements"))["items"] == []


def _import(client: ApiClient, text: str, **query: str) -> Any:
    return client.post(
        f"{G}/training/imports",
        data=text.encode(),
        headers={"Content-Type": "text/csv"},
        query_string=query,
    )


def _records() -> list[tuple[int, str, date, date | None]]:
    fresh()
    return [
        tuple(r)  # type: ignore[misc]
        for r in db.session.execute(
            select(
                TrainingRecord.user_id,
                TrainingRecord.training,
                TrainingRecord.completed_on,
                TrainingRecord.expires_on,
            ).order_by(TrainingRecord.id)
        )
    ]


def test_training_import_reports_errors_by_line_and_writes_nothing(app, lead):
    _, gov = lead
    anna = make_user("anna@example.org", employee_number="1001")
    bo = make_user("bo@example.org")
    good = (
        "employee_number,email,training,completed_on,expires_on\n"
        "1001,,social-media-basics,2026-03-01,2028-03-01\n"
        ",BO@example.org,social-media-basics,2026-04-01,\n"
    )
    # A dry run says what would happen and writes nothing.
    before = snapshot()
    report = ok(_import(gov, good, dry_run="true"))
    assert (report["dry_run"], report["applied"], report["rows"]) == (True, False, 2)
    assert (report["records_created"], report["records_updated"]) == (2, 0)
    assert snapshot() == before

    bad = good + (
        "1002,,social-media-basics,2026-03-01,\n"  # line 4: unknown number
        ",nobody@example.org,social-media-basics,2026-03-01,\n"  # 5: unknown address
        "1001,,social media,2026-03-01,\n"  # 6: bad key
        "1001,,social-media-basics,01-03-2026,\n"  # 7: bad date
        "1001,,social-media-basics,2026-07-01,\n"  # 8: in the future
        "1001,,social-media-basics,2026-03-02,2026-03-01\n"  # 9: expires before completion
        "\n"
        "1001,,social-media-basics,2026-03-01,\n"  # 11: same as line 2
        ",,social-media-basics,2026-03-01,\n"  # 12: nobody
        "1001,,x\n"  # 13: too few cells
    )
    problem = assert_problem(_import(gov, bad), 422)
    assert problem["type"].endswith("/import-invalid")
    errors = [(e["line"], e["field"]) for e in problem["report"]["errors"]]
    assert errors == [
        (4, "employee_number"),
        (5, "email"),
        (6, "training"),
        (7, "completed_on"),
        (8, "completed_on"),
        (9, "expires_on"),
        (11, None),
        (12, None),
        (13, None),
    ]
    assert problem["report"]["applied"] is False
    assert snapshot() == before

    # Header problems are reported on the header line.
    for text, fragment in (
        ("", "empty"),
        ("email,training\n", "missing columns: completed_on"),
        ("training,completed_on\n", "employee_number or email"),
        ("email,training,completed_on,grade\n", "unknown columns: grade"),
        ("email,email,training,completed_on\n", "given twice"),
    ):
        problem = assert_problem(_import(gov, text), 422)
        [error] = problem["report"]["errors"]
        assert error["line"] == 1 and fragment in error["message"], (text, error)
    response = gov.post(
        f"{G}/training/imports", data=b"\xff\xfe", headers={"Content-Type": "text/csv"}
    )
    assert_problem(response, 400)
    assert_problem(
        gov.post(f"{G}/training/imports", data=good, headers={"Content-Type": "application/json"}),
        415,
    )
    assert snapshot() == before

    # skip_invalid imports the valid rows.
    report = ok(_import(gov, bad, skip_invalid="true"))
    assert (report["applied"], report["records_created"], report["rows_skipped"]) == (True, 2, 9)
    assert _records() == [
        (anna.id, "social-media-basics", date(2026, 3, 1), date(2028, 3, 1)),
        (bo.id, "social-media-basics", date(2026, 4, 1), None),
    ]
    # Importing again changes nothing; a new expiry date updates the record.
    report = ok(_import(gov, good))
    assert (report["records_created"], report["records_updated"], report["records_unchanged"]) == (
        0,
        0,
        2,
    )
    changed = good.replace("2028-03-01", "2029-03-01")
    report = ok(_import(gov, changed))
    assert (report["records_created"], report["records_updated"]) == (0, 1)
    assert _records()[0][3] == date(2029, 3, 1)
    assert kinds_recorded() == ["governance:training:import", "governance:training:import"]


# --- escalation and privacy ---------------------------------------------------------------------


def test_escalation_declaration_and_privacy_record(lead, lead2):
    lead_user, gov = lead
    _, l2 = lead2
    assert ok(gov.get(f"{G}/escalation")) == {"current": None}
    first = ok(gov.put(f"{G}/escalation", json={"document_link": "https://wiki.example/esc"}))
    assert first["declared_on"] == TODAY.isoformat()
    assert first["declared_by"]["id"] == lead_user.id
    second = ok(
        l2.put(
            f"{G}/escalation",
            json={"document_link": "https://wiki.example/esc-2", "declared_on": "2026-06-01"},
        )
    )
    assert ok(gov.get(f"{G}/escalation"))["current"] == second
    body = {"document_link": "https://wiki.example/esc", "declared_on": "2026-06-11"}
    assert pointers(assert_problem(gov.put(f"{G}/escalation", json=body), 422)) == {"/declared_on"}

    state = ok(gov.get(f"{G}/privacy"))
    assert state["current"] is None and state["telemetry_allowed"] is False
    assert "DPIA" in state["reason"] and "works council" in state["reason"]
    record = {
        "dpia_reference": "DPIA-2026-07",
        "works_council_consent_on": "2026-05-20",
        "works_council_reference": "OR-2026-12",
    }
    for field in record:
        partial = {k: v for k, v in record.items() if k != field}
        assert pointers(assert_problem(gov.put(f"{G}/privacy", json=partial), 422)) == {f"/{field}"}
    future = {**record, "works_council_consent_on": "2026-06-11"}
    problem = assert_problem(gov.put(f"{G}/privacy", json=future), 422)
    assert pointers(problem) == {"/works_council_consent_on"}
    state = ok(gov.put(f"{G}/privacy", json=record))
    assert state["telemetry_allowed"] is True and state["reason"] is None
    assert state["current"]["dpia_reference"] == "DPIA-2026-07"
    assert state["current"]["recorded_by"]["id"] == lead_user.id
    assert ok(l2.get(f"{G}/privacy")) == state
    assert kinds_recorded() == [
        "governance:escalation:declare",
        "governance:escalation:declare",
        "governance:privacy:record",
    ]
