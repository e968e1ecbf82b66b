"""HTTP boundary of posts, articles, comments, reactions, follows and feeds."""

from __future__ import annotations

from flask import Blueprint
from pydantic import Field

from esn import access
from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.problems import not_found, reject_nulls
from esn.api.spec import operation
from esn.api.types import Cursor, Input
from esn.directory.queries import access_profile
from esn.extensions import db
from esn.groups.queries import access_group
from esn.photos import actions as photo_actions
from esn.social import actions, queries
from esn.social.models import Follow, FollowType, Hashtag, PostRevision, TargetType
from esn.social.schemas import (
    AcceptAnswer,
    CommentCreate,
    CommentOut,
    CommentPage,
    CommentUpdate,
    FeedPage,
    FeedQuery,
    FollowList,
    FollowOut,
    HashtagOut,
    PinCreate,
    PostCreate,
    PostOut,
    PostUpdate,
    ReactionList,
    ReactionOut,
    ReactionSet,
    RevisionList,
    RevisionOut,
    TrendingList,
    TrendingTag,
)

bp = Blueprint("social", __name__, url_prefix="/api/v1")
POSTS, FEEDS, FOLLOWS = ["posts"], ["feeds"], ["follows"]


class ListQuery(Input):
    limit: int = Field(50, ge=1, le=200)
    cursor: Cursor | None = None


def _post_out(user: User, post_id: int) -> PostOut:
    return queries.posts_out(user, [queries.access_post(user, post_id)])[0]


# --- posts --------------------------------------------------------------------------------------


@operation(
    bp,
    "/posts",
    "POST",
    summary="Write a post or a blog article",
    tags=POSTS,
    body=PostCreate,
    response=PostOut,
    status=201,
)
def create_post(body: PostCreate) -> PostOut:
    """Markdown; ``@handle`` mentions people and ``#word`` tags the post. Articles need a title
    and may be saved as drafts (``publish: false``). In a group, you must be a member.
    ``photo_ids`` attaches photos uploaded with ``POST /photos`` (then the text may be empty)."""
    user = require_user()
    group = None
    if body.group_id is not None:
        group = access_group(user, body.group_id)
        access.require(user, "group:post", group)
    photos = photo_actions.check_attach_photos(user, body.photo_ids)
    post = actions.check_create_post(user, body.model_dump(), group)
    photo_actions.do_attach_photos(user, post, photos)
    db.session.commit()
    return _post_out(user, post.id)


@operation(bp, "/posts/<int:post_id>", "GET", summary="Read a post", tags=POSTS, response=PostOut)
def get_post(post_id: int) -> PostOut:
    return _post_out(require_user(), post_id)


@operation(
    bp,
    "/posts/<int:post_id>",
    "PATCH",
    summary="Edit a post",
    tags=POSTS,
    body=PostUpdate,
    response=PostOut,
)
def edit_post(post_id: int, body: PostUpdate) -> PostOut:
    """The text before the edit is kept in the post's history."""
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:edit", post)
    changes = body.model_dump(exclude_unset=True)
    reject_nulls(changes)
    actions.check_edit_post(user, post, changes)
    db.session.commit()
    return _post_out(user, post_id)


@operation(
    bp,
    "/posts/<int:post_id>/publish",
    "POST",
    summary="Publish a draft article",
    tags=POSTS,
    response=PostOut,
    responses={409: "Published already."},
)
def publish_post(post_id: int) -> PostOut:
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:edit", post)
    actions.check_publish(user, post)
    db.session.commit()
    return _post_out(user, post_id)


@operation(bp, "/posts/<int:post_id>", "DELETE", summary="Delete a post", tags=POSTS, status=204)
def delete_post(post_id: int) -> None:
    """The author, group owners and admins (and site admins outside groups) may delete."""
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:delete", post)
    actions.do_delete_post(user, post)
    db.session.commit()


@operation(
    bp,
    "/posts/<int:post_id>/revisions",
    "GET",
    summary="A post's edit history",
    tags=POSTS,
    response=RevisionList,
)
def list_revisions(post_id: int) -> RevisionList:
    user = require_user()
    post = queries.access_post(user, post_id)
    from sqlalchemy import select

    revisions = db.session.scalars(
        select(PostRevision).where(PostRevision.post_id == post.id).order_by(PostRevision.id.desc())
    )
    return RevisionList(items=[RevisionOut.model_validate(r) for r in revisions])


@operation(
    bp,
    "/posts/<int:post_id>/answer",
    "PUT",
    summary="Accept a comment as the answer",
    tags=POSTS,
    body=AcceptAnswer,
    response=PostOut,
)
def accept_answer(post_id: int, body: AcceptAnswer) -> PostOut:
    """For questions; the asker or a group owner/admin decides."""
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:accept_answer", post)
    actions.check_accept_answer(user, post, body.comment_id)
    db.session.commit()
    return _post_out(user, post_id)


@operation(
    bp,
    "/posts/<int:post_id>/pin",
    "POST",
    summary="Pin a post as an announcement",
    tags=POSTS,
    body=PinCreate,
    response=PostOut,
    status=201,
    responses={409: "Pinned for that audience already."},
)
def pin_post(post_id: int, body: PinCreate) -> PostOut:
    """Administrators and communications staff; for everyone or a department (with its
    sub-departments). Only posts that everyone can read can be pinned."""
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:pin", post)
    actions.check_pin(user, post, body.department_id, body.pinned_until)
    db.session.commit()
    return _post_out(user, post_id)


@operation(
    bp,
    "/posts/<int:post_id>/pin",
    "DELETE",
    summary="Unpin an announcement",
    tags=POSTS,
    status=204,
)
def unpin_post(post_id: int) -> None:
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "announcement:pin")
    actions.do_unpin(user, post)
    db.session.commit()


@operation(bp, "/me/drafts", "GET", summary="My draft articles", tags=POSTS, response=FeedPage)
def my_drafts() -> FeedPage:
    user = require_user()
    return FeedPage(items=queries.posts_out(user, queries.drafts(user)), next_cursor=None)


# --- comments -----------------------------------------------------------------------------------


@operation(
    bp,
    "/posts/<int:post_id>/comments",
    "GET",
    summary="Comments on a post",
    tags=POSTS,
    query=ListQuery,
    response=CommentPage,
)
def list_comments(post_id: int, query: ListQuery) -> CommentPage:
    user = require_user()
    post = queries.access_post(user, post_id)
    comments, cursor = queries.list_comments(post, query.cursor, query.limit)
    return CommentPage(items=queries.comments_out(user, post, comments), next_cursor=cursor)


@operation(
    bp,
    "/posts/<int:post_id>/comments",
    "POST",
    summary="Comment or reply",
    tags=POSTS,
    body=CommentCreate,
    response=CommentOut,
    status=201,
)
def create_comment(post_id: int, body: CommentCreate) -> CommentOut:
    """``parent_id`` makes it a reply to a top-level comment (one level deep)."""
    user = require_user()
    post = queries.access_post(user, post_id)
    access.require(user, "post:comment", post)
    comment = actions.check_create_comment(user, post, body.body, body.parent_id)
    db.session.commit()
    return queries.comments_out(user, post, [comment])[0]


@operation(
    bp,
    "/comments/<int:comment_id>",
    "PATCH",
    summary="Edit a comment",
    tags=POSTS,
    body=CommentUpdate,
    response=CommentOut,
)
def edit_comment(comment_id: int, body: CommentUpdate) -> CommentOut:
    user = require_user()
    comment, post = queries.access_comment(user, comment_id)
    access.require(user, "comment:edit", (comment, post))
    actions.check_edit_comment(user, post, comment, body.body)
    db.session.commit()
    return queries.comments_out(user, post, [comment])[0]


@operation(
    bp, "/comments/<int:comment_id>", "DELETE", summary="Delete a comment", tags=POSTS, status=204
)
def delete_comment(comment_id: int) -> None:
    user = require_user()
    comment, post = queries.access_comment(user, comment_id)
    access.require(user, "comment:delete", (comment, post))
    actions.do_delete_comment(user, post, comment)
    db.session.commit()


# --- reactions ----------------------------------------------------------------------------------


def _target(user: User, target: TargetType, target_id: int) -> tuple[object, int, int]:
    """(post, owner id, target id) of a reaction target the user may read."""
    if target == TargetType.post:
        post = queries.access_post(user, target_id)
        return post, post.author_id, post.id
    comment, post = queries.access_comment(user, target_id)
    return post, comment.author_id, comment.id


def _react(target: TargetType, target_id: int, body: ReactionSet) -> None:
    user = require_user()
    post, owner, tid = _target(user, target, target_id)
    access.require(user, "post:react", post)
    actions.do_react(user, post, target, tid, owner, body.kind)  # type: ignore[arg-type]
    db.session.commit()


def _unreact(target: TargetType, target_id: int) -> None:
    user = require_user()
    post, owner, tid = _target(user, target, target_id)
    actions.do_unreact(user, post, target, tid, owner)  # type: ignore[arg-type]
    db.session.commit()


def _reactions(target: TargetType, target_id: int, query: ListQuery) -> ReactionList:
    user = require_user()
    _target(user, target, target_id)
    counts, rows, cursor = queries.list_reactions(target, target_id, query.cursor, query.limit)
    people = queries.people_refs({r.user_id for r in rows})
    return ReactionList(
        counts=counts,
        next_cursor=cursor,
        items=[ReactionOut(user=people[r.user_id], kind=r.kind) for r in rows],
    )


@operation(
    bp,
    "/posts/<int:post_id>/reaction",
    "PUT",
    summary="React to a post",
    tags=POSTS,
    body=ReactionSet,
    status=204,
)
def react_post(post_id: int, body: ReactionSet) -> None:
    """One reaction per person; sending another kind replaces it."""
    _react(TargetType.post, post_id, body)


@operation(
    bp,
    "/posts/<int:post_id>/reaction",
    "DELETE",
    summary="Take back a reaction",
    tags=POSTS,
    status=204,
)
def unreact_post(post_id: int) -> None:
    _unreact(TargetType.post, post_id)


@operation(
    bp,
    "/posts/<int:post_id>/reactions",
    "GET",
    summary="Who reacted to a post",
    tags=POSTS,
    query=ListQuery,
    response=ReactionList,
)
def post_reactions(post_id: int, query: ListQuery) -> ReactionList:
    return _reactions(TargetType.post, post_id, query)


@operation(
    bp,
    "/comments/<int:comment_id>/reaction",
    "PUT",
    summary="React to a comment",
    tags=POSTS,
    body=ReactionSet,
    status=204,
)
def react_comment(comment_id: int, body: ReactionSet) -> None:
    _react(TargetType.comment, comment_id, body)


@operation(
    bp,
    "/comments/<int:comment_id>/reaction",
    "DELETE",
    summary="Take back a reaction to a comment",
    tags=POSTS,
    status=204,
)
def unreact_comment(comment_id: int) -> None:
    _unreact(TargetType.comment, comment_id)


@operation(
    bp,
    "/comments/<int:comment_id>/reactions",
    "GET",
    summary="Who reacted to a comment",
    tags=POSTS,
    query=ListQuery,
    response=ReactionList,
)
def comment_reactions(comment_id: int, query: ListQuery) -> ReactionList:
    return _reactions(TargetType.comment, comment_id, query)


# --- feeds --------------------------------------------------------------------------------------


@operation(
    bp, "/feed", "GET", summary="My home feed", tags=FEEDS, query=FeedQuery, response=FeedPage
)
def home_feed(query: FeedQuery) -> FeedPage:
    """Newest first: people, groups and hashtags you follow, your groups, your own posts and
    announcements for you. The first page also lists the pinned announcements."""
    user = require_user()
    items, cursor, pinned = queries.home_feed_out(user, query.cursor, query.limit)
    return FeedPage(items=items, next_cursor=cursor, pinned=pinned)


@operation(
    bp,
    "/groups/<int:group_id>/feed",
    "GET",
    summary="A group's posts",
    tags=FEEDS,
    query=FeedQuery,
    response=FeedPage,
)
def group_feed(group_id: int, query: FeedQuery) -> FeedPage:
    user = require_user()
    group = access_group(user, group_id)
    access.require(user, "group:read", group)
    posts, cursor = queries.group_feed(user, group.id, query.cursor, query.limit)
    return FeedPage(items=queries.posts_out(user, posts), next_cursor=cursor)


@operation(
    bp,
    "/people/<int:user_id>/feed",
    "GET",
    summary="A person's posts",
    tags=FEEDS,
    query=FeedQuery,
    response=FeedPage,
)
def profile_feed(user_id: int, query: FeedQuery) -> FeedPage:
    """Only the posts you may see (not those in groups closed to you)."""
    user = require_user()
    author = access_profile(user, user_id)
    posts, cursor = queries.profile_feed(user, author.id, query.cursor, query.limit)
    return FeedPage(items=queries.posts_out(user, posts), next_cursor=cursor)


def _hashtag(name: str, user: User | None = None) -> Hashtag:
    """The hashtag by name; with ``user``, only if that person may know of it."""
    if len(name) > 100:
        raise not_found("hashtag")
    if user is None:
        return actions.hashtag_by_name(name)
    return queries.access_hashtag(user, name)


@operation(
    bp,
    "/hashtags/<name>/feed",
    "GET",
    summary="Posts with a hashtag",
    tags=FEEDS,
    query=FeedQuery,
    response=FeedPage,
)
def hashtag_feed(name: str, query: FeedQuery) -> FeedPage:
    user = require_user()
    tag = _hashtag(name, user)
    posts, cursor = queries.hashtag_feed(user, tag.id, query.cursor, query.limit)
    return FeedPage(items=queries.posts_out(user, posts), next_cursor=cursor)


@operation(
    bp,
    "/hashtags/trending",
    "GET",
    summary="Trending hashtags of the week",
    tags=FEEDS,
    response=TrendingList,
)
def trending() -> TrendingList:
    """Counted over the posts of the last seven days that you can see."""
    user = require_user()
    since, rows = queries.trending_hashtags(user)
    return TrendingList(
        since=since, items=[TrendingTag(name=n, label=lbl, posts=c) for n, lbl, c in rows]
    )


@operation(bp, "/hashtags/<name>", "GET", summary="A hashtag", tags=FEEDS, response=HashtagOut)
def get_hashtag(name: str) -> HashtagOut:
    user = require_user()
    tag = _hashtag(name, user)
    following = db.session.get(Follow, (user.id, FollowType.hashtag, tag.id)) is not None
    return HashtagOut(name=tag.name, label=tag.label, following=following)


# --- follows ------------------------------------------------------------------------------------


def _follow_target(user: User, target: FollowType, key: str) -> int:
    if target == FollowType.user:
        return access_profile(user, int(key)).id
    if target == FollowType.group:
        group = access_group(user, int(key))
        access.require(user, "group:follow", group)
        return group.id
    return _hashtag(key, user).id


@operation(
    bp, "/people/<int:user_id>/follow", "PUT", summary="Follow a person", tags=FOLLOWS, status=204
)
def follow_person(user_id: int) -> None:
    user = require_user()
    actions.do_follow(user, FollowType.user, _follow_target(user, FollowType.user, str(user_id)))
    db.session.commit()


@operation(
    bp,
    "/people/<int:user_id>/follow",
    "DELETE",
    summary="Unfollow a person",
    tags=FOLLOWS,
    status=204,
)
def unfollow_person(user_id: int) -> None:
    user = require_user()
    actions.do_unfollow(user, FollowType.user, user_id)
    db.session.commit()


@operation(
    bp,
    "/groups/<int:group_id>/follow",
    "PUT",
    summary="Follow a public group",
    tags=FOLLOWS,
    status=204,
)
def follow_group(group_id: int) -> None:
    """Following shows a public group's posts in your feed without joining it."""
    user = require_user()
    actions.do_follow(user, FollowType.group, _follow_target(user, FollowType.group, str(group_id)))
    db.session.commit()


@operation(
    bp,
    "/groups/<int:group_id>/follow",
    "DELETE",
    summary="Unfollow a group",
    tags=FOLLOWS,
    status=204,
)
def unfollow_group(group_id: int) -> None:
    user = require_user()
    actions.do_unfollow(user, FollowType.group, group_id)
    db.session.commit()


@operation(
    bp, "/hashtags/<name>/follow", "PUT", summary="Follow a hashtag", tags=FOLLOWS, status=204
)
def follow_hashtag(name: str) -> None:
    user = require_user()
    actions.do_follow(user, FollowType.hashtag, _follow_target(user, FollowType.hashtag, name))
    db.session.commit()


@operation(
    bp, "/hashtags/<name>/follow", "DELETE", summary="Unfollow a hashtag", tags=FOLLOWS, status=204
)
def unfollow_hashtag(name: str) -> None:
    user = require_user()
    actions.do_unfollow(user, FollowType.hashtag, _hashtag(name).id)
    db.session.commit()


@operation(bp, "/me/following", "GET", summary="What I follow", tags=FOLLOWS, response=FollowList)
def my_following() -> FollowList:
    user = require_user()
    items = []
    for follow, label in queries.following(user):
        items.append(
            FollowOut(
                target_type=follow.target_type,
                target_id=follow.target_id,
                label=label,
                created_at=follow.created_at,
            )
        )
    return FollowList(items=items)
