"""Digests: calendar-aligned windows in each person's time zone, e-mailed through a real SMTP
server on loopback (aiosmtpd) and readable in the app; quiet hours, visibility at sending time,
idempotence, and an SMTP server that is down."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from flask import Flask
from sqlalchemy import select

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.extensions import db
from esn.realtime import digests
from esn.realtime.digests import DigestRun, run_digests
from esn.realtime.models import Digest, Notification
from esn.realtime.schemas import DigestItem
from tests.conftest import ApiClient, fresh, make_user

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


# --- a real SMTP server on loopback -------------------------------------------------------------


class Inbox:
    """aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(([str(r) for r in envelope.rcpt_tos], message))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.received if rcpts == [address]]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(port: int, **options: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    return _free_port()


@pytest.fixture
def app_config(smtp_port: int) -> dict[str, Any]:
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp_port, "MAIL_FROM": "esn@example.org"}


@pytest.fixture
def inbox(smtp_port: int) -> Iterator[Inbox]:
    with smtp_server(smtp_port) as received:
        yield received


# --- people and actions -------------------------------------------------------------------------


def _person(app: Flask, email: str, name: str, zone: str = "UTC") -> tuple[User, ApiClient]:
    user = make_user(email, display_name=name, time_zone=zone)
    client = ApiClient(app)
    assert client.sign_in(email).status_code == 200
    return user, client


def _channels(client: ApiClient, **channels: str) -> None:
    response = client.put("/api/v1/me/notification-preferences", json={"channels": channels})
    assert response.status_code == 200, response.get_json()


def _post(client: ApiClient, body: str, at: datetime, **fields: Any) -> int:
    with frozen_at(at):
        response = client.post("/api/v1/posts", json={"body": body, **fields})
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _run(at: datetime) -> DigestRun:
    with frozen_at(at):
        return run_digests()


def _digests(client: ApiClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/me/digests")
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["items"])


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _notification(recipient: User, post_id: int) -> Notification:
    fresh()
    found = db.session.scalars(
        select(Notification).where(
            Notification.recipient_id == recipient.id, Notification.post_id == post_id
        )
    ).one()
    return found


@pytest.fixture
def ada(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "ada@example.org", "Ada Author")


@pytest.fixture
def bea(app: Flask) -> tuple[User, ApiClient]:
    return _person(app, "bea@example.org", "Bea Berlin", "Europe/Berlin")


# --- daily windows ------------------------------------------------------------------------------


def test_daily_digests_follow_each_persons_calendar_day(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    n_user, n = _person(app, "ned@example.org", "Ned Newyork", "America/New_York")
    _channels(b, mention="daily")
    _channels(n, mention="daily")
    # 23:30 local on Tuesday 10 June belongs to that day, 00:30 to Wednesday.
    b_late = _post(a, "Late news @bea", datetime(2025, 6, 10, 23, 30, tzinfo=BERLIN))
    b_early = _post(a, "Early news @bea", datetime(2025, 6, 11, 0, 30, tzinfo=BERLIN))
    n_late = _post(a, "Late news @ned", datetime(2025, 6, 10, 23, 30, tzinfo=NEW_YORK))
    n_early = _post(a, "Early news @ned", datetime(2025, 6, 11, 0, 30, tzinfo=NEW_YORK))

    # 05:00 UTC: 07:00 in Berlin and 01:00 in New York on Wednesday; Tuesday is over for both.
    run = _run(datetime(2025, 6, 11, 5, 0, tzinfo=UTC))
    assert (run.people, run.digests, run.notifications, run.emailed, run.email_failed) == (
        2, 2, 2, 2, 0,
    )  # fmt: skip
    assert len(inbox.received) == 2
    for user, client, post_id, other, window_start in (
        (b_user, b, b_late, b_early, datetime(2025, 6, 9, 22, 0, tzinfo=UTC)),
        (n_user, n, n_late, n_early, datetime(2025, 6, 10, 4, 0, tzinfo=UTC)),
    ):
        [mail] = inbox.to(user.email)
        assert mail["To"].addresses[0].addr_spec == user.email
        assert mail["From"] == "esn@example.org"
        assert mail["Subject"] == "Your daily digest: 1 notification"
        body = mail.get_content()
        assert "Ada Author mentioned you" in body
        assert f"/posts/{post_id}" in body
        assert f"/posts/{other}" not in body

        [digest] = _digests(client)
        assert digest["period"] == "daily"
        assert _utc(digest["window_start"]) == window_start
        assert _utc(digest["window_end"]) == window_start + timedelta(days=1)
        assert digest["subject"] == mail["Subject"]
        assert digest["emailed_at"] is not None
        [item] = digest["items"]
        notification = _notification(user, post_id)
        assert item["notification_id"] == notification.id
        assert (item["kind"], item["post_id"], item["held"]) == ("mention", post_id, False)
        assert item["text"] == "Ada Author mentioned you"
        assert item["text"] in body
        assert notification.digest_id == digest["id"]
        assert _notification(user, other).digest_id is None
        # The stored items are the schema's.
        fresh()
        stored = db.session.get(Digest, digest["id"])
        assert stored is not None
        assert [DigestItem.model_validate(i).notification_id for i in stored.items] == [
            notification.id
        ]

    # Running again sends nothing more.
    again = _run(datetime(2025, 6, 11, 5, 10, tzinfo=UTC))
    assert (again.digests, again.emailed) == (0, 0)
    assert len(inbox.received) == 2

    # A day later (by the command), Wednesday's digests carry the 00:30 items.
    result = app.test_cli_runner().invoke(
        args=["notifications", "digest", "--at", "2025-06-12T05:00:00+00:00"]
    )
    assert result.exit_code == 0, result.output
    assert "2 digests made (2 notifications), 2 e-mailed" in result.output
    assert len(inbox.received) == 4
    for user, client, post_id, window_start in (
        (b_user, b, b_early, datetime(2025, 6, 10, 22, 0, tzinfo=UTC)),
        (n_user, n, n_early, datetime(2025, 6, 11, 4, 0, tzinfo=UTC)),
    ):
        newest = _digests(client)[0]
        assert _utc(newest["window_start"]) == window_start
        assert [i["post_id"] for i in newest["items"]] == [post_id]
        assert f"/posts/{post_id}" in inbox.to(user.email)[-1].get_content()


# --- weekly windows -----------------------------------------------------------------------------


def test_weekly_digest_covers_monday_to_sunday(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    _channels(b, mention="weekly")
    # The week of Monday 24 March 2025 ends on the night summer time starts in Berlin.
    before = _post(a, "@bea one", datetime(2025, 3, 23, 23, 30, tzinfo=BERLIN))  # Sunday
    first = _post(a, "@bea two", datetime(2025, 3, 24, 0, 30, tzinfo=BERLIN))  # Monday
    last = _post(a, "@bea three", datetime(2025, 3, 30, 23, 30, tzinfo=BERLIN))  # Sunday
    after = _post(a, "@bea four", datetime(2025, 3, 31, 0, 30, tzinfo=BERLIN))  # Monday

    # (Posts are written in order; the first run happens on the Monday of the first item's
    # next week, as the worker would.)
    run = _run(datetime(2025, 3, 31, 6, 0, tzinfo=UTC))
    assert (run.digests, run.emailed) == (1, 1)
    [digest] = _digests(b)
    assert digest["period"] == "weekly"
    assert _utc(digest["window_start"]) == datetime(2025, 3, 23, 23, 0, tzinfo=UTC)  # CET
    assert _utc(digest["window_end"]) == datetime(2025, 3, 30, 22, 0, tzinfo=UTC)  # CEST
    assert [i["post_id"] for i in digest["items"]] == [first, last]
    [mail] = inbox.to(b_user.email)
    assert mail["Subject"] == "Your weekly digest: 2 notifications"
    body = mail.get_content()
    assert all(f"/posts/{p}" in body for p in (first, last))
    assert all(f"/posts/{p}" not in body for p in (before, after))
    # No daily digest for weekly notifications, and nothing twice.
    assert _run(datetime(2025, 4, 1, 6, 0, tzinfo=UTC)).digests == 0
    assert len(inbox.received) == 1
    # The following week carries Monday 31 March's.
    assert _run(datetime(2025, 4, 7, 0, 5, tzinfo=BERLIN)).digests == 1
    assert [i["post_id"] for i in _digests(b)[0]["items"]] == [after]


def test_previous_week_is_built_on_monday(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    _channels(b, mention="weekly")
    sunday = _post(a, "@bea sunday", datetime(2025, 3, 23, 23, 30, tzinfo=BERLIN))
    assert _run(datetime(2025, 3, 23, 23, 50, tzinfo=BERLIN)).digests == 0  # not over yet
    assert _run(datetime(2025, 3, 24, 0, 5, tzinfo=BERLIN)).digests == 1
    [digest] = _digests(b)
    assert _utc(digest["window_start"]) == datetime(2025, 3, 16, 23, 0, tzinfo=UTC)
    assert [i["post_id"] for i in digest["items"]] == [sunday]
    assert len(inbox.to(b_user.email)) == 1


# --- quiet hours --------------------------------------------------------------------------------


def test_held_by_quiet_hours_the_next_daily_digest_carries_it(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    response = b.put("/api/v1/me/quiet-hours", json={"start": "22:00", "end": "07:00"})
    assert response.status_code == 200, response.get_json()
    day = (2025, 6, 10)
    awake = _post(a, "Before bed @bea", datetime(*day, 21, 0, tzinfo=BERLIN))
    asleep = _post(a, "Late @bea", datetime(*day, 23, 0, tzinfo=BERLIN))

    # (Nobody has a socket open here, so nothing is pushed; what counts is the hold.)
    pushed, held = _notification(b_user, awake), _notification(b_user, asleep)
    assert (pushed.channel, pushed.held) == ("live", False)
    assert (held.channel, held.held, held.delivered_at) == ("live", True, None)

    run = _run(datetime(*day, 23, 59, tzinfo=BERLIN))
    assert run.digests == 0  # the day is not over
    run = _run(datetime(2025, 6, 11, 0, 10, tzinfo=BERLIN))  # still quiet
    assert (run.digests, run.notifications, run.emailed) == (1, 1, 1)
    [digest] = _digests(b)
    assert _utc(digest["window_start"]) == datetime(*day, tzinfo=BERLIN)
    [item] = digest["items"]
    assert (item["post_id"], item["held"]) == (asleep, True)
    [mail] = inbox.to(b_user.email)
    body = mail.get_content()
    assert f"/posts/{asleep}" in body and "held during your quiet hours" in body
    assert f"/posts/{awake}" not in body


# --- what the recipient may no longer see -------------------------------------------------------


def test_content_no_longer_visible_is_left_out(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    c_user, c = _person(app, "cem@example.org", "Cem Colleague", "Europe/Berlin")
    for client in (b, c):
        _channels(client, mention="daily")
    at = datetime(2025, 6, 10, 10, 0, tzinfo=BERLIN)
    with frozen_at(at):
        response = a.post("/api/v1/groups", json={"name": "Skunkworks", "visibility": "private"})
        assert response.status_code == 201, response.get_json()
        group = response.get_json()["id"]
        for client in (b, c):
            assert client.post(f"/api/v1/groups/{group}/join").status_code == 200
    _post(a, "Secret plans @bea @cem", at + timedelta(minutes=1), group_id=group)
    gone = _post(a, "Oops @bea", at + timedelta(minutes=2))
    kept = _post(a, "Public news @cem", at + timedelta(minutes=3))
    with frozen_at(at + timedelta(minutes=4)):
        comment = a.post(f"/api/v1/posts/{kept}/comments", json={"body": "and @cem again"})
        assert comment.status_code == 201, comment.get_json()
        assert a.delete(f"/api/v1/comments/{comment.get_json()['id']}").status_code == 204
        assert a.delete(f"/api/v1/posts/{gone}").status_code == 204
        assert b.post(f"/api/v1/groups/{group}/leave").status_code == 204
        assert a.delete(f"/api/v1/groups/{group}/members/{c_user.id}").status_code == 204
    fresh()
    waiting = db.session.scalars(
        select(Notification.recipient_id).where(Notification.digest_id.is_(None))
    ).all()
    assert sorted(waiting) == sorted([b_user.id] * 2 + [c_user.id] * 3)

    run = _run(datetime(2025, 6, 11, 6, 0, tzinfo=UTC))
    # Bea may see none of hers: no digest at all. Cem only the public post.
    assert (run.people, run.digests, run.notifications, run.emailed) == (2, 1, 1, 1)
    assert _digests(b) == []
    assert inbox.to(b_user.email) == []
    [digest] = _digests(c)
    assert [i["post_id"] for i in digest["items"]] == [kept]
    [mail] = inbox.to(c_user.email)
    assert mail["Subject"] == "Your daily digest: 1 notification"
    assert "Skunkworks" not in mail.get_content()
    # Nothing comes of it later either.
    assert _run(datetime(2025, 6, 12, 6, 0, tzinfo=UTC)).digests == 0
    assert len(inbox.received) == 1


# --- SMTP down ----------------------------------------------------------------------------------


def test_smtp_down_keeps_the_digest_and_a_later_run_emails_it_once(
    app: Flask, smtp_port: int, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    _channels(b, mention="daily")
    post = _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))

    # Nothing listens on the port.
    run = _run(datetime(2025, 6, 11, 6, 0, tzinfo=UTC))
    assert (run.digests, run.emailed, run.email_failed) == (1, 0, 1)
    [digest] = _digests(b)
    assert digest["emailed_at"] is None
    assert [i["post_id"] for i in digest["items"]] == [post]
    fresh()
    stored = db.session.get(Digest, digest["id"])
    assert stored is not None and stored.email_error
    assert not stored.email_error.startswith("sending")

    with smtp_server(smtp_port) as inbox:
        later = _run(datetime(2025, 6, 11, 6, 10, tzinfo=UTC))
        assert (later.digests, later.emailed, later.retried, later.email_failed) == (0, 1, 1, 0)
        [mail] = inbox.to(b_user.email)
        assert mail["Subject"] == digest["subject"]
        assert f"/posts/{post}" in mail.get_content()
        [again] = _digests(b)
        assert again["id"] == digest["id"] and again["emailed_at"] is not None
        fresh()
        stored = db.session.get(Digest, digest["id"])
        assert stored is not None and stored.email_error is None
        # Once only.
        assert _run(datetime(2025, 6, 11, 6, 20, tzinfo=UTC)).emailed == 0
        assert len(inbox.received) == 1


def test_failed_emails_are_retried_for_seven_days_only(
    app: Flask, smtp_port: int, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    _, b = bea
    _channels(b, mention="daily")
    _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))
    assert _run(datetime(2025, 6, 11, 6, 0, tzinfo=UTC)).email_failed == 1
    with smtp_server(smtp_port) as inbox:
        assert _run(datetime(2025, 6, 19, 6, 0, tzinfo=UTC)).emailed == 0
        assert inbox.received == []
    [digest] = _digests(b)
    assert digest["emailed_at"] is None


def test_without_smtp_host_digests_are_kept_in_the_app(
    app: Flask, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    _, b = bea
    app.config["SMTP_HOST"] = ""
    _channels(b, mention="daily")
    post = _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))
    run = _run(datetime(2025, 6, 11, 6, 0, tzinfo=UTC))
    assert (run.digests, run.emailed, run.email_failed) == (1, 0, 0)
    assert "e-mail off" in str(run)
    [digest] = _digests(b)
    assert [i["post_id"] for i in digest["items"]] == [post]
    fresh()
    stored = db.session.get(Digest, digest["id"])
    assert stored is not None and stored.email_error is None and stored.emailed_at is None


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_signs_in_to_the_smtp_server_when_configured(
    app: Flask, smtp_port: int, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    app.config.update(SMTP_USER="esn-mailer", SMTP_PASSWORD="mail secret")
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"esn-mailer", b"mail secret"))

    _channels(b, mention="daily")
    _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))
    options = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True}
    with smtp_server(smtp_port, **options) as inbox:
        assert _run(datetime(2025, 6, 11, 6, 0, tzinfo=UTC)).emailed == 1
        assert logins == [(b"esn-mailer", b"mail secret")]
        assert len(inbox.to(b_user.email)) == 1


# --- two runs at once ---------------------------------------------------------------------------


def test_two_runs_at_once_make_and_send_each_digest_once(
    app: Flask,
    inbox: Inbox,
    ada: tuple[User, ApiClient],
    bea: tuple[User, ApiClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, a = ada
    b_user, b = bea
    _channels(b, mention="daily")
    _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))
    fresh()
    # Both runs find the window to build. On PostgreSQL both also plan inside their write
    # transactions before either inserts: the unique key decides. (SQLite has one writer at a
    # time: the second run waits, then finds the digest made.)
    together = threading.Barrier(2, timeout=10)
    meet_in_write = db.engine.dialect.name == "postgresql"
    plan = digests._plan
    calls = threading.local()

    def planned(user: User, moment: datetime) -> Any:
        found = plan(user, moment)
        calls.n = getattr(calls, "n", 0) + 1
        if calls.n == 1 or meet_in_write:
            together.wait()
        return found

    monkeypatch.setattr(digests, "_plan", planned)
    runs: list[DigestRun] = []
    failures: list[BaseException] = []

    def one_run() -> None:
        try:
            with app.app_context():
                runs.append(run_digests(datetime(2025, 6, 11, 6, 0, tzinfo=UTC)))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sorted(r.digests for r in runs) == [0, 1]
    assert sum(r.errors for r in runs) == 0
    assert len(inbox.to(b_user.email)) == 1
    assert len(_digests(b)) == 1


# --- the command and the worker -----------------------------------------------------------------


def test_the_worker_runs_the_digest_pass(
    app: Flask, inbox: Inbox, ada: tuple[User, ApiClient], bea: tuple[User, ApiClient]
) -> None:
    _, a = ada
    b_user, b = bea
    _channels(b, mention="daily")
    post = _post(a, "News @bea", datetime(2025, 6, 10, 12, 0, tzinfo=BERLIN))
    with frozen_at(datetime(2025, 6, 11, 6, 0, tzinfo=UTC)):
        result = app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert [i["post_id"] for i in _digests(b)[0]["items"]] == [post]
    assert len(inbox.to(b_user.email)) == 1


@pytest.mark.parametrize("at", ["yesterday", "2999-01-01T00:00:00+00:00"])
def test_the_command_refuses_a_bad_moment(app: Flask, at: str) -> None:
    result = app.test_cli_runner().invoke(args=["notifications", "digest", "--at", at])
    assert result.exit_code == 2
    assert "--at" in result.output
