"""Reads of the social core: feeds, posts, comments and reactions, all through the access
policy (``access.visible_posts`` for lists, ``access.can`` for single objects)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from esn import access
from esn.accounts.models import User
from esn.api.pagination import decode_cursor, encode_cursor
from esn.api.problems import not_found
from esn.clock import now
from esn.directory.models import Department
from esn.extensions import db
from esn.groups.models import GroupMember
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


def posts_out(user: User, posts: list[Post]) -> list[PostOut]:
    ids = [p.id for p in posts]
    authors = people_refs({p.author_id for p in posts})
    mine = _my_reactions(user, TargetType.post, ids)
    tags: dict[int, list[str]] = {}
    pinned: set[int] = set()
    if ids:
        for post_id, label in db.session.execute(
            select(PostHashtag.post_id, Hashtag.label)
            .join(Hashtag, Hashtag.id == PostHashtag.hashtag_id)
            .where(PostHashtag.post_id.in_(ids))
        ):
            tags.setdefault(post_id, []).append(label)
        pinned = set(
            db.session.scalars(
                select(Announcement.post_id).where(Announcement.post_id.in_(ids), _pin_active())
            )
        )
    return [
        PostOut(
            id=p.id,
            kind=p.kind,
            status=p.status,
            author=authors[p.author_id],
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
            my_reaction=mine.get(p.id),
            hashtags=sorted(tags.get(p.id, [])),
            pinned=p.id in pinned,
        )
        for p in posts
    ]


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


def _page(
    stmt: Select[tuple[Post]], cursor: str | None, limit: int
) -> tuple[list[Post], str | None]:
    """Newest first by (published_at, id), keyset-paginated."""
    if cursor:
        stamp, last_id = decode_cursor(cursor, (str, int))
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            from esn.api.problems import Problem

            raise Problem(
                400, "Bad Request", "The cursor is not valid.", kind="invalid-cursor"
            ) from None
        stmt = stmt.where(
            or_(Post.published_at < when, and_(Post.published_at == when, Post.id < last_id))
        )
    posts = list(
        db.session.scalars(stmt.order_by(Post.published_at.desc(), Post.id.desc()).limit(limit + 1))
    )
    next_cursor = None
    if len(posts) > limit:
        posts = posts[:limit]
        last = posts[-1]
        assert last.published_at is not None
        next_cursor = encode_cursor(last.published_at.isoformat(), last.id)
    return posts, next_cursor


def _published(user: User) -> Select[tuple[Post]]:
    return select(Post).where(access.visible_posts(user), Post.status == PostStatus.published)


def _pin_active() -> Any:
    return or_(Announcement.pinned_until.is_(None), Announcement.pinned_until > now())


def _department_chain(user: User) -> list[int]:
    """The reader's department and its ancestors (an announcement for a department reaches its
    sub-departments)."""
    chain: list[int] = []
    current = user.department_id
    while current is not None and current not in chain:
        chain.append(current)
        current = db.session.scalar(select(Department.parent_id).where(Department.id == current))
    return chain


def _announcements_for(user: User) -> Any:
    chain = _department_chain(user)
    audience: ColumnElement[bool] = Announcement.department_id.is_(None)
    if chain:
        audience = or_(audience, Announcement.department_id.in_(chain))
    return select(Announcement.post_id).where(audience, _pin_active())


def home_feed(
    user: User, cursor: str | None, limit: int
) -> tuple[list[Post], str | None, list[Post]]:
    """Followed people, joined and followed groups, followed hashtags, own posts and
    announcements for the reader; plus the pinned announcements themselves."""
    follows = select(Follow.target_id).where(Follow.follower_id == user.id)
    followed_tags = select(PostHashtag.post_id).where(
        PostHashtag.hashtag_id.in_(follows.where(Follow.target_type == FollowType.hashtag))
    )
    my_groups = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    announced = _announcements_for(user)
    stmt = _published(user).where(
        or_(
            Post.author_id == user.id,
            Post.author_id.in_(follows.where(Follow.target_type == FollowType.user)),
            Post.group_id.in_(my_groups),
            Post.group_id.in_(follows.where(Follow.target_type == FollowType.group)),
            Post.id.in_(followed_tags),
            Post.id.in_(announced),
        )
    )
    posts, next_cursor = _page(stmt, cursor, limit)
    pinned: list[Post] = []
    if cursor is None:
        pinned = list(
            db.session.scalars(
                _published(user)
                .where(Post.id.in_(announced))
                .order_by(Post.published_at.desc(), Post.id.desc())
                .limit(10)
            )
        )
    return posts, next_cursor, pinned


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
