"""Search documents built from the database, with audience tokens that mirror ``esn.access``.

Each builder answers ``None`` for a thing that must not be in the index (deleted, deactivated,
a draft its author may no longer read); the indexer then removes it. The tokens, type by type:

* post / article: a draft ``{user:<author>}`` (when its author may still read it: personal, a
  group they belong to, or a public group and the author is not external); a published personal
  post ``{internal, user:<author>}`` (externals read only their own personal posts); a public
  group's post ``{internal, group:<g>}``; a private or secret group's ``{group:<g>}``;
* comment and photo caption (photos shown in posts): their post's tokens;
* group: ``{internal, group:<g>}``, a secret one ``{group:<g>}``. ``group:see`` also lets a
  pending invitee see a secret group; invitations expire by time, which no event announces, so
  search leaves invitees out (it shows less than the policy allows, never more);
* person: active people ``{internal, user:<id>}`` (``directory_filter``: internal viewers see
  active people, everyone sees themself). Site administrators also see deactivated people in
  the directory; search does not index them;
* hashtag: the union of the tokens of the published posts that carry it: a tag is suggested to
  whoever may read at least one of its posts, and never names a secret group's topic to others.

Versions are microseconds since the epoch of the newest change time of the rows a document is
built from. An index keeps a document unless it is given one of the same or a higher version
(``>=``), so changes without a time of their own (a group's visibility, a profile field) are
applied, while a job built from an older state than the stored one is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from esn.accounts.models import User, UserSkill
from esn.directory.models import Department
from esn.extensions import db
from esn.groups.models import Group, GroupMember, Visibility
from esn.photos.models import Photo, PhotoUse
from esn.search.backend import (
    INTERNAL,
    Audience,
    DocType,
    Document,
    group_token,
    user_token,
)
from esn.social.models import Comment, Hashtag, Post, PostHashtag, PostKind, PostStatus

BATCH = 2000


def version_of(*moments: datetime | None) -> int:
    """Microseconds since the epoch of the latest of ``moments`` (0 when none)."""
    latest = 0
    for m in moments:
        if m is not None:
            if m.tzinfo is None:
                m = m.replace(tzinfo=UTC)
            # Exact integer microseconds (no float rounding); a rebuild calls this millions
            # of times.
            value = int(m.timestamp()) * 1_000_000 + m.microsecond
            latest = max(latest, value)
    return latest


def viewer_audience(user: User | None) -> Audience:
    """The tokens ``user`` holds: themself, their groups, ``internal`` unless external. An
    inactive person (or nobody) holds none."""
    if user is None or not user.is_active:
        return Audience(user_id=0, tokens=frozenset())
    tokens = {user_token(user.id)}
    tokens.update(
        group_token(g)
        for g in db.session.scalars(
            select(GroupMember.group_id).where(GroupMember.user_id == user.id)
        )
    )
    if not user.is_external:
        tokens.add(INTERNAL)
    return Audience(user_id=user.id, tokens=frozenset(tokens))


# --- content ------------------------------------------------------------------------------------


def _published_audience(author_id: int, group: Group | None) -> frozenset[str]:
    if group is None:
        return frozenset({INTERNAL, user_token(author_id)})
    if group.visibility == Visibility.public:
        return frozenset({INTERNAL, group_token(group.id)})
    return frozenset({group_token(group.id)})


def _draft_readable_by_author(author_id: int, group: Group | None) -> bool:
    if group is None:
        return True
    member = db.session.scalar(
        select(GroupMember.user_id).where(
            GroupMember.group_id == group.id, GroupMember.user_id == author_id
        )
    )
    if member is not None:
        return True
    author = db.session.get(User, author_id)
    return group.visibility == Visibility.public and author is not None and not author.is_external


def post_audience(post: Any, group: Group | None) -> frozenset[str] | None:
    """The tokens of a post (an ORM ``Post`` or a row with the same attributes); ``None`` when
    nobody may read it."""
    if post.deleted_at is not None:
        return None
    if post.status != PostStatus.published:
        if not _draft_readable_by_author(post.author_id, group):
            return None
        return frozenset({user_token(post.author_id)})
    return _published_audience(post.author_id, group)


def post_version(post: Any) -> int:
    return version_of(post.created_at, post.published_at, post.edited_at)


def post_document(post: Any, group: Group | None) -> Document | None:
    audience = post_audience(post, group)
    if audience is None:
        return None
    return Document(
        type="article" if post.kind == PostKind.article else "post",
        id=post.id,
        version=post_version(post),
        audience=audience,
        title=post.title or "",
        body=post.body,
        group_id=post.group_id,
        author_id=post.author_id,
        created_at=post.published_at or post.created_at,
    )


def comment_document(comment: Any, post: Any, group: Group | None) -> Document | None:
    if comment.deleted_at is not None:
        return None
    audience = post_audience(post, group)
    if audience is None:
        return None
    return Document(
        type="comment",
        id=comment.id,
        version=version_of(comment.created_at, comment.edited_at),
        audience=audience,
        body=comment.body,
        group_id=post.group_id,
        author_id=comment.author_id,
        post_id=post.id,
        created_at=comment.created_at,
    )


def photo_document(photo: Any, post: Any | None, group: Group | None) -> Document | None:
    if (
        photo.deleted_at is not None
        or photo.use != PhotoUse.post
        or post is None
        or not (photo.caption or "").strip()
    ):
        return None
    audience = post_audience(post, group)
    if audience is None:
        return None
    return Document(
        type="photo",
        id=photo.id,
        version=version_of(photo.created_at, post.created_at, post.published_at),
        audience=audience,
        body=photo.caption,
        group_id=post.group_id,
        author_id=photo.uploader_id,
        post_id=post.id,
        created_at=photo.created_at,
    )


def group_document(group: Group) -> Document:
    tokens = {group_token(group.id)}
    if group.visibility != Visibility.secret:
        tokens.add(INTERNAL)
    return Document(
        type="group",
        id=group.id,
        version=version_of(group.created_at, group.archived_at),
        audience=frozenset(tokens),
        title=group.name,
        body=group.description,
        group_id=group.id,
        created_at=group.created_at,
    )


# --- people -------------------------------------------------------------------------------------


def person_document(user: Any, skills: Iterable[str], department: str | None) -> Document | None:
    if not user.is_active:
        return None
    return Document(
        type="person",
        id=user.id,
        version=version_of(user.created_at),
        audience=frozenset({INTERNAL, user_token(user.id)}),
        title=user.display_name,
        handle=user.handle,
        job_title=user.title or None,
        skills=tuple(sorted(skills)),
        department=department,
        location=user.location or None,
        created_at=user.created_at,
    )


def _department_names() -> dict[int, str]:
    return dict(db.session.execute(select(Department.id, Department.name)).tuples().all())


def _skills_of(user_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    rows = db.session.execute(select(UserSkill).where(UserSkill.user_id.in_(user_ids))).scalars()
    for row in rows:
        out.setdefault(row.user_id, []).append(row.skill.label)
    return out


# --- hashtags -----------------------------------------------------------------------------------


def hashtag_document(tag: Hashtag) -> Document | None:
    """Aggregated in the database: a popular tag has hundreds of thousands of posts, and a new
    tagged post re-indexes each of its tags."""
    tagged = (
        select(Post.id)
        .join(PostHashtag, PostHashtag.post_id == Post.id)
        .where(PostHashtag.hashtag_id == tag.id)
    )
    # The newest change time of any of the tag's posts, whatever their state.
    moments = db.session.execute(
        select(
            func.max(Post.created_at),
            func.max(Post.published_at),
            func.max(Post.edited_at),
            func.max(Post.deleted_at),
        ).where(Post.id.in_(tagged))
    ).one()
    readable = (Post.id.in_(tagged), Post.status == PostStatus.published, Post.deleted_at.is_(None))
    tokens: set[str] = set()
    # Posts outside groups: everyone inside (and their authors).
    for author_id in db.session.scalars(
        select(Post.author_id).where(*readable, Post.group_id.is_(None)).distinct()
    ):
        tokens |= _published_audience(author_id, None)
    for group in db.session.scalars(
        select(Group).where(Group.id.in_(select(Post.group_id).where(*readable).distinct()))
    ):
        tokens |= _published_audience(0, group)
    if not tokens:
        return None
    return Document(
        type="hashtag",
        id=tag.id,
        version=version_of(*moments),
        audience=frozenset(tokens),
        title=tag.label,
    )


def post_version_with_delete(post: Any) -> datetime | None:
    moments = [post.created_at, post.published_at, post.edited_at, post.deleted_at]
    present = [m for m in moments if m is not None]
    return max(present) if present else None


# --- one object, fresh ----------------------------------------------------------------------


def _group_map() -> dict[int, Group]:
    return {g.id: g for g in db.session.scalars(select(Group))}


def _group(group_id: int | None) -> Group | None:
    return db.session.get(Group, group_id) if group_id is not None else None


def build(doc_type: DocType, object_id: int) -> Document | None:
    """The document of one object as the database holds it now; ``None`` when it must not be
    (or no longer be) in the index."""
    match doc_type:
        case "post" | "article":
            post = db.session.get(Post, object_id)
            if post is None:
                return None
            doc = post_document(post, _group(post.group_id))
            return doc if doc is not None and doc.type == doc_type else None
        case "comment":
            comment = db.session.get(Comment, object_id)
            post = db.session.get(Post, comment.post_id) if comment else None
            if comment is None or post is None:
                return None
            return comment_document(comment, post, _group(post.group_id))
        case "photo":
            photo = db.session.get(Photo, object_id)
            if photo is None:
                return None
            post = db.session.get(Post, photo.post_id) if photo.post_id else None
            return photo_document(photo, post, _group(post.group_id if post else None))
        case "group":
            group = db.session.get(Group, object_id)
            return group_document(group) if group is not None else None
        case "person":
            user = db.session.get(User, object_id)
            if user is None:
                return None
            department = user.department.name if user.department is not None else None
            return person_document(user, user.skills, department)
        case "hashtag":
            tag = db.session.get(Hashtag, object_id)
            return hashtag_document(tag) if tag is not None else None
    return None


def removal_version(doc_type: DocType, object_id: int) -> int:
    """The version a removal carries: the newest change time of the object, deletion included
    (the largest version there is when the row is gone)."""
    gone = 2**62
    match doc_type:
        case "post" | "article":
            post = db.session.get(Post, object_id)
            return version_of(post_version_with_delete(post)) if post else gone
        case "comment":
            comment = db.session.get(Comment, object_id)
            if comment is None:
                return gone
            post = db.session.get(Post, comment.post_id)
            return max(
                version_of(comment.created_at, comment.edited_at, comment.deleted_at),
                version_of(post_version_with_delete(post)) if post else gone,
            )
        case "person":
            user = db.session.get(User, object_id)
            return version_of(user.created_at, user.deactivated_at) if user else gone
    return gone


# --- everything, in batches (rebuild and the consistency check) -------------------------------


def all_documents(doc_types: Iterable[DocType] | None = None) -> Iterator[Document]:
    """Every document the index should hold, type by type, read in batches."""
    wanted = set(doc_types) if doc_types is not None else None
    groups = _group_map()

    def want(*types: DocType) -> bool:
        return wanted is None or bool(wanted.intersection(types))

    if want("person"):
        departments = _department_names()
        last = 0
        while True:
            users = list(
                db.session.scalars(
                    select(User).where(User.id > last).order_by(User.id).limit(BATCH)
                )
            )
            if not users:
                break
            last = users[-1].id
            skills = _skills_of([u.id for u in users])
            for user in users:
                dept = departments.get(user.department_id) if user.department_id else None
                doc = person_document(user, skills.get(user.id, []), dept)
                if doc is not None:
                    yield doc
    if want("group"):
        for group in groups.values():
            yield group_document(group)
    post_cols = (
        Post.id,
        Post.kind,
        Post.author_id,
        Post.group_id,
        Post.title,
        Post.body,
        Post.status,
        Post.created_at,
        Post.published_at,
        Post.edited_at,
        Post.deleted_at,
    )
    if want("post", "article"):
        for row in _batched(select(*post_cols), Post.id):
            doc = post_document(row, groups.get(row.group_id or 0))
            if doc is not None and (wanted is None or doc.type in wanted):
                yield doc
    if want("comment"):
        stmt = select(
            Comment.id,
            Comment.body,
            Comment.author_id,
            Comment.created_at,
            Comment.edited_at,
            Comment.deleted_at,
            *[c.label(f"p_{c.key}") for c in post_cols],
        ).join(Post, Post.id == Comment.post_id)
        for row in _batched(stmt, Comment.id):
            post = _Prefixed(row, "p_")
            doc = comment_document(row, post, groups.get(row.p_group_id or 0))
            if doc is not None:
                yield doc
    if want("photo"):
        stmt = select(
            Photo.id,
            Photo.caption,
            Photo.use,
            Photo.uploader_id,
            Photo.created_at,
            Photo.deleted_at,
            *[c.label(f"p_{c.key}") for c in post_cols],
        ).join(Post, Post.id == Photo.post_id)
        for row in _batched(stmt, Photo.id):
            post = _Prefixed(row, "p_")
            doc = photo_document(row, post, groups.get(row.p_group_id or 0))
            if doc is not None:
                yield doc
    if want("hashtag"):
        for tag in list(db.session.scalars(select(Hashtag).order_by(Hashtag.id))):
            doc = hashtag_document(tag)
            if doc is not None:
                yield doc


class _Prefixed:
    """A row's ``p_*`` columns seen as a post."""

    def __init__(self, row: Any, prefix: str) -> None:
        self._row = row
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def _batched(stmt: Any, key: Any) -> Iterator[Any]:
    last = 0
    while True:
        rows = db.session.execute(stmt.where(key > last).order_by(key).limit(BATCH)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def document_counts_in_database() -> dict[str, dict[int, int]]:
    """(id → version) per type of what the index should hold: the consistency check's truth."""
    out: dict[str, dict[int, int]] = {}
    for doc in all_documents():
        out.setdefault(doc.type, {})[doc.id] = doc.version
    return out
