"""Live delivery end to end: the application served on loopback by a threaded WSGI server, real
Socket.IO clients (python-socketio over a websocket), and requests through the HTTP API.

The outbox runs with ``OUTBOX_DISPATCH="sync"``: each job runs in the committing request's
thread right after the commit, so every event a request causes has been handed to the sockets
before its HTTP response comes back. Tests still wait for events with a bounded poll (they
cross a socket), and prove an absence with a barrier: a later event that legitimately goes to
the same socket (a socket delivers in order).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from esn.accounts.actions import do_create_token
from esn.accounts.auth import Credential
from esn.accounts.models import User
from esn.clock import now
from esn.extensions import db
from esn.groups.actions import do_join
from esn.groups.models import Group
from esn.outbox.models import OutboxJob
from esn.realtime.models import Notification
from esn.realtime.notifications import NOTIFY
from esn.realtime.sockets import was_opened_with
from tests.conftest import PASSWORD, fresh, make_user
from tests.realtime.live import WAIT, Http, Live


@pytest.fixture
def app_config() -> dict[str, Any]:
    # sync: delivery right after the commit, in the server's request thread. Plain http on
    # loopback, so the session cookie must not be Secure.
    return {"OUTBOX_DISPATCH": "sync", "COOKIE_SECURE": False}


@pytest.fixture
def base(app: Flask) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def sockets(base: str) -> Iterator[list[Live]]:
    """Every client a test opens; all closed before the server stops."""
    opened: list[Live] = []
    yield opened
    for live in opened:
        live.disconnect()


class Person:
    def __init__(self, user: User, token: str, base: str) -> None:
        self.id = user.id
        self.email = user.email
        self.handle = user.email.split("@")[0]
        self.token = token
        self.http = Http(base, token)


@pytest.fixture
def people(app: Flask, base: str) -> Any:
    def make(name: str, **fields: Any) -> Person:
        user = make_user(f"{name}@example.org", **fields)
        _, token = do_create_token(user, "socket test", None)
        db.session.commit()
        return Person(user, token, base)

    return make


@pytest.fixture
def connect(base: str, sockets: list[Live]) -> Any:
    def open_socket(person: Person | None, name: str = "", **options: Any) -> Live:
        live = Live(name or (person.handle if person else "anonymous"))
        sockets.append(live)
        if person is not None and "auth" not in options and "headers" not in options:
            options["auth"] = {"token": person.token}
        return live.connect(base, **options)

    return open_socket


def join(person: Person, group_id: int) -> None:
    fresh()
    do_join(db.session.get(User, person.id), db.session.get(Group, group_id))
    db.session.commit()


def barrier(sender: Person, to: Person, live: Live) -> int:
    """A public post by ``sender`` mentioning ``to``; returns once ``to``'s socket has the
    notification about it (so everything emitted to that socket earlier has arrived)."""
    post_id = sender.http.post_in(f"Barrier for @{to.handle}")
    live.wait_for("notification:new", lambda d: d["post_id"] == post_id)
    return post_id


# --- (a) notifications reach the person at once --------------------------------------------


def test_mention_comment_and_reply_reach_the_person_live(people: Any, connect: Any) -> None:
    a, b = people("ann"), people("bob")
    live_b = connect(b)
    # The same person by an Authorization header: every socket of theirs gets it.
    header_b = connect(b, "bob-by-header", headers={"Authorization": f"Bearer {b.token}"})
    live_a = connect(a)

    mention = a.http.post_in(f"Hello @{b.handle}, have a look")
    got = live_b.wait_for("notification:new", lambda d: d["post_id"] == mention)
    assert got["kind"] == "mention"
    assert got["text"] == "Ann mentioned you"
    assert got["actor"]["id"] == a.id
    assert got["read"] is False
    assert header_b.wait_for("notification:new", lambda d: d["post_id"] == mention) == got

    own = b.http.post_in("Bob's own post")
    comment = a.http.comment(own, "A comment from Ann")
    got = live_b.wait_for(
        "notification:new", lambda d: d["kind"] == "comment" and d["object_id"] == comment
    )
    assert (got["kind"], got["text"], got["post_id"]) == (
        "comment",
        "Ann commented on your post",
        own,
    )

    bobs = b.http.comment(mention, "Bob answers on Ann's post")
    reply = a.http.comment(mention, "Ann replies to Bob", parent_id=bobs)
    got = live_b.wait_for(
        "notification:new", lambda d: d["kind"] == "reply" and d["object_id"] == reply
    )
    assert (got["kind"], got["text"], got["post_id"]) == (
        "reply",
        "Ann replied to your comment",
        mention,
    )
    # Ann got Bob's comment on her post, and never anything addressed to Bob.
    live_a.wait_for("notification:new", lambda d: d["kind"] == "comment" and d["object_id"] == bobs)
    assert {d["kind"] for d in live_a.matching("notification:new")} == {"comment"}
    # Stored as delivered.
    fresh()
    rows = db.session.scalars(select(Notification).where(Notification.recipient_id == b.id))
    assert all(n.delivered_at is not None and not n.held for n in rows)


# --- (b) outsiders get nothing of a private or secret group ---------------------------------


FORGED = ["join", "enter_room", "subscribe", "join_room", "room"]


def forge(live: Live, rooms: list[str]) -> None:
    for event in FORGED:
        for room in rooms:
            live.client.emit(event, room)
            live.client.emit(event, {"room": room})
        live.client.emit(event, rooms)


def test_non_members_receive_nothing_of_private_or_secret_groups(
    app: Flask, base: str, people: Any, connect: Any
) -> None:
    owner, member, outsider = people("olga"), people("mia"), people("xavier")
    # Outsider follows the group while it is public; it then becomes private.
    private = owner.http.create_group("Board", "public")
    outsider.http.call("PUT", f"/groups/{private}/follow", 204)
    owner.http.call("PATCH", f"/groups/{private}", json={"visibility": "private"})
    secret = owner.http.create_group("Skunkworks", "secret")
    join(member, private)
    join(member, secret)

    live_member = connect(member)
    rooms = [f"group:{private}", f"group:{secret}", f"user:{member.id}", f"user:{owner.id}"]
    first = connect(outsider, "outsider-1")
    forge(first, rooms)
    first.disconnect()
    live_outsider = connect(outsider, "outsider-2")  # reconnected
    forge(live_outsider, rooms)
    by_header = connect(
        outsider, "outsider-header", headers={"Authorization": f"Bearer {outsider.token}"}
    )
    forge(by_header, rooms)

    # Refused: a bad token, a revoked-looking one, no credentials at all.
    for name, options in [
        ("bad-token", {"auth": {"token": "esn_not-a-real-token"}}),
        ("garbage-auth", {"auth": {"token": 12345}}),
        ("bad-header", {"headers": {"Authorization": "Bearer esn_nope"}}),
        ("anonymous", {}),
    ]:
        refused = Live(name)
        with pytest.raises(socketio.exceptions.ConnectionError):
            refused.connect(base, **options)
        assert not refused.client.connected
        refused.disconnect()

    # Members write in both groups, mentioning the outsider too; edits and a deletion.
    for group in (private, secret):
        post = owner.http.post_in(f"Confidential, @{member.handle} and @{outsider.handle}", group)
        member.http.comment(post, f"Noted @{outsider.handle} @{owner.handle}")
        owner.http.call("PATCH", f"/posts/{post}", json={"body": "Confidential (edited)"})
        live_member.wait_for("feed:new_item", lambda d, p=post: d["post_id"] == p)
        live_member.wait_for("post:updated", lambda d, p=post: d["post_id"] == p)
        live_member.wait_for("notification:new", lambda d, p=post: d["post_id"] == p)
        gone = owner.http.post_in("To be deleted", group)
        owner.http.call("DELETE", f"/posts/{gone}", 204)
        live_member.wait_for("post:deleted", lambda d, p=gone: d["post_id"] == p)
        assert live_member.wait_for("feed:new_item", lambda d, p=gone: d["post_id"] == p)

    last = barrier(owner, outsider, live_outsider)
    header_last = by_header.wait_for("notification:new", lambda d: d["post_id"] == last)
    for live in (live_outsider, by_header):
        assert [e for e, d in live.events] == ["notification:new"], live.events
    assert header_last["post_id"] == last
    assert [e for e, _ in first.events] == ["disconnect"]  # ours
    # Nor is anything of the groups listed for them.
    assert [n["post_id"] for n in outsider.http.notifications()] == [last]


# --- (c) removal and leaving stop delivery at once -------------------------------------------


def test_removal_and_leaving_stop_group_delivery_at_once(people: Any, connect: Any) -> None:
    owner, kept, removed, leaver = people("olga"), people("kim"), people("remy"), people("lea")
    group = owner.http.create_group("Project X", "private")
    for person in (kept, removed, leaver):
        join(person, group)
    live_owner, live_kept = connect(owner), connect(kept)
    live_removed, live_leaver = connect(removed), connect(leaver)

    first = owner.http.post_in("First", group)
    for live in (live_owner, live_kept, live_removed, live_leaver):
        live.wait_for("feed:new_item", lambda d: d["post_id"] == first)

    owner.http.call("DELETE", f"/groups/{group}/members/{removed.id}", 204)
    assert live_removed.wait_for("group:membership_changed") == {"group_id": group, "member": False}
    second = kept.http.post_in("Second", group)  # at once: no wait after the removal
    for live in (live_owner, live_kept, live_leaver):
        live.wait_for("feed:new_item", lambda d: d["post_id"] == second)
    barrier(owner, removed, live_removed)
    live_removed.assert_none("feed:new_item", lambda d: d["post_id"] == second)

    leaver.http.call("POST", f"/groups/{group}/leave", 204)
    assert live_leaver.wait_for("group:membership_changed") == {"group_id": group, "member": False}
    third = owner.http.post_in("Third", group)
    for live in (live_owner, live_kept):
        live.wait_for("feed:new_item", lambda d: d["post_id"] == third)
    barrier(owner, leaver, live_leaver)
    live_leaver.assert_none("feed:new_item", lambda d: d["post_id"] == third)

    # Reconnecting does not bring them back into the room.
    again = connect(removed, "removed-again")
    fourth = owner.http.post_in("Fourth", group)
    live_kept.wait_for("feed:new_item", lambda d: d["post_id"] == fourth)
    barrier(owner, removed, again)
    for live in (again, live_removed, live_leaver):
        live.assert_none("feed:new_item", lambda d: d["post_id"] in (third, fourth))
    assert live_kept.matching("group:membership_changed") == []


# --- (d) the session cookie: the site's own origin only ----------------------------------------


def test_session_cookie_socket_needs_the_sites_own_origin(
    base: str, people: Any, connect: Any
) -> None:
    a, b = people("ann"), people("bob")
    cookie = Http(base).sign_in(b.email, PASSWORD)
    # The only Origin header sent is ours (websocket-client adds its own unless suppressed).
    own = {"websocket_extra_options": {"suppress_origin": True}}

    for transports in (["websocket"], ["polling"]):
        foreign = Live(f"foreign-{transports[0]}", **own)
        with pytest.raises(socketio.exceptions.ConnectionError):
            foreign.connect(
                base,
                transports=transports,
                headers={"Cookie": cookie, "Origin": "https://evil.example"},
            )
        foreign.disconnect()
    # The same cookie from a look-alike origin (another port, another scheme) is refused too.
    for origin in (base.replace("127.0.0.1:", "127.0.0.1:1"), base.replace("http:", "https:")):
        lookalike = Live("lookalike", **own)
        with pytest.raises(socketio.exceptions.ConnectionError):
            lookalike.connect(base, headers={"Cookie": cookie, "Origin": origin})
        lookalike.disconnect()

    same = Live("same-origin", **own)
    connect_ok = same.connect(base, headers={"Cookie": cookie, "Origin": base})
    try:
        post = a.http.post_in(f"Hi @{b.handle}")
        got = connect_ok.wait_for("notification:new", lambda d: d["post_id"] == post)
        assert got["kind"] == "mention"
    finally:
        same.disconnect()
    # Without the cookie, the same origin is refused (no one is signed in).
    nobody = Live("no-cookie", **own)
    with pytest.raises(socketio.exceptions.ConnectionError):
        nobody.connect(base, headers={"Origin": base})
    nobody.disconnect()


# --- (e) quiet hours hold live delivery back ---------------------------------------------------


def test_quiet_hours_hold_back_live_delivery(people: Any, connect: Any) -> None:
    a, b = people("ann"), people("bob", time_zone="UTC")
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    quiet = b.http.call(
        "PUT", "/me/quiet-hours", json={"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"}
    )
    assert quiet["quiet_now"] is True
    b.http.call("PUT", f"/people/{a.id}/follow", 204)  # B's socket gets A's posts: a barrier
    live_b = connect(b)

    post = a.http.post_in(f"Psst @{b.handle}")
    listed = [n for n in b.http.notifications() if n["post_id"] == post]
    assert [n["kind"] for n in listed] == ["mention"]
    after = a.http.post_in("A later post")
    live_b.wait_for("feed:new_item", lambda d: d["post_id"] == after)  # the socket is live
    live_b.assert_none("notification:new", within=1.0)

    fresh()
    n = db.session.get(Notification, listed[0]["id"])
    assert n is not None and n.held and n.delivered_at is None
    jobs = db.session.scalars(select(OutboxJob).where(OutboxJob.topic == NOTIFY)).all()
    assert [j.payload for j in jobs] == [{"id": n.id}]
    # Pushed when the quiet hours end (to the minute they were set at).
    expected = end.replace(second=0, microsecond=0)
    assert abs(jobs[0].available_at - expected) < timedelta(minutes=1)


# --- membership that starts or ends without a join/leave -----------------------------------------


def test_creating_a_group_puts_the_creators_open_sockets_in_its_room(
    people: Any, connect: Any
) -> None:
    owner, member = people("olga"), people("mia")
    live_owner = connect(owner)  # open before the group exists
    group = owner.http.create_group("New team", "private")
    assert live_owner.wait_for("group:membership_changed") == {"group_id": group, "member": True}
    join(member, group)
    post = member.http.post_in("Welcome to the new team", group)
    live_owner.wait_for("feed:new_item", lambda d: d["post_id"] == post)


def test_deactivation_closes_the_persons_sockets(app: Flask, people: Any, connect: Any) -> None:
    admin = people("ada", roles=["admin", "employee"])
    owner, leaving = people("olga"), people("ex")
    group = owner.http.create_group("Board", "private")
    join(leaving, group)
    live = connect(leaving)
    first = owner.http.post_in("Before", group)
    live.wait_for("feed:new_item", lambda d: d["post_id"] == first)

    admin.http.call("POST", f"/admin/users/{leaving.id}/deactivate")
    # Signed out everywhere: the open socket is closed too (and not reconnected: reconnection
    # is off in these clients), so nothing more of the group reaches it.
    live.wait_for("disconnect")
    after = owner.http.post_in("After", group)
    assert [d["post_id"] for d in live.matching("feed:new_item")] == [first]
    assert after != first
    again = Live("ex-again")
    with pytest.raises(socketio.exceptions.ConnectionError):
        again.connect(owner.http.base, auth={"token": leaving.token})


# --- sign-out, revocation, password change and expiry close the sockets they concern ----------


class Browser:
    """A browser signed in as someone, with a socket opened by its session cookie."""

    def __init__(self, base: str, sockets: list[Live], email: str, name: str) -> None:
        self.base = base
        self.http = Http(base)
        self.cookie = self.http.sign_in(email, PASSWORD)
        self.live = Live(name, websocket_extra_options={"suppress_origin": True})
        sockets.append(self.live)
        self.live.connect(base, headers={"Cookie": self.cookie, "Origin": base})

    def csrf(self) -> dict[str, str]:
        return {"X-CSRFToken": self.http.call("GET", "/auth/session")["csrf_token"]}

    def refused(self, cookie: str) -> bool:
        """Whether a socket with this Cookie header is refused."""
        again = Live("again", websocket_extra_options={"suppress_origin": True})
        try:
            again.connect(self.base, headers={"Cookie": cookie, "Origin": self.base})
        except socketio.exceptions.ConnectionError:
            return True
        again.disconnect()
        return False


def token_id(person: Person, name: str) -> int:
    items = person.http.call("GET", "/me/tokens")["items"]
    return int(next(t["id"] for t in items if t["name"] == name))


def test_sign_out_closes_the_sockets_of_that_sign_in_only(
    base: str, people: Any, connect: Any, sockets: list[Live]
) -> None:
    a, b = people("ann"), people("bob")
    leaving = Browser(base, sockets, b.email, "bob-browser-1")
    staying = Browser(base, sockets, b.email, "bob-browser-2")
    by_token = connect(b, "bob-token")

    leaving.http.call("POST", "/auth/sign-out", 204, headers=leaving.csrf())
    leaving.live.wait_for("disconnect")
    # The person's other sign-in and their token socket stay open and still get notifications.
    last = barrier(a, b, by_token)
    staying.live.wait_for("notification:new", lambda d: d["post_id"] == last)
    assert staying.live.client.connected and by_token.client.connected
    assert leaving.live.matching("notification:new") == []
    # The signed-out browser's cookie opens no socket any more.
    jar = "; ".join(f"{c.name}={c.value}" for c in leaving.http.session.cookies)
    assert leaving.refused(jar)


def test_revoking_a_token_closes_the_sockets_it_opened_only(
    base: str, people: Any, connect: Any, sockets: list[Live]
) -> None:
    a, b = people("ann"), people("bob")
    fresh()
    _, second = do_create_token(db.session.get(User, b.id), "second", None)
    db.session.commit()
    first_id = token_id(b, "socket test")
    by_auth = connect(b, "bob-token-a")
    by_header = connect(b, "bob-token-a-header", headers={"Authorization": f"Bearer {b.token}"})
    other = connect(b, "bob-token-b", auth={"token": second})
    browser = Browser(base, sockets, b.email, "bob-browser")

    Http(base, second).call("DELETE", f"/me/tokens/{first_id}", 204)
    by_auth.wait_for("disconnect")
    by_header.wait_for("disconnect")
    last = barrier(a, b, other)
    browser.live.wait_for("notification:new", lambda d: d["post_id"] == last)
    assert other.client.connected and browser.live.client.connected
    # The revoked token opens no socket any more, by ``auth`` or by header.
    header = {"Authorization": f"Bearer {b.token}"}
    for options in ({"auth": {"token": b.token}}, {"headers": header}):
        again = Live("bob-token-a-again")
        with pytest.raises(socketio.exceptions.ConnectionError):
            again.connect(base, **options)
        again.disconnect()


def test_a_password_change_closes_the_sockets_of_the_other_sign_ins(
    base: str, people: Any, connect: Any, sockets: list[Live]
) -> None:
    a, b = people("ann"), people("bob")
    changing = Browser(base, sockets, b.email, "bob-changing")
    other = Browser(base, sockets, b.email, "bob-elsewhere")
    by_token = connect(b, "bob-token")

    changing.http.call(
        "PUT",
        "/me/password",
        204,
        json={"current_password": PASSWORD, "new_password": "a new and long passphrase"},
        headers=changing.csrf(),
    )
    other.live.wait_for("disconnect")
    # The sign-in that changed it stays signed in, and so does its socket; tokens are not
    # sign-ins.
    last = barrier(a, b, by_token)
    changing.live.wait_for("notification:new", lambda d: d["post_id"] == last)
    assert changing.live.client.connected
    assert other.refused(other.cookie)


def test_a_socket_closes_when_its_token_expires(base: str, people: Any, connect: Any) -> None:
    b = people("bob")
    fresh()
    token, secret = do_create_token(db.session.get(User, b.id), "short-lived", None)
    token.expires_at = now() + timedelta(seconds=2)
    db.session.commit()
    live = connect(b, "bob-short-lived", auth={"token": secret})
    opened = time.monotonic()
    live.wait_for("disconnect", timeout=WAIT)
    assert time.monotonic() - opened > 1.0  # closed at the expiry, not at once
    again = Live("bob-expired")
    with pytest.raises(socketio.exceptions.ConnectionError):
        again.connect(base, auth={"token": secret})
    again.disconnect()


@pytest.mark.parametrize(
    "app_config",
    [{"OUTBOX_DISPATCH": "sync", "COOKIE_SECURE": False, "SESSION_LIFETIME_HOURS": 3 / 3600}],
)
def test_a_cookie_socket_closes_when_its_session_expires(
    base: str, people: Any, sockets: list[Live]
) -> None:
    """Flask refuses a session cookie signed longer ago than the session lifetime (3 s here);
    a socket opened with it is closed at that moment, and it opens no new one."""
    b = people("bob")
    browser = Browser(base, sockets, b.email, "bob-browser")
    browser.live.wait_for("disconnect", timeout=WAIT)
    assert browser.refused(browser.cookie)


def test_which_sockets_a_close_names() -> None:
    one = Credential("session", "s1", epoch=2)
    old = Credential("session", None, epoch=1)
    token = Credential("token", 7)
    cases = [
        (None, [one, old, token, None]),
        ({"kind": "session", "id": "s1"}, [one]),
        ({"kind": "session", "id": None}, [old]),
        ({"kind": "token", "id": 7}, [token]),
        ({"kind": "token", "id": 8}, []),
        ({"kind": "session", "epoch_below": 3}, [one, old]),
        ({"kind": "session", "epoch_below": 2}, [old]),
        ({"kind": "session", "epoch_below": 3, "keep_id": "s1"}, [old]),
    ]
    for wanted, closed in cases:
        assert [c for c in (one, old, token, None) if was_opened_with(c, wanted)] == closed, wanted
