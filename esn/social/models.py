"""Posts and blog articles, their revisions, comments, reactions, mentions, hashtags, follows
and pinned announcements."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from esn.clock import now
from esn.database import BigId, UTCDateTime, enum_column
from esn.extensions import Base
from esn.processes import Process


class PostKind(enum.StrEnum):
    post = "post"  # short, Markdown, published at once
    article = "article"  # blog article: title, drafts, publish


class PostStatus(enum.StrEnum):
    draft = "draft"
    published = "published"


class ReactionKind(enum.StrEnum):
    like = "like"
    love = "love"
    celebrate = "celebrate"
    insightful = "insightful"
    support = "support"
    curious = "curious"


class TargetType(enum.StrEnum):
    post = "post"
    comment = "comment"


class FollowType(enum.StrEnum):
    user = "user"
    group = "group"
    hashtag = "hashtag"


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        # The feeds read newest-first by author, by group, and overall. The author and group
        # indexes also hold the columns of the visibility condition (access.visible_posts), so
        # that the home feed's per-person and per-group scans read the index alone.
        Index(
            "ix_posts_author_published",
            "author_id", "published_at", "id", "group_id", "status", "deleted_at",
        ),
        Index(
            "ix_posts_group_published",
            "group_id", "published_at", "id", "author_id", "status", "deleted_at",
        ),
        Index("ix_posts_published", "published_at", "id"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[PostKind] = mapped_column(enum_column(PostKind, "post_kind"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    # The sanitised rendering of ``body``; the only HTML ever served.
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[PostStatus] = mapped_column(enum_column(PostStatus, "post_status"))
    process: Mapped[Process] = mapped_column(
        enum_column(Process, "process"), default=Process.general
    )
    is_question: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    reaction_count: Mapped[int] = mapped_column(Integer, default=0)


class PostRevision(Base):
    """The text of a post before an edit (the edit history)."""

    __tablename__ = "post_revisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_post_created", "post_id", "created_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    # One level of replies: a reply's parent is a top-level comment.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Reaction(Base):
    """One reaction per person per post or comment; changing it replaces the kind."""

    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("target_type", "target_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_type: Mapped[TargetType] = mapped_column(enum_column(TargetType, "target_type"))
    target_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReactionKind] = mapped_column(enum_column(ReactionKind, "reaction_kind"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Mention(Base):
    __tablename__ = "mentions"
    __table_args__ = (UniqueConstraint("source_type", "source_id", "mentioned_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_type: Mapped[TargetType] = mapped_column(enum_column(TargetType, "target_type"))
    source_id: Mapped[int] = mapped_column(BigInteger)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    mentioned_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Hashtag(Base):
    __tablename__ = "hashtags"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised (NFKC, lower case); ``label`` keeps the first spelling for display.
    name: Mapped[str] = mapped_column(String(100), unique=True)
    label: Mapped[str] = mapped_column(String(100))


class PostHashtag(Base):
    __tablename__ = "post_hashtags"
    __table_args__ = (
        Index("ix_post_hashtags_tag_published", "hashtag_id", "published_at", "post_id"),
    )

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    hashtag_id: Mapped[int] = mapped_column(
        ForeignKey("hashtags.id", ondelete="CASCADE"), primary_key=True
    )
    # Copied from the post so that a hashtag feed reads one index in order.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Follow(Base):
    __tablename__ = "follows"
    __table_args__ = (Index("ix_follows_target", "target_type", "target_id"),)

    follower_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    target_type: Mapped[FollowType] = mapped_column(
        enum_column(FollowType, "follow_type"), primary_key=True
    )
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)


class Announcement(Base):
    """A post pinned for everyone (``department_id`` null) or for a department and its
    sub-departments."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE")
    )
    pinned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=now)
    pinned_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
