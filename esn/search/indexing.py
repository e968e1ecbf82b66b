"""Indexing through the outbox: usage-event listeners enqueue ``search.index`` jobs in the
action's own transaction; after commit the handler builds the documents fresh from the
database and hands them to the configured backend.

A job names what changed, not the document: the handler reads the state at the time it runs,
so a job run twice, late or out of order writes the same current state (and the backend's
versions refuse an older one). ``SearchUnavailable`` from the backend fails the job and the
outbox retries it with back-off: nothing is lost while Elasticsearch is down.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from esn.accounts.models import User
from esn.extensions import db
from esn.outbox import enqueue, register_handler
from esn.photos.models import Photo
from esn.search.backend import DocType
from esn.search.documents import build, removal_version
from esn.social.models import Comment, Post, PostHashtag, PostKind, PostStatus
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.recorder import listen

TOPIC = "search.index"
Ref = tuple[DocType, int]


def queue(payload: dict[str, Any], session: Any = None) -> None:
    """Enqueue an index job in the current transaction (it runs after the commit)."""
    enqueue(TOPIC, payload, session=session)


def _post_refs(post_id: int) -> list[Ref]:
    post = db.session.get(Post, post_id)
    refs: list[Ref] = []
    if post is None:
        return [("post", post_id), ("article", post_id)]
    refs.append(("article" if post.kind == PostKind.article else "post", post_id))
    refs += [("comment", c) for c in db.session.scalars(
        select(Comment.id).where(Comment.post_id == post_id)
    )]  # fmt: skip
    refs += [("photo", p) for p in db.session.scalars(
        select(Photo.id).where(Photo.post_id == post_id)
    )]  # fmt: skip
    refs += [("hashtag", h) for h in db.session.scalars(
        select(PostHashtag.hashtag_id).where(PostHashtag.post_id == post_id)
    )]  # fmt: skip
    return refs


def refs_of(payload: dict[str, Any]) -> list[Ref]:
    """The documents a job's payload concerns, as the database holds them now."""
    refs: list[Ref] = []
    if "post" in payload:
        refs += _post_refs(int(payload["post"]))
    if "comment" in payload:
        refs.append(("comment", int(payload["comment"])))
    if "photo" in payload:
        refs.append(("photo", int(payload["photo"])))
    if "hashtags" in payload:
        refs += [("hashtag", int(h)) for h in payload["hashtags"]]
    if "person" in payload:
        refs.append(("person", int(payload["person"])))
    if "group" in payload:
        group_id = int(payload["group"])
        refs.append(("group", group_id))
        if payload.get("content"):
            # The group's visibility changed: so did the audience of everything in it.
            for post_id in db.session.scalars(select(Post.id).where(Post.group_id == group_id)):
                refs += _post_refs(post_id)
    if "drafts" in payload:
        # A membership change moves a group draft in or out of its author's reach.
        user_id, group_id = payload["drafts"]
        for post_id in db.session.scalars(
            select(Post.id).where(
                Post.author_id == user_id,
                Post.group_id == group_id,
                Post.status == PostStatus.draft,
            )
        ):
            refs += _post_refs(post_id)
    if "department" in payload:
        refs += [("person", u) for u in db.session.scalars(
            select(User.id).where(User.department_id == int(payload["department"]))
        )]  # fmt: skip
    if payload.get("people") == "all":
        refs += [("person", u) for u in db.session.scalars(select(User.id))]
    return list(dict.fromkeys(refs))


def refresh(refs: list[Ref]) -> None:
    """Index the current state of ``refs`` (or remove what must no longer be found) in the
    configured backend. Raises ``SearchUnavailable`` when it cannot be reached."""
    from esn.search.service import backend_for, sql_backend

    documents = []
    removals: list[tuple[DocType, int, int]] = []
    for doc_type, object_id in refs:
        doc = build(doc_type, object_id)
        if doc is None:
            removals.append((doc_type, object_id, removal_version(doc_type, object_id)))
        else:
            documents.append(doc)
    # The embedded SQL index is always kept: it answers (``degraded``) while Elasticsearch is
    # down. It is written first, so that a job failed by the cluster is only a retry for it.
    embedded = sql_backend(current_app)
    embedded.index(documents)
    embedded.remove(removals)
    backend = backend_for(current_app)
    if backend is not embedded:
        backend.index(documents)
        backend.remove(removals)


def _handle(payload: dict[str, Any]) -> None:
    refresh(refs_of(payload))


register_handler(TOPIC, _handle)


# --- listeners ----------------------------------------------------------------------------------


def _on(key: str, *, id_from: str = "object_id", **extra: Any) -> Any:
    def listener(event: UsageEvent, session: Any) -> None:
        value = getattr(event, id_from)
        if value is not None:
            queue({key: value, **extra}, session)

    return listener


def _on_group_update(event: UsageEvent, session: Any) -> None:
    fields = set((event.payload or {}).get("fields") or [])
    queue({"group": event.object_id, "content": "visibility" in fields}, session)


def _on_membership(*, actor_is_member: bool) -> Any:
    def listener(event: UsageEvent, session: Any) -> None:
        person = event.actor_id if actor_is_member else event.owner_id
        if person is None or event.group_id is None:
            return
        has_drafts = session.scalar(
            select(Post.id)
            .where(
                Post.author_id == person,
                Post.group_id == event.group_id,
                Post.status == PostStatus.draft,
            )
            .limit(1)
        )
        if has_drafts is not None:  # tokens carry membership; only group drafts need work
            queue({"drafts": [person, event.group_id]}, session)

    return listener


for _kind in (kinds.POST_PUBLISH, kinds.POST_DRAFT, kinds.POST_EDIT, kinds.POST_DELETE):
    listen(_kind, _on("post"))
for _kind in (kinds.COMMENT_CREATE, kinds.COMMENT_EDIT, kinds.COMMENT_DELETE):
    listen(_kind, _on("comment"))
listen(kinds.GROUP_CREATE, _on("group"))
listen(kinds.GROUP_ARCHIVE, _on("group"))
listen(kinds.GROUP_UPDATE, _on_group_update)
for _kind in (kinds.MEMBER_JOIN, kinds.MEMBER_LEAVE, kinds.INVITATION_ACCEPT):
    listen(_kind, _on_membership(actor_is_member=True))
for _kind in (kinds.MEMBER_REMOVE, kinds.REQUEST_APPROVE):
    listen(_kind, _on_membership(actor_is_member=False))
for _kind in (
    kinds.PROFILE_UPDATE,
    kinds.USER_CREATE,
    kinds.USER_UPDATE,
    kinds.USER_DEACTIVATE,
    kinds.USER_REACTIVATE,
    kinds.DEPARTMENT_MOVE,
):
    listen(_kind, _on("person"))
listen(kinds.DEPARTMENT_UPDATE, _on("department"))
listen(kinds.IMPORT_APPLY, lambda _event, session: queue({"people": "all"}, session))
for _kind in (kinds.PHOTO_UPLOAD, kinds.PHOTO_PLACE, kinds.PHOTO_DELETE):
    listen(_kind, _on("photo"))
