"""Reading notifications: only those whose subject the recipient may still see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import Problem
from esn.extensions import db
from esn.groups.models import Group
from esn.realtime.models import Notification, NotificationKind
from esn.realtime.schemas import NotificationOut
from esn.social.models import Comment, Post
from esn.social.queries import people_refs

_TEXT = {
    NotificationKind.mention: "{who} mentioned you",
    NotificationKind.comment: "{who} commented on your post",
    NotificationKind.reply: "{who} replied to your comment",
    NotificationKind.reaction: "{who} reacted to your {what}",
    NotificationKind.follower: "{who} follows you",
    NotificationKind.invitation: "{who} invited you to {group}",
    NotificationKind.join_request: "{who} asks to join {group}",
    NotificationKind.join_approved: "You are now a member of {group}",
    NotificationKind.answer_accepted: "{who} accepted your answer",
}


def visible_notifications(user: User) -> ColumnElement[bool]:
    """Bulk form of ``delivery.visible_to``: a condition on ``Notification``. What it is about
    must still be there for the reader: a readable post, a group they see, a comment not
    deleted (a mention in it, a reply)."""
    readable_posts = select(Post.id).where(access.visible_posts(user))
    seen_groups = select(Group.id).where(access.visible_groups(user))
    deleted_comments = select(Comment.id).where(Comment.deleted_at.is_not(None))
    return and_(
        or_(
            Notification.post_id.in_(readable_posts),
            (Notification.post_id.is_(None) & (Notification.object_type == "group"))
            & Notification.object_id.in_(seen_groups),
            Notification.post_id.is_(None) & (Notification.object_type != "group"),
        ),
        or_(
            Notification.object_type.is_(None),
            Notification.object_type != "comment",
            Notification.object_id.not_in(deleted_comments),
        ),
    )


def visible_ids(user: User, ids: list[int]) -> set[int]:
    """Which of these notifications ``user`` may see now."""
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(Notification.id).where(Notification.id.in_(ids), visible_notifications(user))
        )
    )


def notifications_out(items: list[Notification]) -> list[NotificationOut]:
    people = people_refs({n.actor_id for n in items if n.actor_id is not None})
    group_ids = {n.object_id for n in items if n.object_type == "group" and n.object_id}
    names = dict(
        db.session.execute(select(Group.id, Group.name).where(Group.id.in_(group_ids)))
        .tuples()
        .all()
    )
    out = []
    for n in items:
        actor = people.get(n.actor_id) if n.actor_id is not None else None
        who = actor.display_name if actor else "Someone"
        if n.count > 1:
            who += f" and {n.count - 1} other{'s' if n.count > 2 else ''}"
        text = _TEXT[n.kind].format(
            who=who,
            what="comment" if n.object_type == "comment" else "post",
            group=names.get(n.object_id or 0, "a group"),
        )
        out.append(
            NotificationOut(
                id=n.id,
                kind=n.kind,
                actor=actor,
                count=n.count,
                text=text,
                group_id=n.group_id,
                post_id=n.post_id,
                object_type=n.object_type,
                object_id=n.object_id,
                created_at=n.created_at,
                updated_at=n.updated_at,
                read=n.read_at is not None,
            )
        )
    return out


def list_notifications(
    user: User, unread: bool, cursor: str | None, limit: int
) -> tuple[list[Notification], str | None, int]:
    base = select(Notification).where(
        Notification.recipient_id == user.id, visible_notifications(user)
    )
    unread_count = db.session.scalar(
        select(func.count()).select_from(base.where(Notification.read_at.is_(None)).subquery())
    )
    stmt = base.where(Notification.read_at.is_(None)) if unread else base
    if cursor:
        stamp, ident = decode_cursor(cursor, (str, int))
        try:
            at = datetime.fromisoformat(stamp)
        except ValueError:
            raise Problem(
                400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor"
            ) from None
        stmt = stmt.where(
            (Notification.updated_at < at)
            | ((Notification.updated_at == at) & (Notification.id < ident))
        )
    rows = list(
        db.session.scalars(
            stmt.order_by(Notification.updated_at.desc(), Notification.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].updated_at.isoformat(), rows[-1].id)
    return rows, next_cursor, int(unread_count or 0)
