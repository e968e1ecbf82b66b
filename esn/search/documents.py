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
from esn.database import as_utc
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
            # of times, hence no call of max().
            value = int(m.timestamp()) * 1_000_000 + m.microsecond
            if value > latest:
                latest = value
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
    return _group_audience(group.id, group.visibility)


def _group_audience(group_id: int, visibility: str) -> frozenset[str]:
    """A published group post's tokens (``visibility`` a ``Visibility`` or its stored value)."""
    if visibility == Visibility.public:
        return frozenset({INTERNAL, group_token(group_id)})
    return frozenset({group_token(group_id)})


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
    return _live_post_audience(post.author_id, group, post.status == PostStatus.published)


def _live_post_audience(
    author_id: int, group: Group | None, published: bool
) -> frozenset[str] | None:
    """The tokens of a post that is not deleted."""
    if not published:
        if not _draft_readable_by_author(author_id, group):
            return None
        return frozenset({user_token(author_id)})
    return _published_audience(author_id, group)


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
    return next(_hashtag_documents({tag.id: tag.label}, only=tag.id), None)


def _hashtag_documents(labels: dict[int, str], only: int | None = None) -> Iterator[Document]:
    """The documents of the tags in ``labels`` (id → label, in that order) that have a
    readable post: of one tag (``only``), or of all at once (the rebuild: three grouped queries
    instead of three per tag).

    The queries start from ``post_hashtags`` (by tag) and reach the posts by primary key; one
    of the form ``posts WHERE id IN (the tag's posts) AND group_id IS NULL`` makes SQLite scan
    every post outside groups instead, for each tag."""

    def tagged(*columns: Any) -> Any:
        stmt = select(PostHashtag.hashtag_id, *columns).join(Post, Post.id == PostHashtag.post_id)
        return stmt if only is None else stmt.where(PostHashtag.hashtag_id == only)

    readable = (Post.status == PostStatus.published, Post.deleted_at.is_(None))
    tokens: dict[int, set[str]] = {}
    # Posts outside groups: everyone inside (and their authors).
    for tag_id, author_id in db.session.execute(
        tagged(Post.author_id).where(*readable, Post.group_id.is_(None)).distinct()
    ):
        tokens.setdefault(tag_id, set()).update(_published_audience(author_id, None))
    # Posts in groups: the group's tokens (one row per tag and group).
    for tag_id, group_id, visibility in db.session.execute(
        tagged(Group.id, Group.visibility)
        .join(Group, Group.id == Post.group_id)
        .where(*readable)
        .distinct()
    ):
        tokens.setdefault(tag_id, set()).update(_group_audience(group_id, visibility))
    # The newest change time of any of the tag's posts, whatever their state.
    moments = {
        row[0]: row[1:]
        for row in db.session.execute(
            tagged(
                func.max(Post.created_at),
                func.max(Post.published_at),
                func.max(Post.edited_at),
                func.max(Post.deleted_at),
            ).group_by(PostHashtag.hashtag_id)
        )
    }
    for tag_id, label in labels.items():
        if tokens.get(tag_id):
            yield Document(
                type="hashtag",
                id=tag_id,
                version=version_of(*moments[tag_id]),
                audience=frozenset(tokens[tag_id]),
                title=label,
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
    """Every document the index should hold, type by type, read in batches.

    The same documents as :func:`build` gives one by one, built the fast way: a rebuild reads
    millions of rows, so content is read as plain driver values (:class:`_Content`) and
    hashtags are aggregated all at once (:func:`_hashtag_documents`)."""
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
    content = _Content(groups)
    if want("post", "article"):
        yield from content.posts(wanted)
    if want("comment"):
        yield from content.in_posts(
            "comment",
            select(
                Comment.id,
                Comment.body,
                Comment.author_id,
                Comment.created_at,
                *content.post_columns,
                Comment.edited_at,
            )
            .join(Post, Post.id == Comment.post_id)
            .where(Comment.deleted_at.is_(None), Post.deleted_at.is_(None)),
        )
    if want("photo"):
        yield from content.in_posts(
            "photo",
            select(
                Photo.id,
                Photo.caption,
                Photo.uploader_id,
                Photo.created_at,
                *content.post_columns,
                Post.created_at,
                Post.published_at,
            )
            .join(Post, Post.id == Photo.post_id)
            .where(
                Photo.deleted_at.is_(None), Photo.use == PhotoUse.post, Post.deleted_at.is_(None)
            ),
            skip_blank=True,
        )
    if want("hashtag"):
        labels = dict(
            db.session.execute(select(Hashtag.id, Hashtag.label).order_by(Hashtag.id))
            .tuples()
            .all()
        )
        yield from _hashtag_documents(labels)


CONTENT_BATCH = 10_000


def _moment_from_text(value: str | None) -> datetime | None:
    """A timestamp as SQLite holds it: naive UTC text (``UTCDateTime``), e.g.
    ``2026-01-02 03:04:05.123456``."""
    if value is None:
        return None
    try:
        # Parsed aware at once: several times faster than parsing, then replace(tzinfo=UTC).
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # not the form UTCDateTime writes (say, text with an offset)
        return as_utc(datetime.fromisoformat(value))


class _PostAudiences(dict[tuple[int, int | None, str], frozenset[str] | None]):
    """The tokens of posts that are not deleted (see :func:`post_audience`), by (author, group,
    status) as read, each worked out once: a rebuild reads a million posts by a few thousand
    authors in a few hundred groups. The published posts of a group share one frozenset."""

    def __init__(self, groups: dict[int, Group]) -> None:
        super().__init__()
        self._groups = groups
        self._in_group: dict[int, frozenset[str]] = {}

    def __missing__(self, key: tuple[int, int | None, str]) -> frozenset[str] | None:
        author_id, group_id, status = key
        published = status == PostStatus.published
        group = self._groups.get(group_id or 0)
        audience: frozenset[str] | None
        if published and group is not None:
            audience = self._in_group.get(group.id)
            if audience is None:
                audience = self._in_group[group.id] = _published_audience(author_id, group)
        else:
            audience = _live_post_audience(author_id, group, published)
        self[key] = audience
        return audience


class _Content:
    """Posts, comments and photo captions in bulk, as :func:`post_document`,
    :func:`comment_document` and :func:`photo_document` build them one by one, from plain
    tuples of driver values."""

    def __init__(self, groups: dict[int, Group]) -> None:
        self._audiences = _PostAudiences(groups)
        self._moment = (
            _moment_from_text if db.session.get_bind().dialect.name == "sqlite" else as_utc
        )

    def posts(self, wanted: set[DocType] | None) -> Iterator[Document]:
        moment, audiences = self._moment, self._audiences
        stmt = select(
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
        ).where(Post.deleted_at.is_(None))
        for row in _scan(stmt):
            post_id, kind, author_id, group_id, title, body, status, created, published, edited = (
                row
            )
            doc_type: DocType = "article" if kind == PostKind.article else "post"
            if wanted is not None and doc_type not in wanted:
                continue
            audience = audiences[author_id, group_id, status]
            if audience is None:
                continue
            created_at, published_at = moment(created), moment(published)
            yield Document(
                type=doc_type,
                id=post_id,
                version=version_of(created_at, published_at, moment(edited)),
                audience=audience,
                title=title or "",
                body=body,
                group_id=group_id,
                author_id=author_id,
                created_at=published_at or created_at,
            )

    # What in_posts needs of the post a comment or a photo is in.
    post_columns = (Post.id, Post.author_id, Post.group_id, Post.status)

    def in_posts(
        self, doc_type: DocType, stmt: Any, skip_blank: bool = False
    ) -> Iterator[Document]:
        """The documents of things in posts and read by whoever may read the post (comments,
        photo captions). ``stmt`` selects the thing's id, text, author and creation time,
        then :attr:`post_columns`, then the other times its version is the newest of; it
        leaves out what is deleted or in a deleted post. ``skip_blank``: leave out blank
        texts too."""
        moment, audiences = self._moment, self._audiences
        for row in _scan(stmt):
            item_id, text, author_id, created, post_id, post_author, group_id, status, *others = row
            if skip_blank and not (text or "").strip():
                continue
            audience = audiences[post_author, group_id, status]
            if audience is None:
                continue
            created_at = moment(created)
            yield Document(
                type=doc_type,
                id=item_id,
                version=version_of(created_at, *map(moment, others)),
                audience=audience,
                body=text,
                group_id=group_id,
                author_id=author_id,
                post_id=post_id,
                created_at=created_at,
            )


def _scan(stmt: Any) -> Iterator[tuple[Any, ...]]:
    """The rows of ``stmt`` in the order of its first column (a unique key), a batch at a
    time, as the driver returns them: plain tuples of its values (text for an enum; text for
    a timestamp on SQLite, a ``datetime`` on PostgreSQL). SQLAlchemy's result rows, with
    their conversions, doubled the time of reading a million posts."""
    key = stmt.selected_columns[0]
    last = 0
    while True:
        batch = stmt.where(key > last).order_by(key).limit(CONTENT_BATCH)
        connection = db.session.connection()
        # The statement holds nothing but integers and constants: rendered as SQL text. (Empty
        # parameters rather than none: psycopg then undoes the escaping of "%".)
        sql = str(batch.compile(connection, compile_kwargs={"literal_binds": True}))
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, ())
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def document_counts_in_database() -> dict[str, dict[int, int]]:
    """(id → version) per type of what the index should hold: the consistency check's truth."""
    out: dict[str, dict[int, int]] = {}
    for doc in all_documents():
        out.setdefault(doc.type, {})[doc.id] = doc.version
    return out
