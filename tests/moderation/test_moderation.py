"""The moderation queue through the API and its actions: raising reports (what may be reported,
by whom), resolving them (who may, what ``removed`` does), the queue's privacy (a report about
closed content is seen only by those who may read that content, in lists, counts and the
summary alike), the usage events of each action, and R4 computed from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from esn import access
from esn.accounts.models import User
from esn.api.problems import Problem
from esn.clock import SettableClock, frozen_at
from esn.extensions import db
from esn.groups.actions import do_join
from esn.groups.models import Group
from esn.moderation import actions
from esn.moderation.models import ModerationReport, ReportStatus
from esn.social.models import Post
from esn.usage import kinds
from esn.usage.models import UsageEvent
from tests.api.helpers import assert_problem, snapshot
from tests.conftest import ApiClient, fresh, make_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
REPORTS = "/api/v1/reports"
QUEUE = "/api/v1/moderation/reports"


@pytest.fixture(autouse=True)
def clock() -> Any:
    with frozen_at(T0) as c:
        yield c


@dataclass
class Person:
    user: User
    api: ApiClient


def person(app: Flask, email: str, roles: list[str] | None = None) -> Person:
    user = make_user(email, roles=roles or ["employee"])
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    # The day's first request records a visit: let that happen before anything is measured.
    assert client.get("/api/v1/me").status_code == 200
    return Person(user, client)


def post(who: Person, body: str = "Something to report", **fields: Any) -> int:
    response = who.api.post("/api/v1/posts", json={"body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def comment(who: Person, post_id: int, body: str = "A comment to report") -> int:
    response = who.api.post(f"/api/v1/posts/{post_id}/comments", json={"body": body})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def group(who: Person, name: str, visibility: str, members: list[Person]) -> int:
    response = who.api.post(
        "/api/v1/groups", json={"name": name, "visibility": visibility, "process": "service"}
    )
    assert response.status_code == 201, response.get_json()
    gid = int(response.get_json()["id"])
    fresh()
    found = db.session.get(Group, gid)
    assert found is not None
    for member in members:
        do_join(db.session.get(User, member.user.id), found)  # type: ignore[arg-type]
    db.session.commit()
    return gid


def report(who: Person, target_type: str, target_id: int, **fields: Any) -> Any:
    body = {"target_type": target_type, "target_id": target_id, "reason": "Rude", **fields}
    return who.api.post(REPORTS, json=body)


def raised(who: Person, target_type: str, target_id: int, **fields: Any) -> int:
    response = report(who, target_type, target_id, **fields)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def resolve(who: Person, report_id: int, decision: str, note: str = "") -> Any:
    return who.api.post(f"{QUEUE}/{report_id}/resolve", json={"decision": decision, "note": note})


def listed(who: Person, **params: Any) -> dict[str, Any]:
    response = who.api.get(QUEUE, query_string={"limit": 100, **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def events(kind: kinds.UsageKind) -> list[UsageEvent]:
    fresh()
    return list(db.session.scalars(select(UsageEvent).where(UsageEvent.kind == kind.name)))


@pytest.fixture
def cast(app: Flask) -> dict[str, Person]:
    """Anna writes, Rita reports, Erin is an employee, Mo moderates, Ada administers, Lena
    leads governance."""
    return {
        "anna": person(app, "anna@example.org"),
        "rita": person(app, "rita@example.org"),
        "erin": person(app, "erin@example.org"),
        "mo": person(app, "mo@example.org", ["employee", "moderator"]),
        "ada": person(app, "ada@example.org", ["employee", "admin"]),
        "lena": person(app, "lena@example.org", ["employee", "governance_lead"]),
    }


@pytest.fixture
def content(cast: dict[str, Person]) -> dict[str, int]:
    """A public post and comment by Anna, and posts by Anna in a secret and a private group
    that Rita belongs to (and nobody else of the cast)."""
    anna, rita = cast["anna"], cast["rita"]
    public = post(anna, "Public words")
    secret_group = group(anna, "Inner circle", "secret", [rita])
    private_group = group(anna, "Closed shop", "private", [rita])
    secret = post(anna, "Secret words", group_id=secret_group)
    return {
        "public": public,
        "comment": comment(anna, public),
        "secret_group": secret_group,
        "secret": secret,
        "secret_comment": comment(anna, secret, "Secret comment"),
        "private": post(anna, "Private words", group_id=private_group),
    }


# --- raising ------------------------------------------------------------------------------------


def test_raising_a_report_records_one_event(cast, content):
    rita = cast["rita"]
    response = report(rita, "post", content["public"], severity="high", reason="  Insulting  ")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "open" and body["severity"] == "high"
    assert body["reason"] == "Insulting" and body["post_id"] == content["public"]
    assert set(body) == {
        "id", "target_type", "target_id", "post_id", "reason", "severity", "status", "raised_at"
    }  # fmt: skip
    fresh()
    row = db.session.get(ModerationReport, body["id"])
    assert row is not None and row.due_at - row.raised_at == timedelta(hours=4)
    (event,) = events(kinds.REPORT_RAISE)
    assert (event.object_type, event.object_id) == ("report", body["id"])
    assert (event.actor_id, event.owner_id) == (rita.user.id, cast["anna"].user.id)
    assert (event.process, event.group_id, event.thread_root_id) == (
        "general",
        None,
        content["public"],
    )
    assert event.payload == {"target": "post", "severity": "high"}

    # A comment in the secret group, by a member: the event carries the group and its process.
    rid = raised(rita, "comment", content["secret_comment"], severity="low")
    fresh()
    event = next(e for e in events(kinds.REPORT_RAISE) if e.object_id == rid)
    assert (event.process, event.group_id, event.thread_root_id) == (
        "service",
        content["secret_group"],
        content["secret"],
    )
    row = db.session.get(ModerationReport, rid)
    assert row is not None and row.due_at - row.raised_at == timedelta(hours=72)


def test_refused_reports_write_nothing(cast, content):
    erin, anna, rita = cast["erin"], cast["anna"], cast["rita"]
    raised(rita, "post", content["public"])
    before = snapshot()
    # Content Erin cannot read is not found, as if it did not exist.
    closed = [("post", "secret"), ("post", "private"), ("comment", "secret_comment")]
    for target_type, key in closed:
        assert_problem(report(erin, target_type, content[key]), 404)
    assert_problem(report(erin, "post", 987654), 404)
    assert_problem(report(erin, "comment", content["public"] + 1000), 404)
    # Own content, a bad severity or target type, a blank or missing reason.
    assert_problem(report(anna, "post", content["public"]), 422)
    assert_problem(report(anna, "comment", content["comment"]), 422)
    assert_problem(report(erin, "post", content["public"], severity="urgent"), 422)
    assert_problem(report(erin, "user", content["public"]), 422)
    assert_problem(report(erin, "post", content["public"], reason="   "), 422)
    assert_problem(erin.api.post(REPORTS, json={"target_type": "post", "target_id": 1}), 422)
    assert_problem(report(erin, "post", content["public"], reason="x" * 1001), 422)
    # A second open report by the same person on the same content.
    body = assert_problem(report(rita, "post", content["public"], severity="low"), 409)
    assert body["report_id"] >= 1
    # Strangers.
    assert_problem(ApiClient(erin.api.client.application).post(REPORTS, json={}), 401)
    assert snapshot() == before


def test_the_actions_refuse_as_the_routes_do(cast, content):
    fresh()
    rita = db.session.get(User, cast["rita"].user.id)
    erin = db.session.get(User, cast["erin"].user.id)
    assert rita is not None and erin is not None
    for user, args, status in [
        (rita, ("post", content["public"], "Rude", "urgent"), 422),
        (rita, ("page", content["public"], "Rude"), 422),
        (rita, ("post", content["public"], " "), 422),
        (erin, ("post", content["secret"], "Rude"), 404),
    ]:
        with pytest.raises(Problem) as caught:
            actions.check_raise_report(user, *args)
        assert caught.value.status == status
    db.session.rollback()
    report = actions.check_raise_report(rita, "post", content["public"], "Rude")
    db.session.commit()
    mo = db.session.get(User, cast["mo"].user.id)
    lena = db.session.get(User, cast["lena"].user.id)
    assert mo is not None and lena is not None
    with pytest.raises(Problem) as caught:
        actions.check_resolve_report(lena, report, "dismissed")
    assert caught.value.status == 403
    with pytest.raises(Problem) as caught:
        actions.check_resolve_report(mo, report, "ignored")
    assert caught.value.status == 422
    actions.check_resolve_report(mo, report, "warned", "Told them.")
    db.session.commit()
    assert report.status == ReportStatus.resolved and report.resolver_id == mo.id
    with pytest.raises(Problem) as caught:
        actions.check_resolve_report(mo, report, "dismissed")
    assert caught.value.status == 409


def test_a_resolved_report_can_be_raised_again(cast, content):
    rita, mo = cast["rita"], cast["mo"]
    first = raised(rita, "post", content["public"])
    assert resolve(mo, first, "dismissed").status_code == 200
    assert raised(rita, "post", content["public"]) != first


# --- resolving ----------------------------------------------------------------------------------


def test_who_may_resolve(cast, content):
    rita, erin, lena, mo = cast["rita"], cast["erin"], cast["lena"], cast["mo"]
    rid = raised(rita, "post", content["public"])
    before = snapshot()
    assert_problem(resolve(erin, rid, "dismissed"), 403)
    assert_problem(erin.api.get(f"{QUEUE}/{rid}"), 403)
    assert_problem(erin.api.get(QUEUE), 403)
    assert_problem(rita.api.get("/api/v1/moderation/summary"), 403)
    # The governance lead follows the queue but does not resolve.
    assert lena.api.get(f"{QUEUE}/{rid}").status_code == 200
    assert_problem(resolve(lena, rid, "dismissed"), 403)
    assert_problem(resolve(mo, rid, "shrugged"), 422)
    assert_problem(resolve(mo, rid + 1000, "dismissed"), 404)
    assert snapshot() == before

    response = resolve(mo, rid, "warned", "Spoke to the author.")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["decision"], body["note"]) == (
        "resolved",
        "warned",
        "Spoke to the author.",
    )
    assert body["resolver"]["id"] == mo.user.id and body["resolved_at"] is not None
    assert body["content_removed"] is False and body["excerpt"] == "Public words"
    (event,) = events(kinds.REPORT_RESOLVE)
    assert (event.object_type, event.object_id, event.actor_id) == ("report", rid, mo.user.id)
    assert (event.process, event.thread_root_id) == ("general", content["public"])
    assert event.payload == {"decision": "warned"}
    # Warning changes no content.
    assert rita.api.get(f"/api/v1/posts/{content['public']}").status_code == 200

    before = snapshot()
    assert_problem(resolve(mo, rid, "removed"), 409)
    assert_problem(resolve(cast["ada"], rid, "dismissed"), 409)
    assert snapshot() == before
    assert len(events(kinds.REPORT_RESOLVE)) == 1


def test_removed_deletes_the_content(cast, content, clock: SettableClock):
    rita, erin, mo, ada = cast["rita"], cast["erin"], cast["mo"], cast["ada"]
    on_post = raised(erin, "post", content["public"])
    on_comment = raised(rita, "comment", content["comment"])
    # An administrator removes the comment, a moderator the post.
    assert resolve(ada, on_comment, "removed").status_code == 200
    comments = rita.api.get(f"/api/v1/posts/{content['public']}/comments").get_json()["items"]
    assert content["comment"] not in [c["id"] for c in comments]
    (deleted,) = events(kinds.COMMENT_DELETE)
    assert (deleted.object_id, deleted.actor_id) == (content["comment"], ada.user.id)

    clock.set(T0 + timedelta(hours=1))
    response = resolve(mo, on_post, "removed")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["content_removed"] is True
    assert response.get_json()["excerpt"] is None
    assert_problem(rita.api.get(f"/api/v1/posts/{content['public']}"), 404)
    (deleted,) = events(kinds.POST_DELETE)
    assert (deleted.object_id, deleted.actor_id) == (content["public"], mo.user.id)
    assert len(events(kinds.REPORT_RESOLVE)) == 2
    # The reports stay on the record for those who could read the content.
    resolved = listed(mo, status="resolved")
    assert [r["id"] for r in resolved["items"]] == [on_post, on_comment]
    assert resolved["counts"] == {"open": 0, "overdue": 0, "resolved": 2}
    assert mo.api.get(f"{QUEUE}/{on_post}").get_json()["decision"] == "removed"


# --- who sees which report ----------------------------------------------------------------------


def test_the_queue_shows_only_reports_about_content_the_handler_may_read(app, cast, content):
    rita, mo, ada, lena = cast["rita"], cast["mo"], cast["ada"], cast["lena"]
    public = raised(rita, "post", content["public"])
    secret = raised(rita, "post", content["secret"], severity="high")
    secret_comment = raised(rita, "comment", content["secret_comment"])
    private = raised(rita, "post", content["private"])
    closed = [secret, secret_comment, private]

    # Neither the moderator, nor the administrator (admins are not members: access.py), nor the
    # governance lead is in the closed groups: they see the public report only, and count it.
    for who in (mo, ada, lena):
        page = listed(who, status="open")
        assert [r["id"] for r in page["items"]] == [public]
        assert page["counts"] == {"open": 1, "overdue": 0, "resolved": 0}
        assert [r["id"] for r in listed(who)["items"]] == [public]
        summary = who.api.get("/api/v1/moderation/summary").get_json()
        assert (summary["open"], summary["resolved"]) == (1, 0)
        for rid in closed:
            assert_problem(who.api.get(f"{QUEUE}/{rid}"), 404)
    before = snapshot()
    for rid in closed:
        assert_problem(resolve(mo, rid, "removed"), 404)
        assert_problem(resolve(ada, rid, "removed"), 404)
    assert snapshot() == before

    # A moderator who is a member of the secret group sees its reports, due first.
    fresh()
    mo_user = db.session.get(User, mo.user.id)
    secret_group = db.session.get(Group, content["secret_group"])
    assert mo_user is not None and secret_group is not None
    do_join(mo_user, secret_group)
    db.session.commit()
    page = listed(mo, status="open")
    assert [r["id"] for r in page["items"]] == [secret, public, secret_comment]
    assert page["counts"]["open"] == 3
    assert mo.api.get(f"{QUEUE}/{secret}").get_json()["group_id"] == content["secret_group"]
    assert resolve(mo, secret, "dismissed").status_code == 200
    # Still hidden from the others.
    assert listed(ada)["counts"] == {"open": 1, "overdue": 0, "resolved": 0}

    # The object check and the list agree for every handler and report.
    fresh()
    everyone = [public, *closed]
    for who in (mo, ada, lena, cast["erin"], rita):
        user = db.session.get(User, who.user.id)
        shown = set(
            db.session.scalars(select(ModerationReport.id).where(access.visible_reports(user)))
        )
        for rid in everyone:
            row = db.session.get(ModerationReport, rid)
            assert row is not None
            thread = db.session.get(Post, row.post_id)
            assert access.can(user, "report:read", (row, thread)) == (rid in shown), (who, rid)


def test_open_reports_come_due_first_and_page_by_cursor(cast, content, clock: SettableClock):
    rita, erin, mo = cast["rita"], cast["erin"], cast["mo"]
    low = raised(rita, "post", content["public"], severity="low")  # due T0 + 72 h
    clock.set(T0 + timedelta(hours=1))
    normal = raised(erin, "post", content["public"])  # due T0 + 25 h
    clock.set(T0 + timedelta(hours=2))
    high = raised(erin, "comment", content["comment"], severity="high")  # due T0 + 6 h
    clock.set(T0 + timedelta(hours=3))
    other = raised(rita, "comment", content["comment"], severity="high")  # due T0 + 7 h

    order = [high, other, normal, low]
    assert [r["id"] for r in listed(mo, status="open")["items"]] == order
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"status": "open", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = mo.api.get(QUEUE, query_string=params).get_json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == order
    assert_problem(mo.api.get(QUEUE, query_string={"cursor": "not-a-cursor"}), 400)
    assert_problem(mo.api.get(QUEUE, query_string={"status": "closed"}), 422)

    # Later, two are overdue; all of them, newest raised first.
    clock.set(T0 + timedelta(hours=8))
    page = listed(mo)
    assert [r["id"] for r in page["items"]] == [other, high, normal, low]
    assert page["counts"] == {"open": 4, "overdue": 2, "resolved": 0}
    assert [r["overdue"] for r in page["items"]] == [True, True, False, False]
    assert resolve(mo, normal, "dismissed").status_code == 200
    clock.set(T0 + timedelta(hours=9))
    assert resolve(mo, low, "warned").status_code == 200
    assert [r["id"] for r in listed(mo, status="resolved")["items"]] == [low, normal]

    summary = cast["lena"].api.get("/api/v1/moderation/summary").get_json()
    assert summary == {
        "window_days": 90,
        "open": 2,
        "overdue": 2,
        "resolved": 2,
        "dismissed": 1,
        "removed": 0,
        "warned": 1,
        "median_resolution_hours": 8.0,  # 7 h and 9 h
    }
    assert "reporter" not in str(summary)


# --- telemetry ----------------------------------------------------------------------------------


def test_r4_is_the_latency_from_raise_to_resolve(app, cast, content, clock: SettableClock):
    rita, mo, lena = cast["rita"], cast["mo"], cast["lena"]
    clock.set(T0 + timedelta(hours=1))
    public = raised(rita, "post", content["public"])
    secret = raised(rita, "post", content["secret"])
    clock.set(T0 + timedelta(hours=7))
    assert resolve(mo, public, "dismissed").status_code == 200  # 6 h
    fresh()
    mo_user = db.session.get(User, mo.user.id)
    secret_group = db.session.get(Group, content["secret_group"])
    assert mo_user is not None and secret_group is not None
    do_join(mo_user, secret_group)
    db.session.commit()
    clock.set(T0 + timedelta(hours=11))
    assert resolve(mo, secret, "removed").status_code == 200  # 10 h, in the service process

    raise_events = {e.object_id: e for e in events(kinds.REPORT_RAISE)}
    resolve_events = {e.object_id: e for e in events(kinds.REPORT_RESOLVE)}
    assert set(raise_events) == set(resolve_events) == {public, secret}
    assert {r: e.process for r, e in resolve_events.items()} == {
        public: "general",
        secret: "service",
    }

    clock.set(T0 + timedelta(days=3))
    assert lena.api.sign_in("lena@example.org").status_code == 200
    response = lena.api.put(
        "/api/v1/governance/privacy",
        json={
            "dpia_reference": "DPIA-2026-01",
            "works_council_consent_on": "2026-01-15",
            "works_council_reference": "WC-2026-03",
        },
    )
    assert response.status_code == 200, response.get_json()
    day = (T0 + timedelta(days=1)).date()

    def r4(scope: str) -> dict[str, Any]:
        response = lena.api.get(
            "/api/v1/governance/indicators",
            query_string={"scope": scope, "window_days": 28, "at": day.isoformat()},
        )
        assert response.status_code == 200, response.get_json()
        return next(i for i in response.get_json()["indicators"] if i["key"] == "R4")

    org = r4("org")
    assert (org["value"], org["denominator"]) == (8.0, 2), org
    service = r4("process:service")
    assert (service["value"], service["denominator"]) == (10.0, 1), service
