"""Every write of the social core: posts and articles, comments, reactions, mentions,
hashtags, accepted answers, follows and announcements. Each records its usage event."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from esn.accounts.models import User
from esn.api.problems import FieldError, conflict, not_found, validation_problem
from esn.clock import now
from esn.database import insert_ignoring_conflicts
from esn.directory.models import Department
from esn.extensions import db
from esn.groups.models import Group
from esn.processes import Process
from esn.social.markdown import Rendered, render
from esn.social.models import (
    Announcement,
    Comment,
    Follow,
    FollowType,
    Hashtag,
    Mention,
    Post,
    PostHashtag,
    PostKind,
    PostRevision,
    PostStatus,
    Reaction,
    ReactionKind,
    TargetType,
)
from esn.social.schemas import POST_MAX
from esn.usage import kinds
from esn.usage.recorder import record_usage


def _resolve_handles(handles: set[str]) -> Mapping[str, int]:
    rows = db.session.execute(
        select(User.handle, User.id).where(
            User.handle.in_(sorted(handles)), User.is_active.is_(True)
        )
    )
    return {handle.lower(): uid for handle, uid in rows}


def render_text(body: str) -> Rendered:
    return render(body, _resolve_handles)


def _post_event(kind: kinds.UsageKind, actor: User, post: Post, **extra: Any) -> None:
    record_usage(
        kind,
        actor,
        object_type="post",
        object_id=post.id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
        **extra,
    )


def _field_error(field: str, message: str) -> None:
    raise validation_problem([FieldError(pointer=f"/{field}", location="body", message=message)])


# --- hashtags and mentions ----------------------------------------------------------------------


def _hashtag_ids(tags: Mapping[str, str]) -> dict[str, int]:
    if not tags:
        return {}
    dialect = db.session.get_bind().dialect.name
    db.session.execute(
        insert_ignoring_conflicts(Hashtag.__table__, dialect),
        [{"name": name[:100], "label": label[:100]} for name, label in tags.items()],
    )
    return dict(
        db.session.execute(
            select(Hashtag.name, Hashtag.id).where(Hashtag.name.in_([n[:100] for n in tags]))
        )
        .tuples()
        .all()
    )


def _set_hashtags(post: Post, tags: Mapping[str, str], *, new: bool = False) -> None:
    if not new:
        dropped = list(
            db.session.scalars(
                delete(PostHashtag)
                .where(PostHashtag.post_id == post.id)
                .returning(PostHashtag.hashtag_id)
            )
        )
        if dropped:
            # A tag the post no longer carries may have lost its last reader: search is told
            # here, as the edit's event only names the post (which now carries the new tags).
            from esn.search.indexing import queue as queue_search_index

            queue_search_index({"hashtags": sorted(set(dropped))})
    ids = _hashtag_ids(tags)
    if ids:
        db.session.execute(
            insert(PostHashtag),
            [
                {"post_id": post.id, "hashtag_id": hid, "published_at": post.published_at}
                for hid in ids.values()
            ],
        )


def _add_mentions(
    actor: User,
    post: Post,
    source: TargetType,
    source_id: int,
    mentioned: Mapping[str, int],
    *,
    record: bool,
) -> None:
    """Make the stored mentions of a text those it now makes; with ``record`` also write the
    usage events of the new ones (published content only)."""
    existing = set(
        db.session.scalars(
            select(Mention.mentioned_id).where(
                Mention.source_type == source, Mention.source_id == source_id
            )
        )
    )
    gone = existing - set(mentioned.values())
    if gone:
        # An edit took them out: they must not be notified, nor counted when a draft is
        # published.
        db.session.execute(
            delete(Mention).where(
                Mention.source_type == source,
                Mention.source_id == source_id,
                Mention.mentioned_id.in_(gone),
            )
        )
    for person_id in sorted(set(mentioned.values()) - existing):
        db.session.add(
            Mention(
                source_type=source,
                source_id=source_id,
                post_id=post.id,
                mentioned_id=person_id,
                created_at=now(),
            )
        )
        if record:
            record_usage(
                kinds.MENTION,
                actor,
                object_type=source.value,
                object_id=source_id,
                owner_id=person_id,
                group_id=post.group_id,
                process=post.process.value,
                thread_root_id=post.id,
                payload={"source": source.value},
            )


def _record_pending_mentions(actor: User, post: Post) -> None:
    """At publication, the mentions stored while the article was a draft become events."""
    for person_id in db.session.scalars(
        select(Mention.mentioned_id).where(
            Mention.source_type == TargetType.post, Mention.source_id == post.id
        )
    ):
        record_usage(
            kinds.MENTION,
            actor,
            object_type="post",
            object_id=post.id,
            owner_id=person_id,
            group_id=post.group_id,
            process=post.process.value,
            thread_root_id=post.id,
            payload={"source": "post"},
        )


# --- posts --------------------------------------------------------------------------------------


def check_create_post(author: User, fields: dict[str, Any], group: Group | None) -> Post:
    kind = PostKind(fields["kind"])
    if kind == PostKind.article and not (fields.get("title") or "").strip():
        _field_error("title", "an article needs a title")
    if kind == PostKind.post:
        if fields.get("title"):
            _field_error("title", "a short post has no title; write an article instead")
        if not fields.get("publish", True):
            _field_error("publish", "only articles can be saved as drafts")
        if len(fields["body"]) > POST_MAX:
            _field_error("body", f"a short post has at most {POST_MAX} characters")
    if not fields["body"].strip() and not fields.get("photo_ids"):
        _field_error("body", "must not be blank (unless the post carries photos)")
    return do_create_post(author, fields, group)


def do_create_post(author: User, fields: dict[str, Any], group: Group | None) -> Post:
    rendered = render_text(fields["body"])
    publish = fields.get("publish", True)
    moment = now()
    process = fields.get("process") or (group.process if group else Process.general)
    post = Post(
        kind=PostKind(fields["kind"]),
        author_id=author.id,
        group_id=group.id if group else None,
        title=fields.get("title"),
        body=fields["body"],
        body_html=rendered.html,
        status=PostStatus.published if publish else PostStatus.draft,
        process=process,
        is_question=bool(fields.get("is_question")),
        created_at=moment,
        published_at=moment if publish else None,
        comment_count=0,
        reaction_count=0,
    )
    db.session.add(post)
    db.session.flush()
    _set_hashtags(post, rendered.hashtags, new=True)
    payload = {"kind": post.kind.value, "is_question": post.is_question}
    _post_event(kinds.POST_PUBLISH if publish else kinds.POST_DRAFT, author, post, payload=payload)
    _add_mentions(author, post, TargetType.post, post.id, rendered.mentions, record=publish)
    return post


def check_publish(author: User, post: Post) -> None:
    if post.status == PostStatus.published:
        raise conflict("This article is published already.")
    post.status = PostStatus.published
    post.published_at = now()
    db.session.execute(
        update(PostHashtag)
        .where(PostHashtag.post_id == post.id)
        .values(published_at=post.published_at)
    )
    _post_event(
        kinds.POST_PUBLISH,
        author,
        post,
        payload={"kind": post.kind.value, "is_question": post.is_question},
    )
    _record_pending_mentions(author, post)


def check_edit_post(editor: User, post: Post, changes: dict[str, Any]) -> Post:
    if "title" in changes and post.kind == PostKind.post:
        _field_error("title", "a short post has no title")
    if "title" in changes and not changes["title"].strip():
        _field_error("title", "an article needs a title")
    if "body" in changes:
        if not changes["body"].strip():
            _field_error("body", "must not be blank")
        if post.kind == PostKind.post and len(changes["body"]) > POST_MAX:
            _field_error("body", f"a short post has at most {POST_MAX} characters")
    return do_edit_post(editor, post, changes)


def do_edit_post(editor: User, post: Post, changes: dict[str, Any]) -> Post:
    changed = [k for k, v in changes.items() if getattr(post, k) != v]
    if not changed:
        return post
    db.session.add(
        PostRevision(
            post_id=post.id, editor_id=editor.id, title=post.title, body=post.body, created_at=now()
        )
    )
    for key in changed:
        setattr(post, key, changes[key])
    post.edited_at = now()
    if "body" in changed:
        rendered = render_text(post.body)
        post.body_html = rendered.html
        _set_hashtags(post, rendered.hashtags)
        _add_mentions(
            editor,
            post,
            TargetType.post,
            post.id,
            rendered.mentions,
            record=post.status == PostStatus.published,
        )
    _post_event(kinds.POST_EDIT, editor, post, payload={"fields": sorted(changed)})
    return post


def do_delete_post(actor: User, post: Post) -> None:
    if post.deleted_at is not None:
        return
    post.deleted_at = now()
    _post_event(kinds.POST_DELETE, actor, post, owner_id=post.author_id)
    from esn.photos.actions import forget_post_photos  # photos build on posts

    forget_post_photos(actor, post)


# --- comments -----------------------------------------------------------------------------------


def check_create_comment(author: User, post: Post, body: str, parent_id: int | None) -> Comment:
    if not body.strip():
        _field_error("body", "must not be blank")
    parent: Comment | None = None
    if parent_id is not None:
        parent = db.session.get(Comment, parent_id)
        if parent is None or parent.post_id != post.id or parent.deleted_at is not None:
            _field_error("parent_id", "no such comment on this post")
        assert parent is not None
        if parent.parent_id is not None:
            _field_error("parent_id", "replies go one level deep; reply to the comment itself")
    return do_create_comment(author, post, body, parent)


def do_create_comment(author: User, post: Post, body: str, parent: Comment | None) -> Comment:
    rendered = render_text(body)
    comment = Comment(
        post_id=post.id,
        parent_id=parent.id if parent else None,
        author_id=author.id,
        body=body,
        body_html=rendered.html,
        created_at=now(),
    )
    db.session.add(comment)
    db.session.flush()
    db.session.execute(
        update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count + 1)
    )
    record_usage(
        kinds.COMMENT_CREATE,
        author,
        object_type="comment",
        object_id=comment.id,
        owner_id=parent.author_id if parent else post.author_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
        payload={"is_reply": parent is not None, "on_question": post.is_question},
    )
    _add_mentions(author, post, TargetType.comment, comment.id, rendered.mentions, record=True)
    return comment


def check_edit_comment(editor: User, post: Post, comment: Comment, body: str) -> Comment:
    if not body.strip():
        _field_error("body", "must not be blank")
    if body == comment.body:
        return comment
    rendered = render_text(body)
    comment.body = body
    comment.body_html = rendered.html
    comment.edited_at = now()
    _add_mentions(editor, post, TargetType.comment, comment.id, rendered.mentions, record=True)
    record_usage(
        kinds.COMMENT_EDIT,
        editor,
        object_type="comment",
        object_id=comment.id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
    )
    return comment


def do_delete_comment(actor: User, post: Post, comment: Comment) -> None:
    if comment.deleted_at is not None:
        return
    comment.deleted_at = now()
    db.session.execute(
        update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count - 1)
    )
    if post.accepted_comment_id == comment.id:
        post.accepted_comment_id = None
    record_usage(
        kinds.COMMENT_DELETE,
        actor,
        object_type="comment",
        object_id=comment.id,
        owner_id=comment.author_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
    )


# --- reactions and answers ----------------------------------------------------------------------


def do_react(
    user: User, post: Post, target: TargetType, target_id: int, owner_id: int, kind: ReactionKind
) -> None:
    existing = db.session.scalar(
        select(Reaction).where(
            Reaction.target_type == target,
            Reaction.target_id == target_id,
            Reaction.user_id == user.id,
        )
    )
    payload = {"reaction": kind.value, "target": target.value}
    common: dict[str, Any] = dict(
        object_type=target.value,
        object_id=target_id,
        owner_id=owner_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
        payload=payload,
    )
    if existing is not None:
        if existing.kind != kind:
            existing.kind = kind
            record_usage(kinds.REACTION_CHANGE, user, **common)
        return
    db.session.add(
        Reaction(
            target_type=target, target_id=target_id, user_id=user.id, kind=kind, created_at=now()
        )
    )
    if target == TargetType.post:
        db.session.execute(
            update(Post).where(Post.id == post.id).values(reaction_count=Post.reaction_count + 1)
        )
    record_usage(kinds.REACTION_ADD, user, **common)


def do_unreact(user: User, post: Post, target: TargetType, target_id: int, owner_id: int) -> None:
    existing = db.session.scalar(
        select(Reaction).where(
            Reaction.target_type == target,
            Reaction.target_id == target_id,
            Reaction.user_id == user.id,
        )
    )
    if existing is None:
        return
    db.session.delete(existing)
    if target == TargetType.post:
        db.session.execute(
            update(Post).where(Post.id == post.id).values(reaction_count=Post.reaction_count - 1)
        )
    record_usage(
        kinds.REACTION_REMOVE,
        user,
        object_type=target.value,
        object_id=target_id,
        owner_id=owner_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
        payload={"reaction": existing.kind.value, "target": target.value},
    )


def check_accept_answer(user: User, post: Post, comment_id: int | None) -> None:
    if comment_id is None:
        post.accepted_comment_id = None
        return
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.post_id != post.id or comment.deleted_at is not None:
        _field_error("comment_id", "no such comment on this post")
    assert comment is not None
    if post.accepted_comment_id == comment.id:
        return
    post.accepted_comment_id = comment.id
    record_usage(
        kinds.ANSWER_ACCEPT,
        user,
        object_type="comment",
        object_id=comment.id,
        owner_id=comment.author_id,
        group_id=post.group_id,
        process=post.process.value,
        thread_root_id=post.id,
    )


# --- follows ------------------------------------------------------------------------------------


def do_follow(user: User, target: FollowType, target_id: int) -> bool:
    """Follow; returns False when already following."""
    if db.session.get(Follow, (user.id, target, target_id)) is not None:
        return False
    db.session.add(
        Follow(follower_id=user.id, target_type=target, target_id=target_id, created_at=now())
    )
    record_usage(
        kinds.FOLLOW,
        user,
        object_type=target.value,
        object_id=target_id,
        owner_id=target_id if target == FollowType.user else None,
        group_id=target_id if target == FollowType.group else None,
        payload={"target": target.value},
    )
    return True


def do_unfollow(user: User, target: FollowType, target_id: int) -> None:
    follow = db.session.get(Follow, (user.id, target, target_id))
    if follow is None:
        return
    db.session.delete(follow)
    record_usage(
        kinds.UNFOLLOW,
        user,
        object_type=target.value,
        object_id=target_id,
        owner_id=target_id if target == FollowType.user else None,
        group_id=target_id if target == FollowType.group else None,
        payload={"target": target.value},
    )


def hashtag_by_name(name: str) -> Hashtag:
    from esn.social.markdown import normalise_hashtag

    tag = db.session.scalar(select(Hashtag).where(Hashtag.name == normalise_hashtag(name)[:100]))
    if tag is None:
        raise not_found("hashtag")
    return tag


# --- announcements ------------------------------------------------------------------------------


def check_pin(
    actor: User, post: Post, department_id: int | None, until: datetime | None
) -> Announcement:
    if department_id is not None and db.session.get(Department, department_id) is None:
        _field_error("department_id", "no such department")
    if until is not None and (until.tzinfo is None or until <= now()):
        _field_error("pinned_until", "must be a future time with a time zone")
    existing = db.session.scalar(
        select(func.count())
        .select_from(Announcement)
        .where(
            Announcement.post_id == post.id,
            Announcement.department_id.is_(department_id)
            if department_id is None
            else Announcement.department_id == department_id,
        )
    )
    if existing:
        raise conflict("This post is pinned for that audience already.")
    pin = Announcement(
        post_id=post.id,
        department_id=department_id,
        pinned_by_id=actor.id,
        pinned_at=now(),
        pinned_until=until,
    )
    db.session.add(pin)
    db.session.flush()
    _post_event(kinds.ANNOUNCEMENT_PIN, actor, post, payload={"department_id": department_id})
    return pin


def do_unpin(actor: User, post: Post) -> None:
    removed = db.session.execute(delete(Announcement).where(Announcement.post_id == post.id))
    if getattr(removed, "rowcount", 0):
        _post_event(kinds.ANNOUNCEMENT_UNPIN, actor, post)
