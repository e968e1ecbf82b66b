"""Shapes of posts, articles, comments, reactions, follows and feeds."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from esn.accounts.schemas import PersonRef
from esn.api.types import Cursor, Id, Input, Output, Timestamp
from esn.photos.schemas import PhotoOut
from esn.processes import Process
from esn.social.models import FollowType, PostKind, PostStatus, ReactionKind

POST_MAX = 10_000
ARTICLE_MAX = 100_000
COMMENT_MAX = 10_000


class PostCreate(Input):
    kind: PostKind = PostKind.post
    title: str | None = Field(None, min_length=1, max_length=300)
    body: str = Field("", max_length=ARTICLE_MAX, description="May be empty when photos are given.")
    photo_ids: list[Id] = Field(
        default_factory=list,
        max_length=10,
        description="Photos you uploaded (POST /photos) and have not placed yet, in order.",
    )
    group_id: Id | None = None
    process: Process | None = Field(None, description="Defaults to the group's process.")
    is_question: bool = False
    publish: bool = Field(True, description="Articles may be saved as drafts (false).")


class PostUpdate(Input):
    title: str | None = Field(None, min_length=1, max_length=300)
    body: str | None = Field(None, min_length=1, max_length=ARTICLE_MAX)
    process: Process | None = None
    is_question: bool | None = None


class PostOut(Output):
    id: int
    kind: PostKind
    status: PostStatus
    author: PersonRef
    group_id: int | None
    title: str | None = Field(max_length=300)
    body: str = Field(max_length=ARTICLE_MAX)
    body_html: str
    process: Process
    is_question: bool
    accepted_comment_id: int | None
    created_at: datetime
    published_at: datetime | None
    edited_at: datetime | None
    comment_count: int
    reaction_count: int
    my_reaction: ReactionKind | None
    hashtags: list[str]
    pinned: bool
    photos: list[PhotoOut] = Field(default_factory=list)


class FeedQuery(Input):
    limit: int = Field(20, ge=1, le=100)
    cursor: Cursor | None = None


class FeedPage(Output):
    items: list[PostOut]
    next_cursor: str | None
    # Home feed only: announcements pinned for the reader, newest first.
    pinned: list[PostOut] = Field(default_factory=list)


class RevisionOut(Output):
    id: int
    editor_id: int | None
    title: str | None = Field(max_length=300)
    body: str
    created_at: datetime


class RevisionList(Output):
    items: list[RevisionOut]


class CommentCreate(Input):
    body: str = Field(min_length=1, max_length=COMMENT_MAX)
    parent_id: Id | None = None


class CommentUpdate(Input):
    body: str = Field(min_length=1, max_length=COMMENT_MAX)


class CommentOut(Output):
    id: int
    post_id: int
    parent_id: int | None
    author: PersonRef
    body: str = Field(max_length=COMMENT_MAX)
    body_html: str
    created_at: datetime
    edited_at: datetime | None
    reaction_count: int
    my_reaction: ReactionKind | None
    accepted: bool


class CommentPage(Output):
    items: list[CommentOut]
    next_cursor: str | None


class ReactionSet(Input):
    kind: ReactionKind = ReactionKind.like


class ReactionOut(Output):
    user: PersonRef
    kind: ReactionKind


class ReactionList(Output):
    counts: dict[ReactionKind, int]
    items: list[ReactionOut]
    next_cursor: str | None


class AcceptAnswer(Input):
    comment_id: Id


class PinCreate(Input):
    department_id: Id | None = Field(None, description="Empty: everyone.")
    pinned_until: Timestamp | None = None


class FollowOut(Output):
    target_type: FollowType
    target_id: int
    label: str = Field(max_length=200)
    created_at: datetime


class FollowList(Output):
    items: list[FollowOut]


class TrendingTag(Output):
    name: str = Field(max_length=100)
    label: str = Field(max_length=100)
    posts: int


class TrendingList(Output):
    since: datetime
    items: list[TrendingTag]


class HashtagOut(Output):
    name: str = Field(max_length=100)
    label: str = Field(max_length=100)
    following: bool


__all__ = ["PersonRef"]  # re-exported: the shape of a person in posts and comments
