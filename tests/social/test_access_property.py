"""The access policy on random worlds: the per-object check, the bulk filter, an independent
model of the rules, and every feed agree.

A world holds people (some external, some deactivated, some site administrators), a public,
a private and a secret group of random join policy (some changed to another visibility after
the posts were written, some archived), memberships (some left, some removed), invitations
(some expired), join requests, follows of people, groups and hashtags, and posts (short posts,
articles, drafts, drafts published later; some deleted, some pinned, some with comments of which
some are deleted), written at times that often tie. It is built through the actions, not HTTP.

For every viewer (each person, and nobody):

* ``can(viewer, "post:read")``, ``visible_posts(viewer)`` and the model agree, post by post;
  likewise ``group:see``/``visible_groups``, ``group:read``/``readable_groups``,
  ``comment:read``/``visible_comments``, ``photo:read``/``visible_photos`` (every post carries
  a photo; one more is uploaded and never placed) and ``album:read``/``visible_albums`` (one
  personal album, one per group);
* the home feed, every group, profile and hashtag feed, read page by page with a small page
  size, hold exactly the visible published posts that belong to them (the home feed: own posts,
  followed people, groups joined or followed, followed hashtags, announcements), newest first,
  each once; the pinned announcements are visible ones; the trending counts count visible posts
  only; a post's comment list and comment count hold its visible comments.

The model (``Model.*``) is written from the rules in the issue and the policy decisions, not
from esn/access.py: site administrators get no special read access; a private group's content
is for members only; a secret group exists only for members and pending invitees; externals see
only their own groups and their own posts; deactivated people and nobody see nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from esn import access
from esn.accounts.actions import do_create_user, do_deactivate_user
from esn.accounts.models import User
from esn.clock import frozen_at, now
from esn.extensions import Base, db
from esn.groups.actions import (
    check_change_role,
    check_invite,
    check_leave,
    check_remove_member,
    check_request,
    do_archive_group,
    do_create_group,
    do_join,
    do_update_group,
)
from esn.groups.models import Group, GroupRole, JoinPolicy, Visibility
from esn.photos import pipeline
from esn.photos.actions import do_add_photo, do_attach_photos, do_create_album, store_files
from esn.photos.models import Album, Photo
from esn.social import queries
from esn.social.actions import (
    check_pin,
    check_publish,
    do_create_comment,
    do_create_post,
    do_delete_comment,
    do_delete_post,
    do_follow,
    hashtag_by_name,
)
from esn.social.models import Comment, FollowType, Post, PostStatus
from tests.photos import images

TAGS = ("alpha", "beta", "gamma")

# --- the shape of a world -----------------------------------------------------------------------


@dataclass(frozen=True)
class PersonSpec:
    external: bool
    active: bool
    admin: bool


@dataclass(frozen=True)
class GroupSpec:
    owner: int
    visibility: Visibility
    join_policy: JoinPolicy
    later: Visibility | None  # the visibility it is given after the posts were written
    archived: bool


@dataclass(frozen=True)
class MemberSpec:
    person: int
    group: int
    admin: bool
    fate: str  # "stays", "left" or "removed"


@dataclass(frozen=True)
class CommentSpec:
    author: int
    reply: bool
    deleted: bool


@dataclass(frozen=True)
class PostSpec:
    author: int
    group: int | None
    kind: str  # "post", "article", "draft" or "published_draft"
    tags: frozenset[int]
    deleted: bool
    pinned: bool
    step: int  # seconds the clock moves before it is written (0: the same instant, a tie)
    comments: tuple[CommentSpec, ...]


@dataclass(frozen=True)
class WorldSpec:
    people: tuple[PersonSpec, ...]
    groups: tuple[GroupSpec, ...]
    members: tuple[MemberSpec, ...]
    invitations: tuple[tuple[int, int, bool], ...]  # person, group, expired
    requests: tuple[tuple[int, int], ...]  # person, group
    follows: tuple[tuple[int, FollowType, int], ...]  # person, kind, target index
    posts: tuple[PostSpec, ...]


@st.composite
def worlds(draw: st.DrawFn) -> WorldSpec:
    people = draw(
        st.lists(
            st.builds(
                PersonSpec,
                external=st.sampled_from([False, False, True]),
                active=st.sampled_from([True, True, True, False]),
                admin=st.sampled_from([False, False, True]),
            ),
            min_size=3,
            max_size=6,
        )
    )
    person = st.integers(0, len(people) - 1)
    # One group of each visibility to start with (a few examples must reach every rule); what
    # becomes of them (a later visibility, archiving) and their join policies are random.
    groups = [
        draw(
            st.builds(
                GroupSpec,
                owner=person,
                visibility=st.just(visibility),
                join_policy=st.sampled_from(list(JoinPolicy)),
                later=st.none() | st.sampled_from(list(Visibility)),
                archived=st.sampled_from([False, False, True]),
            )
        )
        for visibility in Visibility
    ]
    group = st.integers(0, len(groups) - 1)
    pair = st.tuples(person, group)
    members = draw(
        st.lists(
            st.builds(
                MemberSpec,
                person=person,
                group=group,
                admin=st.booleans(),
                fate=st.sampled_from(["stays", "stays", "left", "removed"]),
            ),
            min_size=2,
            max_size=10,
            unique_by=lambda m: (m.person, m.group),
        )
    )
    invitations = draw(
        st.lists(
            st.tuples(person, group, st.booleans()),
            max_size=4,
            unique_by=lambda i: i[:2],
        )
    )
    requests = draw(st.lists(pair, max_size=3, unique=True))
    follows = draw(
        st.lists(
            st.tuples(person, st.sampled_from(list(FollowType)), st.integers(0, 4)),
            min_size=1,
            max_size=8,
        )
    )
    comment = st.builds(
        CommentSpec,
        author=person,
        reply=st.booleans(),
        deleted=st.sampled_from([False, False, True]),
    )
    posts = draw(
        st.lists(
            st.builds(
                PostSpec,
                author=person,
                group=st.none() | group,
                kind=st.sampled_from(["post", "post", "article", "draft", "published_draft"]),
                tags=st.frozensets(st.integers(0, len(TAGS) - 1), max_size=2),
                deleted=st.sampled_from([False, False, False, True]),
                pinned=st.sampled_from([False, False, False, True]),
                step=st.integers(0, 1),
                comments=st.lists(comment, max_size=3).map(tuple),
            ),
            min_size=3,
            max_size=10,
        )
    )
    return WorldSpec(
        tuple(people),
        tuple(groups),
        tuple(members),
        tuple(invitations),
        tuple(requests),
        tuple(follows),
        tuple(posts),
    )


# --- building it, and what the rules say about it -----------------------------------------------


@dataclass
class Model:
    """The facts of a built world, and the rules applied to them in plain Python."""

    spec: WorldSpec
    users: list[User] = field(default_factory=list)
    group_ids: list[int] = field(default_factory=list)
    post_ids: list[int] = field(default_factory=list)
    members: dict[int, set[int]] = field(default_factory=dict)  # group -> people
    invited: dict[int, set[int]] = field(default_factory=dict)  # group -> pending, unexpired
    followed: set[tuple[int, FollowType, int]] = field(default_factory=set)
    comments: dict[int, list[tuple[int, bool]]] = field(
        default_factory=dict
    )  # post -> (id, deleted)
    album_ids: list[int] = field(default_factory=list)  # person 0's, then one per group
    pending_photo: int = 0  # uploaded by person 0, never placed

    def visibility(self, g: int) -> Visibility:
        spec = self.spec.groups[g]
        return spec.later or spec.visibility

    def active(self, v: int | None) -> bool:
        return v is not None and self.spec.people[v].active

    def external(self, v: int) -> bool:
        return self.spec.people[v].external

    def sees_group(self, v: int | None, g: int) -> bool:
        if v is None or not self.active(v):
            return False
        return (
            v in self.members[g]
            or v in self.invited[g]
            or (not self.external(v) and self.visibility(g) != Visibility.secret)
        )

    def reads_group(self, v: int | None, g: int) -> bool:
        if v is None or not self.active(v):
            return False
        return v in self.members[g] or (
            self.visibility(g) == Visibility.public and not self.external(v)
        )

    def published(self, p: int) -> bool:
        return self.spec.posts[p].kind != "draft"

    def reads_post(self, v: int | None, p: int) -> bool:
        post = self.spec.posts[p]
        if v is None or not self.active(v) or post.deleted:
            return False
        if not self.published(p) and post.author != v:
            return False
        if post.group is None:
            return not self.external(v) or post.author == v
        return self.reads_group(v, post.group)

    def reads_album(self, v: int | None, a: int) -> bool:
        """Album 0 is person 0's own; album ``a`` > 0 belongs to group ``a - 1``."""
        if a == 0:
            return self.active(v) and v is not None and (not self.external(v) or v == 0)
        return self.reads_group(v, a - 1)

    def in_home(self, v: int, p: int) -> bool:
        post = self.spec.posts[p]
        return (
            post.author == v
            or (v, FollowType.user, post.author) in self.followed
            or (post.group is not None and v in self.members[post.group])
            or (post.group is not None and (v, FollowType.group, post.group) in self.followed)
            or any((v, FollowType.hashtag, t) in self.followed for t in post.tags)
            or post.pinned
        )


def _wipe() -> None:
    db.session.rollback()
    for table in reversed(Base.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()


def _build(spec: WorldSpec) -> Model:
    _wipe()
    model = Model(spec)
    start = now() - timedelta(hours=1)
    with frozen_at(start) as clock:
        for n, p in enumerate(spec.people):
            model.users.append(
                do_create_user(
                    None,
                    {
                        "email": f"p{n}@example.org",
                        "display_name": f"Person {n}",
                        "roles": ["admin", "employee"] if p.admin else ["employee"],
                        "password": None,
                        "is_external": p.external,
                    },
                )
            )
        users = model.users
        groups: list[Group] = []
        for n, g in enumerate(spec.groups):
            groups.append(
                do_create_group(
                    users[g.owner],
                    {"name": f"G{n}", "visibility": g.visibility, "join_policy": g.join_policy},
                )
            )
            model.members[n] = {g.owner}
            model.invited[n] = set()
        for m in spec.members:
            owner = spec.groups[m.group].owner
            if m.person == owner:
                continue
            group, person = groups[m.group], users[m.person]
            do_join(person, group)
            if m.admin:
                check_change_role(users[owner], group, person.id, GroupRole.admin)
            if m.fate == "left":
                check_leave(person, group)
            elif m.fate == "removed":
                check_remove_member(users[owner], group, person.id)
            else:
                model.members[m.group].add(m.person)
        for person, g, expired in spec.invitations:
            if person in model.members[g]:
                continue
            owner = users[spec.groups[g].owner]
            if expired:
                clock.set(start - timedelta(days=10))
            check_invite(owner, groups[g], users[person].id, 1 if expired else 14)
            clock.set(start)
            if not expired:
                model.invited[g].add(person)
        for person, g in spec.requests:
            if person not in model.members[g]:
                check_request(users[person], groups[g], "")

        for n, p in enumerate(spec.posts):
            clock.set(clock.current + timedelta(seconds=p.step))
            body = " ".join([f"Post {n}", *(f"#{TAGS[t]}" for t in sorted(p.tags))])
            fields = {"kind": "post" if p.kind == "post" else "article", "body": body}
            if p.kind != "post":
                fields["title"] = f"Article {n}"
                fields["publish"] = p.kind == "article"
            group = groups[p.group] if p.group is not None else None
            post = do_create_post(users[p.author], fields, group)
            model.post_ids.append(post.id)
            do_attach_photos(users[p.author], post, [_photo(users[p.author])])
            model.comments[n] = []
            if p.kind == "published_draft":
                # Published later than posts written after it: feed order is publication order.
                clock.set(clock.current + timedelta(seconds=1))
                check_publish(users[p.author], post)
            if p.kind != "draft":  # drafts take no comments and cannot be pinned
                made: list[Comment] = []
                for c in p.comments:
                    first = next((x for x in made if x.parent_id is None), None)
                    parent = first if c.reply else None
                    made.append(do_create_comment(users[c.author], post, "A comment", parent))
                for c, row in zip(p.comments, made, strict=True):
                    if c.deleted:
                        do_delete_comment(users[c.author], post, row)
                    model.comments[n].append((row.id, c.deleted))
                if p.pinned:
                    check_pin(users[0], post, None, None)
            if p.deleted:
                do_delete_post(users[p.author], post)

        for n, g in enumerate(spec.groups):
            if g.later is not None:
                do_update_group(users[g.owner], groups[n], {"visibility": g.later})
            if g.archived:
                do_archive_group(users[g.owner], groups[n])
        model.group_ids = [g.id for g in groups]
        model.album_ids = [do_create_album(users[0], {"title": "Mine"}, None).id]
        for n, g in enumerate(spec.groups):
            # Made after the visibility changes: an album follows its group's visibility now.
            model.album_ids.append(
                do_create_album(users[g.owner], {"title": f"A{n}"}, groups[n]).id
            )
        model.pending_photo = _photo(users[0]).id

        used_tags = {t for p in spec.posts for t in p.tags}
        for person, kind, index in spec.follows:
            if kind == FollowType.user:
                target, key = users[index % len(users)].id, index % len(users)
            elif kind == FollowType.group:
                if not groups:
                    continue
                key = index % len(groups)
                target = groups[key].id
            else:
                key = index % len(TAGS)
                if key not in used_tags:
                    continue  # a hashtag exists once a post has used it
                target = hashtag_by_name(TAGS[key]).id
            do_follow(users[person], kind, target)
            model.followed.add((person, kind, key))

        for n, p in enumerate(spec.people):
            if not p.active:
                do_deactivate_user(None, users[n])
    db.session.commit()
    return model


_TINY = pipeline.process(images.plain_jpeg((8, 6)))


def _photo(owner: User) -> Photo:
    """A real (tiny) photo of ``owner``'s, uploaded and not yet placed."""
    return do_add_photo(owner, _TINY, store_files(_TINY), {}, None)


# --- reading every page -------------------------------------------------------------------------


Page = tuple[list[Post], str | None]


def _all_pages(fetch: Callable[[str | None], Page], limit: int) -> list[Post]:
    """Every page of a feed, concatenated; checks the page size and the newest-first order."""
    posts: list[Post] = []
    cursor = None
    for _ in range(100):
        page, cursor = fetch(cursor)
        assert len(page) <= limit
        posts += page
        if cursor is None:
            break
    else:
        raise AssertionError("paging did not end")
    keys = [(p.published_at, p.id) for p in posts]
    assert keys == sorted(keys, reverse=True), "not newest first"
    assert len(keys) == len(set(keys)), "a post was served twice"
    return posts


def _ids(posts: list[Post]) -> set[int]:
    return {p.id for p in posts}


def _check_feeds(model: Model, v: int, limit: int) -> None:
    spec, viewer = model.spec, model.users[v]
    visible = {n for n in range(len(spec.posts)) if model.reads_post(v, n) and model.published(n)}
    pid = model.post_ids

    def expect(belongs: Callable[[int], bool]) -> set[int]:
        return {pid[n] for n in visible if belongs(n)}

    home = _all_pages(lambda c: queries.home_feed(viewer, c, limit)[:2], limit)
    assert _ids(home) == expect(lambda n: model.in_home(v, n)), "home feed"
    pinned = queries.home_feed(viewer, None, limit)[2]
    assert _ids(pinned) == expect(lambda n: spec.posts[n].pinned), "pinned announcements"

    for g, group_id in enumerate(model.group_ids):
        feed = _all_pages(lambda c, i=group_id: queries.group_feed(viewer, i, c, limit), limit)
        assert _ids(feed) == expect(lambda n, g=g: spec.posts[n].group == g), f"group feed {g}"
    for a, author in enumerate(model.users):
        feed = _all_pages(lambda c, i=author.id: queries.profile_feed(viewer, i, c, limit), limit)
        assert _ids(feed) == expect(lambda n, a=a: spec.posts[n].author == a), f"profile {a}"
    used = {t for p in spec.posts for t in p.tags}
    for t in sorted(used):
        tag_id = hashtag_by_name(TAGS[t]).id
        feed = _all_pages(lambda c, i=tag_id: queries.hashtag_feed(viewer, i, c, limit), limit)
        assert _ids(feed) == expect(lambda n, t=t: t in spec.posts[n].tags), f"#{TAGS[t]}"

    _, trending = queries.trending_hashtags(viewer)
    counted = Counter(TAGS[t] for n in visible for t in spec.posts[n].tags)
    assert {name: count for name, _, count in trending} == dict(counted), "trending counts"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=worlds(), limit=st.integers(1, 3))
def test_checks_filters_model_and_feeds_agree(app, spec, limit):
    model = _build(spec)
    posts = {p.id: p for p in db.session.scalars(select(Post))}
    groups = {g.id: g for g in db.session.scalars(select(Group))}
    comments = {c.id: c for c in db.session.scalars(select(Comment))}
    index_of_post = {post_id: n for n, post_id in enumerate(model.post_ids)}
    index_of_group = {group_id: n for n, group_id in enumerate(model.group_ids)}

    for v in [*range(len(model.users)), None]:
        viewer = model.users[v] if v is not None else None
        who = spec.people[v] if v is not None else "nobody"

        checked = {i for i, p in posts.items() if access.can(viewer, "post:read", p)}
        bulk = set(db.session.scalars(select(Post.id).where(access.visible_posts(viewer))))
        modelled = {i for i, n in index_of_post.items() if model.reads_post(v, n)}
        assert checked == bulk == modelled, ("post:read", who, checked, bulk, modelled)

        checked = {i for i, g in groups.items() if access.can(viewer, "group:see", g)}
        bulk = set(db.session.scalars(select(Group.id).where(access.visible_groups(viewer))))
        modelled = {i for i, n in index_of_group.items() if model.sees_group(v, n)}
        assert checked == bulk == modelled, ("group:see", who, checked, bulk, modelled)

        checked = {i for i, g in groups.items() if access.can(viewer, "group:read", g)}
        modelled = {i for i, n in index_of_group.items() if model.reads_group(v, n)}
        bulk = set(db.session.scalars(select(Group.id).where(access.readable_groups(viewer))))
        assert checked == bulk == modelled, ("group:read", who, checked, bulk, modelled)

        checked = {
            i
            for i, c in comments.items()
            if access.can(viewer, "comment:read", (c, posts[c.post_id]))
        }
        bulk = set(db.session.scalars(select(Comment.id).where(access.visible_comments(viewer))))
        modelled = {
            cid
            for n, rows in model.comments.items()
            if model.reads_post(v, n)
            for cid, deleted in rows
            if not deleted
        }
        assert checked == bulk == modelled, ("comment:read", who, checked, bulk, modelled)

        photos = {p.id: p for p in db.session.scalars(select(Photo))}
        checked = {i for i, p in photos.items() if access.can(viewer, "photo:read", p)}
        bulk = set(db.session.scalars(select(Photo.id).where(access.visible_photos(viewer))))
        in_posts = {p.post_id: i for i, p in photos.items() if p.post_id is not None}
        modelled = {in_posts[i] for i, n in index_of_post.items() if model.reads_post(v, n)}
        assert checked - {model.pending_photo} == bulk == modelled, ("photo:read", who)
        pending = model.pending_photo in checked
        assert pending == (v == 0 and model.active(v)), ("unplaced photo", who)

        albums = {a.id: a for a in db.session.scalars(select(Album))}
        checked = {i for i, a in albums.items() if access.can(viewer, "album:read", a)}
        bulk = set(db.session.scalars(select(Album.id).where(access.visible_albums(viewer))))
        modelled = {i for a, i in enumerate(model.album_ids) if model.reads_album(v, a)}
        assert checked == bulk == modelled, ("album:read", who, checked, bulk, modelled)

        if viewer is not None:
            _check_feeds(model, v, limit)

    # A post's comment list and count hold exactly its comments that are not deleted.
    for n, post_id in enumerate(model.post_ids):
        post = posts[post_id]
        if post.status != PostStatus.published:
            continue
        alive = [cid for cid, deleted in model.comments[n] if not deleted]
        listed = _all_comments(post, limit)
        assert listed == alive and post.comment_count == len(alive)


def _all_comments(post: Post, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page, cursor = queries.list_comments(post, cursor, limit)
        ids += [c.id for c in page]
        if cursor is None:
            return ids
