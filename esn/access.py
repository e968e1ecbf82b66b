"""THE visibility and permission policy. Every read and write path asks it.

``can(user, action, obj)`` answers for one object; features that list objects use the matching
bulk filters defined here, so that a list can never show what the object check refuses.
Actions are strings named ``subject:verb``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true

from esn.accounts.models import Role, User
from esn.api.problems import Problem, forbidden
from esn.clock import now
from esn.extensions import db
from esn.groups.models import (
    Group,
    GroupMember,
    GroupRole,
    Invitation,
    InvitationStatus,
    JoinPolicy,
    Visibility,
)
from esn.moderation.models import ModerationReport
from esn.photos.models import Album, Photo, PhotoUse
from esn.social.models import Comment, Post, PostStatus


def _active(user: User | None) -> bool:
    return user is not None and user.is_active


def is_admin(user: User | None) -> bool:
    return _active(user) and user is not None and user.has_role(Role.admin)


def can(user: User | None, action: str, obj: Any = None) -> bool:
    """True when ``user`` may perform ``action`` (on ``obj``). Unknown actions are refused."""
    if not _active(user):
        return False
    assert user is not None
    match action:
        case "directory:browse":
            # The directory is for the organisation's own people, not customers and partners.
            return not user.is_external
        case "profile:read":
            target: User = obj
            if user.id == target.id or is_admin(user):
                return True
            return not user.is_external and target.is_active
        case "profile:edit":
            target = obj
            return user.id == target.id or is_admin(user)
        case "profile:move_department" | "users:administer" | "departments:administer":
            return is_admin(user)
        case "users:import":
            return is_admin(user) or user.has_role(Role.hr)
        case "tokens:manage":
            return True
        case "group:create":
            return not user.is_external
        case "announcement:pin":
            return user.has_role(Role.admin) or user.has_role(Role.communications)
        case "governance:manage":
            # The governance records (scopes, ambitions, roadmap, evidence, policy documents,
            # training, escalation, privacy): read and written by governance leads and admins.
            return is_admin(user) or user.has_role(Role.governance_lead)
        case "governance:acknowledge":
            # Reading the published policy and netiquette and acknowledging them: everyone who
            # signs in, except bots (a bot cannot acknowledge anything).
            return not user.is_bot
        case "moderation:handle":
            # Resolving reports (dismiss, remove the content, warn): moderators and admins.
            return is_admin(user) or user.has_role(Role.moderator)
        case "moderation:read":
            # Reading the queue and its summary: the handlers, and governance leads who follow
            # it. Which reports each of them sees is "report:read" / visible_reports.
            return can(user, "moderation:handle") or user.has_role(Role.governance_lead)
        case "report:read":
            # A report is shown only to those who may read the reported thread: reporting
            # content in a private or secret group must not show it to anyone outside. Content
            # removed since still counts, so a removal stays on the record for the same people.
            report, post = obj
            return (
                can(user, "moderation:read")
                and report.post_id == post.id
                and _can_read_post(user, post, deleted=True)
            )
        case _ if action.startswith("group:"):
            return _can_group(user, action, obj)
        case _ if action.startswith(("post:", "comment:")):
            return _can_content(user, action, obj)
        case _ if action.startswith("photo:"):
            return _can_photo(user, action, obj)
        case _ if action.startswith("album:"):
            return _can_album(user, action, obj)
        case _:
            return False


def require(user: User | None, action: str, obj: Any = None, *, hide: bool = False) -> None:
    """Raise 403 (or 404 with ``hide``, where existence itself is private) unless allowed."""
    if can(user, action, obj):
        return
    if hide:
        raise Problem(404, "Not Found", "No such resource.", kind="not-found")
    raise forbidden()


def directory_filter(user: User | None) -> Any:
    """The bulk form of ``profile:read`` for people listings: a WHERE clause on ``User`` that
    keeps exactly the people ``can(user, "profile:read", person)`` allows, branch for branch."""
    if not _active(user):
        return false()
    assert user is not None
    if is_admin(user):
        return true()
    if user.is_external:
        return User.id == user.id
    return or_(User.id == user.id, User.is_active.is_(True))


# --- groups -------------------------------------------------------------------------------------
#
# Membership is the key to private and secret content. Site administrators are *not* members:
# they see what any other employee sees (public content, the existence of private groups), so
# that "members only" means what it says.


def membership(user: User, group_id: int) -> GroupRole | None:
    """The person's role in the group, read from the database every time (a removal takes
    effect on the very next check)."""
    role = db.session.scalar(
        select(GroupMember.role).where(
            GroupMember.group_id == group_id, GroupMember.user_id == user.id
        )
    )
    return GroupRole(role) if role is not None else None


def has_pending_invitation(user: User, group_id: int) -> bool:
    return (
        db.session.scalar(
            select(Invitation.id).where(
                Invitation.group_id == group_id,
                Invitation.invitee_id == user.id,
                Invitation.status == InvitationStatus.pending,
                Invitation.expires_at > now(),
            )
        )
        is not None
    )


def group_readable(user: User, group: Group, role: GroupRole | None) -> bool:
    """``group:read`` given the viewer's role, for callers that fetched roles in bulk."""
    return role is not None or (group.visibility == Visibility.public and not user.is_external)


def _can_group(user: User, action: str, group: Group) -> bool:
    role = membership(user, group.id)
    member = role is not None
    manager = role in (GroupRole.owner, GroupRole.admin)
    open_for_me = not user.is_external and group.visibility != Visibility.secret
    sees = member or open_for_me or has_pending_invitation(user, group.id)
    active = group.archived_at is None
    match action:
        case "group:see":  # name, description, settings; for secret groups: existence itself
            return sees
        case "group:read":  # content and the member list
            return group_readable(user, group, role)
        case "group:post":
            return member and active
        case "group:join":
            return (
                sees
                and not member
                and active
                and not user.is_external
                and group.join_policy == JoinPolicy.open
            )
        case "group:request":
            return (
                sees
                and not member
                and active
                and not user.is_external
                and group.join_policy == JoinPolicy.request
            )
        case "group:accept_invitation":
            return not member and active and has_pending_invitation(user, group.id)
        case "group:leave":
            return member
        case "group:manage":  # edit, invite, decide requests, remove members
            return manager and active
        case "group:assign_roles" | "group:archive":
            return role == GroupRole.owner
        case "group:follow":
            return sees and group.visibility == Visibility.public and not user.is_external
        case _:
            return False


def visible_groups(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``group:see``."""
    if not _active(user):
        return false()
    assert user is not None
    mine = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    invited = select(Invitation.group_id).where(
        Invitation.invitee_id == user.id,
        Invitation.status == InvitationStatus.pending,
        Invitation.expires_at > now(),
    )
    clauses: list[ColumnElement[bool]] = [Group.id.in_(mine), Group.id.in_(invited)]
    if not user.is_external:
        clauses.append(Group.visibility != Visibility.secret)
    return or_(*clauses)


def readable_groups(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``group:read`` as a condition on a group id column's values."""
    if not _active(user):
        return false()
    assert user is not None
    mine = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    if user.is_external:
        return Group.id.in_(mine)
    return or_(Group.id.in_(mine), Group.visibility == Visibility.public)


# --- posts and comments -------------------------------------------------------------------------


def _group_of(post: Post) -> Group | None:
    return db.session.get(Group, post.group_id) if post.group_id is not None else None


def _can_read_post(user: User, post: Post, *, deleted: bool = False) -> bool:
    """``post:read``; with ``deleted``, as if the post had not been deleted."""
    if post.deleted_at is not None and not deleted:
        return False
    if post.status != PostStatus.published and post.author_id != user.id:
        return False
    group = _group_of(post)
    if group is None:
        return not user.is_external or post.author_id == user.id
    return _can_group(user, "group:read", group)


def _can_content(user: User, action: str, obj: Any) -> bool:
    if action.startswith("comment:"):
        comment, post = obj
        if comment.deleted_at is not None or not _can_read_post(user, post):
            return False
        match action:
            case "comment:read":
                return True
            case "comment:edit":
                return comment.author_id == user.id
            case "comment:delete":
                return comment.author_id == user.id or _manages(user, post)
            case "comment:react":
                return _may_interact(user, post)
            case _:
                return False
    post = obj
    if not _can_read_post(user, post):
        return False
    match action:
        case "post:read":
            return True
        case "post:edit":
            return post.author_id == user.id and _may_write_in(user, post)
        case "post:delete":
            return post.author_id == user.id or _manages(user, post)
        case "post:comment" | "post:react":
            return post.status == PostStatus.published and _may_interact(user, post)
        case "post:accept_answer":
            return post.is_question and (post.author_id == user.id or _manages(user, post))
        case "post:pin":
            group = _group_of(post)
            everyone_sees = group is None or group.visibility == Visibility.public
            return (
                post.status == PostStatus.published
                and everyone_sees
                and can(user, "announcement:pin")
            )
        case _:
            return False


def _manages(user: User, post: Post) -> bool:
    if post.group_id is None:
        return is_admin(user)
    return membership(user, post.group_id) in (GroupRole.owner, GroupRole.admin)


def _may_write_in(user: User, post: Post) -> bool:
    group = _group_of(post)
    return group is None or (group.archived_at is None and membership(user, group.id) is not None)


def _may_interact(user: User, post: Post) -> bool:
    """Commenting and reacting: anyone who can read, except in archived groups."""
    group = _group_of(post)
    return group is None or group.archived_at is None


def visible_posts(
    user: User | None, *, viewer: Any = None, deleted: bool = False
) -> ColumnElement[bool]:
    """Bulk form of ``post:read``: a condition on ``Post`` (use with a join-free select).

    ``viewer`` stands for ``user.id`` in the condition (by default, the id itself). A statement
    built once and executed for many readers passes a named bind parameter and gives each
    reader's id when it executes; the condition's shape still follows ``user``. With
    ``deleted``, deleted posts count as if they were not (``_can_read_post(deleted=True)``)."""
    if not _active(user):
        return false()
    assert user is not None
    me = user.id if viewer is None else viewer
    mine = select(GroupMember.group_id).where(GroupMember.user_id == me)
    public = select(Group.id).where(Group.visibility == Visibility.public)
    where_clauses: list[ColumnElement[bool]] = [Post.group_id.in_(mine)]
    if user.is_external:
        where_clauses.append(and_(Post.group_id.is_(None), Post.author_id == me))
    else:
        where_clauses += [Post.group_id.is_(None), Post.group_id.in_(public)]
    return and_(
        true() if deleted else Post.deleted_at.is_(None),
        or_(Post.status == PostStatus.published, Post.author_id == me),
        or_(*where_clauses),
    )


def visible_comments(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``comment:read``: a condition on ``Comment``."""
    return and_(
        Comment.deleted_at.is_(None),
        Comment.post_id.in_(select(Post.id).where(visible_posts(user))),
    )


# --- moderation ---------------------------------------------------------------------------------


def visible_reports(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``report:read``: a condition on ``ModerationReport``."""
    if not can(user, "moderation:read"):
        return false()
    return ModerationReport.post_id.in_(select(Post.id).where(visible_posts(user, deleted=True)))


# --- photos and albums --------------------------------------------------------------------------
#
# A photo is seen exactly where it is shown: in a post, by the post's readers (so a private or
# secret group's photos only by its members, in every size); as an avatar, by whoever may read
# the profile; as a banner, by whoever may see the group. An uploaded photo not yet placed is its
# uploader's alone.


def _can_read_photo(user: User, photo: Photo) -> bool:
    if photo.deleted_at is not None:
        return False
    match photo.use:
        case PhotoUse.pending:
            return photo.uploader_id == user.id
        case PhotoUse.post:
            post = db.session.get(Post, photo.post_id)
            return post is not None and _can_read_post(user, post)
        case PhotoUse.avatar:
            owner = db.session.get(User, photo.uploader_id)
            return owner is not None and can(user, "profile:read", owner)
        case PhotoUse.banner:
            group = db.session.get(Group, photo.group_id)
            return group is not None and _can_group(user, "group:see", group)
    return False


def _can_photo(user: User, action: str, photo: Photo) -> bool:
    if not _can_read_photo(user, photo):
        return False
    match action:
        case "photo:read":
            return True
        case "photo:edit":  # caption, licence and attribution
            return photo.uploader_id == user.id
        case "photo:delete":
            if photo.uploader_id == user.id:
                return True
            if photo.use == PhotoUse.post:
                post = db.session.get(Post, photo.post_id)
                return post is not None and _manages(user, post)
            if photo.use == PhotoUse.banner:
                group = db.session.get(Group, photo.group_id)
                return group is not None and _can_group(user, "group:manage", group)
            return False
        case _:
            return False


def photo_restricted(photo: Photo) -> bool:
    """Whether a photo is shown to fewer than all employees (a private or secret group's, or
    one not yet placed): such files are never kept by a cache without asking again."""
    if photo.use == PhotoUse.pending:
        return True
    if photo.group_id is None:
        return False
    group = db.session.get(Group, photo.group_id)
    return group is None or group.visibility != Visibility.public


def _can_album(user: User, action: str, album: Album) -> bool:
    if album.deleted_at is not None:
        return False
    group = db.session.get(Group, album.group_id) if album.group_id is not None else None
    if group is None:
        readable = not user.is_external or album.owner_id == user.id
    else:
        readable = _can_group(user, "group:read", group)
    if not readable:
        return False
    match action:
        case "album:read":
            return True
        case "album:upload":
            return (
                album.owner_id == user.id
                if group is None
                else _can_group(user, "group:post", group)
            )
        case "album:edit" | "album:delete":
            if album.owner_id == user.id:
                return group is None or group.archived_at is None
            return is_admin(user) if group is None else _can_group(user, "group:manage", group)
        case _:
            return False


def visible_albums(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``album:read``: a condition on ``Album``."""
    if not _active(user):
        return false()
    assert user is not None
    personal = (
        and_(Album.group_id.is_(None), Album.owner_id == user.id)
        if user.is_external
        else Album.group_id.is_(None)
    )
    mine = select(GroupMember.group_id).where(GroupMember.user_id == user.id)
    groups: ColumnElement[bool] = Album.group_id.in_(mine)
    if not user.is_external:
        public = select(Group.id).where(Group.visibility == Visibility.public)
        groups = or_(groups, Album.group_id.in_(public))
    return and_(Album.deleted_at.is_(None), or_(personal, groups))


def visible_photos(user: User | None) -> ColumnElement[bool]:
    """Bulk form of ``photo:read`` for photos shown in posts (albums, post galleries)."""
    return and_(
        Photo.deleted_at.is_(None),
        Photo.use == PhotoUse.post,
        Photo.post_id.in_(select(Post.id).where(visible_posts(user))),
    )
