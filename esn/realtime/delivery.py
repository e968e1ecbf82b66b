"""Live delivery after commit (outbox handlers), with the access policy asked again at the
moment of emitting: a notification about a thread the recipient can no longer read is not
pushed; a feed item goes only to the group's room (its members) or to followers who may read
it."""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy import Executable, select, update

from esn import access
from esn.accounts.models import User
from esn.clock import now
from esn.extensions import db
from esn.groups.models import Group
from esn.outbox import enqueue, register_handler
from esn.outbox.dispatch import later
from esn.realtime.models import Notification
from esn.realtime.notifications import NOTIFY, quiet_until
from esn.realtime.sockets import (
    close_sockets,
    group_room,
    move_sockets,
    presence,
    socketio,
    user_room,
)
from esn.social.models import Comment, Follow, FollowType, Post, PostStatus
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import listen

log = logging.getLogger("esn.realtime")

FEED = "realtime.feed"
MEMBERSHIP = "realtime.membership"
POST_DELETED = "realtime.post_deleted"
CLOSE = "realtime.close"


class QueueUnavailable(RuntimeError):
    """The shared message queue (Redis) cannot be reached: the job is retried later."""


def check_queue() -> None:
    """python-socketio drops an emit it cannot publish (it logs and gives up); asking Redis
    first turns an outage into a failed job, which the outbox retries until Redis is back."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return
    import redis

    client = _PINGERS.get(url)
    if client is None:  # one pooled client per URL, not a connection per emit
        client = _PINGERS[url] = redis.Redis.from_url(
            url, socket_timeout=1, socket_connect_timeout=1
        )
    try:
        client.ping()
    except redis.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc


_PINGERS: dict[str, Any] = {}


def _emit(event: str, data: dict[str, Any], room: str) -> None:
    check_queue()
    socketio.emit(event, data, to=room)


def visible_to(user: User, notification: Notification) -> bool:
    """Whether the recipient may still see what the notification is about."""
    if notification.object_type == "comment" and notification.object_id is not None:
        comment = db.session.get(Comment, notification.object_id)
        if comment is None or comment.deleted_at is not None:
            return False
    if notification.post_id is not None:
        post = db.session.get(Post, notification.post_id)
        return post is not None and access.can(user, "post:read", post)
    if notification.object_type == "group" and notification.object_id is not None:
        group = db.session.get(Group, notification.object_id)
        return group is not None and access.can(user, "group:see", group)
    return True


def notification_payload(n: Notification) -> dict[str, Any]:
    from esn.realtime.queries import notifications_out  # shapes live next to the API

    return notifications_out([n])[0].model_dump(mode="json")


def _deliver(payload: dict[str, Any]) -> list[Executable] | None:
    n = db.session.get(Notification, payload["id"])
    if n is None or n.read_at is not None:
        return None
    if n.delivered_at is not None and n.delivered_at >= n.updated_at:
        return None  # pushed already (a job run again after its push must not push twice)
    user = db.session.get(User, n.recipient_id)
    if user is None or not user.is_active or not visible_to(user, n):
        return None
    moment = now()
    until = quiet_until(db.session, user, moment)
    if until is not None:
        # Held back: pushed when the quiet hours end (a release job; one that comes while it
        # is quiet again sets the next), and carried by the next digest.
        return [
            update(Notification).where(Notification.id == n.id).values(held=True),
            later(NOTIFY, {"id": n.id}, until),
        ]
    if not presence().online([user.id]):
        return None  # nobody to push to: it is in their list when they come
    _emit("notification:new", notification_payload(n), user_room(user.id))
    # Recorded with the job's acknowledgement: should that fail, the job runs again and the
    # person may get the push twice (clients drop a notification id they have shown).
    return [update(Notification).where(Notification.id == n.id).values(delivered_at=moment)]


def _feed(payload: dict[str, Any]) -> None:
    post = db.session.get(Post, payload["post_id"])
    if post is None or post.deleted_at is not None or post.status != PostStatus.published:
        return
    event = payload.get("event", "feed:new_item")
    data = {"post_id": post.id, "group_id": post.group_id, "author_id": post.author_id}
    if post.group_id is not None:
        group = db.session.get(Group, post.group_id)
        if group is None:
            return
        # The room holds the group's members only (joined at connect, moved at once when
        # membership changes).
        _emit(event, data, group_room(group.id))
        audience = select(Follow.follower_id).where(
            Follow.target_type == FollowType.group, Follow.target_id == group.id
        )
    else:
        audience = select(Follow.follower_id).where(
            Follow.target_type == FollowType.user, Follow.target_id == post.author_id
        )
    # Followers outside the room: only those online, and only if they may read it now.
    followers = set(db.session.scalars(audience)) - {post.author_id}
    for user_id in sorted(presence().online(followers)):
        reader = db.session.get(User, user_id)
        if reader is not None and access.can(reader, "post:read", post):
            _emit(event, data, user_room(user_id))
    if post.group_id is None or event != "feed:new_item":
        _emit(event, data, user_room(post.author_id))


def _membership(payload: dict[str, Any]) -> None:
    member = bool(payload["member"])
    check_queue()  # a move that cannot be published fails the job, which is retried
    move_sockets(payload["user_id"], payload["group_id"], member=member)
    _emit(
        "group:membership_changed",
        {"group_id": payload["group_id"], "member": member},
        user_room(payload["user_id"]),
    )


def _close(payload: dict[str, Any]) -> None:
    """A deactivated person's open sockets are closed (their sign-in and tokens are revoked in
    the same transaction, so they cannot open new ones)."""
    check_queue()
    close_sockets(payload["user_id"])


register_handler(NOTIFY, _deliver)
register_handler(FEED, _feed)
register_handler(MEMBERSHIP, _membership)
register_handler(CLOSE, _close)


def _on_publish(event: UsageEvent, session: Any) -> None:
    enqueue(FEED, {"post_id": event.object_id}, session=session)


def _on_edit(event: UsageEvent, session: Any) -> None:
    enqueue(FEED, {"post_id": event.object_id, "event": "post:updated"}, session=session)


def _on_delete(event: UsageEvent, session: Any) -> None:
    # The post is deleted: tell the same audience it had, once, from the event itself.
    enqueue(
        POST_DELETED,
        {"post_id": event.object_id, "group_id": event.group_id, "author_id": event.owner_id},
        session=session,
    )


def _deleted(payload: dict[str, Any]) -> None:
    data = {"post_id": payload["post_id"], "group_id": payload["group_id"]}
    if payload["group_id"] is not None:
        _emit("post:deleted", data, group_room(payload["group_id"]))
    elif payload.get("author_id") is not None:
        followers = set(
            db.session.scalars(
                select(Follow.follower_id).where(
                    Follow.target_type == FollowType.user,
                    Follow.target_id == payload["author_id"],
                )
            )
        )
        for user_id in sorted(presence().online(followers | {payload["author_id"]})):
            _emit("post:deleted", data, user_room(user_id))


register_handler(POST_DELETED, _deleted)


def _member(joined: bool, *, actor_is_member: bool) -> Any:
    def listener(event: UsageEvent, session: Any) -> None:
        person = event.actor_id if actor_is_member else event.owner_id
        if person is None or event.group_id is None:
            return
        enqueue(
            MEMBERSHIP,
            {"group_id": event.group_id, "user_id": person, "member": joined},
            session=session,
        )

    return listener


def _on_deactivate(event: UsageEvent, session: Any) -> None:
    if event.owner_id is not None:
        enqueue(CLOSE, {"user_id": event.owner_id}, session=session)


listen(kinds.POST_PUBLISH, _on_publish)
listen(kinds.POST_EDIT, _on_edit)
listen(kinds.POST_DELETE, _on_delete)
# The creator of a group is its first member: their open sockets enter its room.
listen(kinds.GROUP_CREATE, _member(True, actor_is_member=True))
listen(kinds.MEMBER_JOIN, _member(True, actor_is_member=True))
listen(kinds.INVITATION_ACCEPT, _member(True, actor_is_member=True))
listen(kinds.REQUEST_APPROVE, _member(True, actor_is_member=False))
listen(kinds.MEMBER_LEAVE, _member(False, actor_is_member=True))
listen(kinds.MEMBER_REMOVE, _member(False, actor_is_member=False))
listen(kinds.USER_DEACTIVATE, _on_deactivate)
