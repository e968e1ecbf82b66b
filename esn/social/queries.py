"""Reads of the social core: feeds, posts, comments and reactions, all through the access
policy (``access.visible_posts`` for lists, ``access.can`` for single objects)."""

from __future__ import annotations

from collections.abc import Hashable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    text,
    true,
    union,
)
from sqlalchemy.orm import aliased

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import Problem, not_found
from esn.clock import now
from esn.database import UTCDateTime
from esn.directory.models import Department
from esn.extensions import db
from esn.groups.models import GroupMember
from esn.social.markdown import normalise_hashtag
from esn.social.models import (
    Announcement,
    Comment,
    Follow,
    FollowType,
    Hashtag,
    Post,
    PostHashtag,
    PostStatus,
    Reaction,
    TargetType,
)
from esn.social.schemas import CommentOut, PersonRef, PostOut

TRENDING_DAYS = 7


def access_post(user: User, post_id: int) -> Post:
    """The post if ``user`` may read it; 404 otherwise (never 403: existence is private too)."""
    post = db.session.get(Post, post_id)
    if post is None or not access.can(user, "post:read", post):
        raise not_found("post")
    return post


def access_hashtag(user: User, name: str) -> Hashtag:
    """The hashtag if ``user`` follows it or may read a post that carries it; 404 otherwise.
    A tag used only in closed groups or in others' drafts is part of that content: its mere
    existence must not tell outsiders what was written there."""
    tag = db.session.scalar(select(Hashtag).where(Hashtag.name == normalise_hashtag(name)[:100]))
    if tag is None:
        raise not_found("hashtag")
    if db.session.get(Follow, (user.id, FollowType.hashtag, tag.id)) is not None:
        return tag
    carried = db.session.scalar(
        select(PostHashtag.post_id)
        .join(Post, Post.id == PostHashtag.post_id)
        .where(PostHashtag.hashtag_id == tag.id, access.visible_posts(user))
        .limit(1)
    )
    if carried is None:
        raise not_found("hashtag")
    return tag


def access_comment(user: User, comment_id: int) -> tuple[Comment, Post]:
    comment = db.session.get(Comment, comment_id)
    post = db.session.get(Post, comment.post_id) if comment is not None else None
    if comment is None or post is None or not access.can(user, "comment:read", (comment, post)):
        raise not_found("comment")
    return comment, post


# --- serialisation in bulk (no query per item) --------------------------------------------------


def people_refs(ids: set[int]) -> dict[int, PersonRef]:
    if not ids:
        return {}
    rows = db.session.execute(
        select(User.id, User.display_name, User.handle).where(User.id.in_(ids))
    )
    return {r.id: PersonRef(id=r.id, display_name=r.display_name, handle=r.handle) for r in rows}


def _my_reactions(user: User, target: TargetType, ids: list[int]) -> dict[int, Any]:
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(Reaction.target_id, Reaction.kind).where(
                Reaction.user_id == user.id,
                Reaction.target_type == target,
                Reaction.target_id.in_(ids),
            )
        )
        .tuples()
        .all()
    )


_TAG_SEPARATOR = "\n"  # hashtags are single words


def _post_extras(viewer: Any, moment: Any) -> list[Any]:
    """What a post shows besides its own columns, as columns of a statement that selects
    ``Post`` joined to its author: the author's name and handle, ``viewer``'s reaction, whether
    it is pinned at ``moment``, and its hashtags (one string); ``_post_out`` takes them in this
    order."""
    return [
        User.display_name,
        User.handle,
        select(Reaction.kind)
        .where(
            Reaction.target_type == TargetType.post,
            Reaction.target_id == Post.id,
            Reaction.user_id == viewer,
        )
        .scalar_subquery(),
        exists().where(
            Announcement.post_id == Post.id,
            or_(Announcement.pinned_until.is_(None), Announcement.pinned_until > moment),
        ),
        select(func.aggregate_strings(Hashtag.label, _TAG_SEPARATOR))
        .select_from(PostHashtag)
        .join(Hashtag, Hashtag.id == PostHashtag.hashtag_id)
        .where(PostHashtag.post_id == Post.id)
        .scalar_subquery(),
    ]


# Built once; one query for all the posts of a response.
_POSTS_SHOWN = (
    select(
        Post.id,
        *_post_extras(
            bindparam("shown_viewer", type_=Integer), bindparam("shown_now", type_=UTCDateTime())
        ),
    )
    .join(User, User.id == Post.author_id)
    .where(Post.id.in_(bindparam("shown_ids", expanding=True)))
)


def _post_out(
    p: Post,
    author_name: str,
    author_handle: str,
    my_reaction: Any,
    pinned: bool,
    hashtags: str | None,
) -> PostOut:
    return PostOut(
        id=p.id,
        kind=p.kind,
        status=p.status,
        author=PersonRef(id=p.author_id, display_name=author_name, handle=author_handle),
        group_id=p.group_id,
        title=p.title,
        body=p.body,
        body_html=p.body_html,
        process=p.process,
        is_question=p.is_question,
        accepted_comment_id=p.accepted_comment_id,
        created_at=p.created_at,
        published_at=p.published_at,
        edited_at=p.edited_at,
        comment_count=p.comment_count,
        reaction_count=p.reaction_count,
        my_reaction=my_reaction,
        hashtags=sorted(hashtags.split(_TAG_SEPARATOR)) if hashtags else [],
        pinned=bool(pinned),
    )


def posts_out(user: User, posts: list[Post]) -> list[PostOut]:
    """The API shape of posts the reader may read, with one query for all of them."""
    if not posts:
        return []
    params = {"shown_ids": [p.id for p in posts], "shown_viewer": user.id, "shown_now": now()}
    extras = {row[0]: row[1:] for row in db.session.execute(_POSTS_SHOWN, params)}
    return _with_photos([_post_out(p, *extras[p.id]) for p in posts])


def _with_photos(shaped: list[PostOut]) -> list[PostOut]:
    """Fill in the photos of posts already shaped (one query when none has any)."""
    from esn.photos.queries import post_photos  # photos build on posts (and import this module)

    photos = post_photos(out.id for out in shaped)
    for out in shaped:
        out.photos = photos.get(out.id, [])
    return shaped


def comments_out(user: User, post: Post, comments: list[Comment]) -> list[CommentOut]:
    ids = [c.id for c in comments]
    authors = people_refs({c.author_id for c in comments})
    mine = _my_reactions(user, TargetType.comment, ids)
    counts: dict[int, int] = {}
    if ids:
        counts = dict(
            db.session.execute(
                select(Reaction.target_id, func.count())
                .where(Reaction.target_type == TargetType.comment, Reaction.target_id.in_(ids))
                .group_by(Reaction.target_id)
            )
            .tuples()
            .all()
        )
    return [
        CommentOut(
            id=c.id,
            post_id=c.post_id,
            parent_id=c.parent_id,
            author=authors[c.author_id],
            body=c.body,
            body_html=c.body_html,
            created_at=c.created_at,
            edited_at=c.edited_at,
            reaction_count=counts.get(c.id, 0),
            my_reaction=mine.get(c.id),
            accepted=post.accepted_comment_id == c.id,
        )
        for c in comments
    ]


# --- feeds --------------------------------------------------------------------------------------


def _cursor_key(cursor: str | None) -> tuple[datetime, int] | None:
    """The (published_at, id) of the last post of the previous page; 400 if forged."""
    if not cursor:
        return None
    stamp, last_id = decode_cursor(cursor, (str, int))
    try:
        # Cursors we issue carry an offset; a naive or out-of-range time is a forgery.
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            raise ValueError(stamp)
        when = when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Problem(
            400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor"
        ) from None
    return when, last_id


def _before(key: tuple[Any, Any] | None, published: Any, ident: Any) -> Any:
    """Newer-first keyset condition: rows after ``key`` in (published_at, id) descending."""
    if key is None:
        return true()
    when, last_id = key
    return or_(published < when, and_(published == when, ident < last_id))


def _cut(posts: list[Post], limit: int) -> tuple[list[Post], str | None]:
    """The page and the cursor of the next one, from ``limit + 1`` posts newest first."""
    if len(posts) <= limit:
        return posts, None
    posts = posts[:limit]
    return posts, _cursor_after(posts[-1])


def _cursor_after(last: Post) -> str:
    assert last.published_at is not None
    return encode_cursor(last.published_at.isoformat(), last.id)


def _page(
    stmt: Select[tuple[Post]], cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    """Newest first by (published_at, id), keyset-paginated."""
    stmt = stmt.where(_before(_cursor_key(cursor), Post.published_at, Post.id))
    posts = list(
        db.session.scalars(stmt.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit + 1))
    )
    return _cut(posts, limit)


def _published(user: User) -> Select[tuple[Post]]:
    return select(Post).where(access.visible_posts(user), Post.status == PostStatus.published)


def _pin_active() -> Any:
    return or_(Announcement.pinned_until.is_(None), Announcement.pinned_until > now())


def _department_chain(department: Any) -> Select[tuple[int]]:
    """The department ``department`` (an id, or a bind parameter) and its ancestors, as one
    recursive query: an announcement for a department reaches its sub-departments. UNION, not
    UNION ALL, so that a cycle ends the walk."""
    chain = (
        select(Department.id, Department.parent_id)
        .where(Department.id == department)
        .cte("department_chain", recursive=True)
    )
    up = aliased(Department)
    chain = chain.union(select(up.id, up.parent_id).join(chain, up.id == chain.c.parent_id))
    return select(chain.c.id)


def _announced(department: Any, moment: Any) -> Select[tuple[int]]:
    """Posts pinned at ``moment`` for everyone or for ``department`` or one of its parents."""
    return select(Announcement.post_id).where(
        or_(
            Announcement.department_id.is_(None),
            Announcement.department_id.in_(_department_chain(department)),
        ),
        or_(Announcement.pinned_until.is_(None), Announcement.pinned_until > moment),
    )


def _announcements_for_reference(user: User) -> Select[tuple[int]]:
    chain: list[int] = []
    current = user.department_id
    while current is not None and current not in chain:
        chain.append(current)
        current = db.session.scalar(select(Department.parent_id).where(Department.id == current))
    audience: ColumnElement[bool] = Announcement.department_id.is_(None)
    if chain:
        audience = or_(audience, Announcement.department_id.in_(chain))
    return select(Announcement.post_id).where(audience, _pin_active())


def home_feed_reference(
    user: User, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    """The home feed in its plainest form, one SELECT of the visible posts whose author, group,
    hashtag or announcement makes them the reader's: the specification that ``home_feed``
    must match row for row (tests/social/test_feed_equivalence.py, bench/feed.py)."""
    follows = select(Follow.target_id).where(Follow.follower_id == user.id)
    followed_tags = select(PostHashtag.post_id).where(
        PostHashtag.hashtag_id.in_(follows.where(Follow.target_type == FollowType.hashtag))
    )
    my_groups = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    stmt = _published(user).where(
        or_(
            Post.author_id == user.id,
            Post.author_id.in_(follows.where(Follow.target_type == FollowType.user)),
            Post.group_id.in_(my_groups),
            Post.group_id.in_(follows.where(Follow.target_type == FollowType.group)),
            Post.id.in_(followed_tags),
            Post.id.in_(_announcements_for_reference(user)),
        )
    )
    return _page(stmt, cursor, limit)


# The home feed is one statement, built once per kind of reader and executed with each reader's
# values as bind parameters: building a statement of this size, and hashing it for SQLAlchemy's
# compiled cache, would cost more than the database spends running it.
_VIEWER = "feed_viewer"
_N = bindparam("feed_n", type_=Integer)
_NOW = bindparam("feed_now", type_=UTCDateTime())
_DEPARTMENT = bindparam("feed_department", type_=Integer)
_PINS = bindparam("feed_pins", type_=Integer)  # announcements to read: max(feed_n, 10)
# The sources' posts are first read from this time on only (see ``_read_home``).
_SINCE = bindparam("feed_since", type_=UTCDateTime())
# How far back the first, bounded read of the home feed looks.
HOME_RECENT = timedelta(days=14)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BEFORE: tuple[Any, Any] = (
    bindparam("feed_before_at", type_=UTCDateTime()),
    bindparam("feed_before_id", type_=Integer),
)
_home_statements: dict[Hashable, Select[Any]] = {}


def reader_kind(user: User) -> Hashable:
    """What ``access.visible_posts`` branches on: readers of one kind get the same condition
    but for their own id (tests/social/test_feed_equivalence.py holds the policy to this)."""
    return (user.is_active, user.is_external)


def _build_home_statement(visible: ColumnElement[bool], paged: bool, postgres: bool) -> Any:
    """Rows of (post, on the page, pinned), newest first: the page's ``feed_n`` posts and, on a
    first page, the (at most 10) pinned announcements.

    The page is the newest of the union of each source's newest ``feed_n`` visible posts (own
    posts, followed people, groups joined or followed, followed hashtags, announcements): each
    post of the page is among the newest of a source that holds it, and every branch reads an
    index in order and stops early. ``visible`` (the access policy's condition) is applied in
    every branch before its LIMIT, so that a source's newest are visible ones."""
    viewer = bindparam(_VIEWER, type_=Integer)
    newest = (Post.published_at.desc(), Post.id.desc())
    before = _before(_BEFORE if paged else None, Post.published_at, Post.id)

    def follows(kind: FollowType) -> Select[tuple[int]]:
        return select(Follow.target_id.label("key")).where(
            Follow.follower_id == viewer, Follow.target_type == kind
        )

    def newest_of(condition: ColumnElement[bool], recent: bool = True) -> Select[Any]:
        return (
            select(Post.id, Post.published_at)
            .where(visible, before, condition, Post.published_at >= _SINCE if recent else true())
            .order_by(*newest)
            .limit(_N)
        )

    def newest_per_key(keys: Any, per_key: Select[Any]) -> Select[Any]:
        """``per_key`` (the newest posts of the key ``keys.c.key``) for every key: LATERAL on
        PostgreSQL; SQLite has none, and a correlated IN does the same there."""
        if postgres:
            per = per_key.lateral("per_key")
            return select(per.c.id, per.c.published_at).select_from(keys).join(per, true())
        row = aliased(Post)
        return (
            select(row.id, row.published_at)
            .select_from(keys)
            .join(row, row.id.in_(per_key.with_only_columns(Post.id)))
        )

    # Announcements: the visible announced posts, newest first, enough for the page's branch
    # and for the pinned list. PostgreSQL looks each announced post up by its key; with IN it
    # may merge-join the whole primary key index from the newest post down to the oldest pin.
    announced = _announced(_DEPARTMENT, _NOW)
    if postgres:
        pin_keys = announced.subquery("pin_keys")
        pins = newest_per_key(
            pin_keys, newest_of(Post.id == pin_keys.c.post_id, recent=False)
        ).distinct()
    else:
        pins = select(Post.id, Post.published_at).where(visible, before, Post.id.in_(announced))
    pins_cte = pins.order_by(*_newest_of(pins.selected_columns)).limit(_PINS).cte("pins")

    people = follows(FollowType.user).subquery("people")
    groups = (
        select(GroupMember.group_id.label("key"))
        .where(GroupMember.user_id == viewer)
        .union(follows(FollowType.group))
        .subquery("groups_")
    )
    tags = follows(FollowType.hashtag).subquery("tags")
    tagged = (
        select(Post.id, Post.published_at)
        .select_from(PostHashtag)
        .join(Post, Post.id == PostHashtag.post_id)
        .where(
            PostHashtag.hashtag_id == tags.c.key,
            # Drafts' tags have no time; PostgreSQL puts them first when reading newest first.
            PostHashtag.published_at.is_not(None),
            PostHashtag.published_at >= _SINCE,
            _before(_BEFORE if paged else None, PostHashtag.published_at, PostHashtag.post_id),
            visible,
            before,
        )
        # post_hashtags.published_at is the post's, copied so that this reads one index.
        .order_by(PostHashtag.published_at.desc(), PostHashtag.post_id.desc())
        .limit(_N)
    )
    branches = [
        newest_of(Post.author_id == viewer),
        newest_per_key(people, newest_of(Post.author_id == people.c.key))
        if postgres
        # SQLite: ~50 people with ~100 posts a year each are one pass over their entries in
        # the (author, published_at, id) index and a top-n sort; that beats 50 correlated
        # subqueries, each of which builds a temporary table.
        else newest_of(Post.author_id.in_(select(people.c.key))),
        newest_per_key(groups, newest_of(Post.group_id == groups.c.key)),
        newest_per_key(tags, tagged),
        select(pins_cte.c.id, pins_cte.c.published_at),
    ]
    candidates = union(*(select(*b.subquery().c) for b in branches)).subquery("candidates")
    page = select(candidates.c.id).order_by(*_newest_of(candidates.c)).limit(_N).cte("page")
    shown: Any = select(page.c.id)
    on_page = Post.id.in_(select(page.c.id))
    pinned: ColumnElement[bool] = false()
    if not paged:
        pinned_cte = select(pins_cte.c.id).order_by(*_newest_of(pins_cte.c)).limit(10).cte("pinned")
        shown = shown.union(select(pinned_cte.c.id))
        pinned = Post.id.in_(select(pinned_cte.c.id))
    return (
        select(Post, on_page, pinned, *_post_extras(viewer, _NOW))
        .join(User, User.id == Post.author_id)
        .where(Post.id.in_(shown))
        .order_by(*newest)
    )


def _newest_of(columns: Any) -> tuple[Any, Any]:
    """Newest first, for the (id, published_at) columns of a subquery or select."""
    return columns.published_at.desc(), columns.id.desc()


def _home_statement(user: User, paged: bool) -> Select[Any]:
    """The home feed's statement for readers of ``user``'s kind (first page or later)."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    key = (postgres, paged, reader_kind(user))
    statement = _home_statements.get(key)
    if statement is None:
        visible = and_(
            access.visible_posts(user, viewer=bindparam(_VIEWER, type_=Integer)),
            Post.status == PostStatus.published,
        )
        statement = _home_statements[key] = _build_home_statement(visible, paged, postgres)
    return statement


def _read_home(
    user: User, cursor: str | None, limit: int
) -> tuple[list[Any], str | None, list[Any]]:
    """The rows of the page, the next cursor and the rows of the pinned announcements; each
    row is (post, on the page, pinned for the reader, *what ``_post_out`` needs)."""
    before = _cursor_key(cursor)
    params: dict[str, Any] = {
        _VIEWER: user.id,
        "feed_n": limit + 1,
        "feed_pins": max(limit + 1, 10),
        "feed_now": now(),
        "feed_department": user.department_id,
    }
    if before is not None:
        params["feed_before_at"], params["feed_before_id"] = before
    statement = _home_statement(user, paged=before is not None)
    if db.session.get_bind().dialect.name == "postgresql":
        # Planning this statement for each reader's values costs more than running it, and
        # the plan is the same for everyone: keep the one psycopg prepares after five runs.
        db.session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    # First the sources' recent posts only: for most readers they fill the page, and reading
    # two weeks of ~50 people's index entries is a fraction of reading all of them. Each
    # source's newest from ``since`` on are the same posts as its newest overall cut at
    # ``since``, so when the page's last post is that recent, the page is the unbounded one;
    # otherwise read again without the bound. (Pinned announcements are never bounded.)
    since = (before[0] if before is not None else params["feed_now"]) - HOME_RECENT
    rows = db.session.execute(statement, {**params, "feed_since": since}).all()
    page = [row for row in rows if row[1]]
    if len(page) <= limit or page[-1][0].published_at < since:
        rows = db.session.execute(statement, {**params, "feed_since": _EPOCH}).all()
        page = [row for row in rows if row[1]]
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        next_cursor = _cursor_after(page[-1][0])
    return page, next_cursor, [row for row in rows if row[2]]


def home_feed(
    user: User, cursor: str | None, limit: int
) -> tuple[list[Post], str | None, list[Post]]:
    """Followed people, joined and followed groups, followed hashtags, own posts and
    announcements for the reader, newest first; plus, on the first page, the pinned
    announcements themselves. The page is exactly what ``home_feed_reference`` returns."""
    page, next_cursor, pinned = _read_home(user, cursor, limit)
    return [row[0] for row in page], next_cursor, [row[0] for row in pinned]


def home_feed_out(
    user: User, cursor: str | None, limit: int
) -> tuple[list[PostOut], str | None, list[PostOut]]:
    """``home_feed`` in the API's shape, in one query."""
    page, next_cursor, pinned = _read_home(user, cursor, limit)
    shaped = _with_photos([_post_out(row[0], *row[3:]) for row in page + pinned])
    return shaped[: len(page)], next_cursor, shaped[len(page) :]


def group_feed(
    user: User, group_id: int, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    return _page(_published(user).where(Post.group_id == group_id), cursor, limit)


def profile_feed(
    user: User, author_id: int, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    return _page(_published(user).where(Post.author_id == author_id), cursor, limit)


def hashtag_feed(
    user: User, hashtag_id: int, cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    tagged = select(PostHashtag.post_id).where(PostHashtag.hashtag_id == hashtag_id)
    return _page(_published(user).where(Post.id.in_(tagged)), cursor, limit)


def drafts(user: User) -> list[Post]:
    return list(
        db.session.scalars(
            select(Post)
            .where(
                Post.author_id == user.id,
                Post.status == PostStatus.draft,
                Post.deleted_at.is_(None),
                access.visible_posts(user),
            )
            .order_by(Post.created_at.desc())
            .limit(100)
        )
    )


def list_comments(post: Post, cursor: str | None, limit: int) -> tuple[list[Comment], str | None]:
    """Oldest first; replies come in the same list with their ``parent_id``."""
    stmt = select(Comment).where(Comment.post_id == post.id, Comment.deleted_at.is_(None))
    if cursor:
        (last_id,) = decode_cursor(cursor, (int,))
        stmt = stmt.where(Comment.id > last_id)
    comments = list(db.session.scalars(stmt.order_by(Comment.id).limit(limit + 1)))
    next_cursor = None
    if len(comments) > limit:
        comments = comments[:limit]
        next_cursor = encode_cursor(comments[-1].id)
    return comments, next_cursor


def list_reactions(
    target: TargetType, target_id: int, cursor: str | None, limit: int
) -> tuple[dict[Any, int], list[Reaction], str | None]:
    counts = dict(
        db.session.execute(
            select(Reaction.kind, func.count())
            .where(Reaction.target_type == target, Reaction.target_id == target_id)
            .group_by(Reaction.kind)
        )
        .tuples()
        .all()
    )
    stmt = select(Reaction).where(Reaction.target_type == target, Reaction.target_id == target_id)
    if cursor:
        (last_id,) = decode_cursor(cursor, (int,))
        stmt = stmt.where(Reaction.id > last_id)
    rows = list(db.session.scalars(stmt.order_by(Reaction.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id)
    return counts, rows, next_cursor


def trending_hashtags(user: User, limit: int = 10) -> tuple[datetime, list[tuple[str, str, int]]]:
    """Hashtags by the number of posts of the last seven days that the reader can see."""
    since = now() - timedelta(days=TRENDING_DAYS)
    rows = db.session.execute(
        select(Hashtag.name, Hashtag.label, func.count(PostHashtag.post_id).label("n"))
        .join(PostHashtag, PostHashtag.hashtag_id == Hashtag.id)
        .join(Post, Post.id == PostHashtag.post_id)
        .where(
            access.visible_posts(user),
            Post.status == PostStatus.published,
            Post.published_at >= since,
        )
        .group_by(Hashtag.id, Hashtag.name, Hashtag.label)
        .order_by(func.count(PostHashtag.post_id).desc(), Hashtag.name)
        .limit(limit)
    )
    return since, [(r.name, r.label, int(r.n)) for r in rows]


def following(user: User) -> list[tuple[Follow, str]]:
    """What ``user`` follows, with a label — only targets they may still see (a group that
    became secret, or a person deactivated, drops out of the list)."""
    from esn.groups.models import Group

    follows = list(
        db.session.scalars(
            select(Follow).where(Follow.follower_id == user.id).order_by(Follow.created_at.desc())
        )
    )
    ids = {t: [f.target_id for f in follows if f.target_type == t] for t in FollowType}
    people = {
        u.id: u.display_name
        for u in db.session.scalars(
            select(User).where(User.id.in_(ids[FollowType.user]), access.directory_filter(user))
        )
    }
    groups = dict(
        db.session.execute(
            select(Group.id, Group.name).where(
                Group.id.in_(ids[FollowType.group]), access.visible_groups(user)
            )
        )
        .tuples()
        .all()
    )
    tags = dict(
        db.session.execute(
            select(Hashtag.id, Hashtag.label).where(Hashtag.id.in_(ids[FollowType.hashtag]))
        )
        .tuples()
        .all()
    )
    labels = {FollowType.user: people, FollowType.group: groups, FollowType.hashtag: tags}
    return [
        (f, labels[f.target_type][f.target_id])
        for f in follows
        if f.target_id in labels[f.target_type]
    ]
