"""On random small worlds (people, some external or deactivated; groups of every visibility,
some changed to another one after the posts were written; memberships, some left; posts,
drafts, deleted posts, comments), for every viewer: search finds exactly what the access
policy allows among what matches, and totals and facet counts agree with that."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from esn import access
from esn.accounts.actions import do_create_user, do_deactivate_user
from esn.accounts.models import User
from esn.extensions import Base, db
from esn.groups.actions import do_create_group, do_join, do_update_group
from esn.groups.models import Group, GroupMember, JoinPolicy, Visibility
from esn.search import service
from esn.search.backend import SearchBackend, SearchQuery
from esn.search.documents import viewer_audience
from esn.social.actions import do_create_comment, do_create_post, do_delete_post
from esn.social.models import Comment, Hashtag, Post, PostHashtag, PostStatus

VIS = [Visibility.public, Visibility.private, Visibility.secret]
TAGS = ("alpha", "beta")


@dataclass(frozen=True)
class PostSpec:
    author: int
    group: int | None
    draft: bool
    deleted: bool
    tag: int
    comment_by: int | None


@dataclass(frozen=True)
class World:
    externals: tuple[bool, ...]
    inactive: tuple[bool, ...]
    groups: tuple[tuple[int, int], ...]  # (visibility, later visibility)
    members: tuple[tuple[int, int], ...]  # (person, group)
    posts: tuple[PostSpec, ...]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n = draw(st.integers(2, 4))
    g = draw(st.integers(1, 3))
    externals = tuple(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    inactive = (False, *draw(st.lists(st.booleans(), min_size=n - 1, max_size=n - 1)))
    groups = tuple(
        draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=g, max_size=g))
    )
    members = tuple(
        draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, g - 1)), max_size=8))
    )
    post = st.builds(
        PostSpec,
        author=st.integers(0, n - 1),
        group=st.one_of(st.none(), st.integers(0, g - 1)),
        draft=st.sampled_from([False, False, True]),
        deleted=st.sampled_from([False, False, False, True]),
        tag=st.integers(0, 1),
        comment_by=st.one_of(st.none(), st.integers(0, n - 1)),
    )
    posts = tuple(draw(st.lists(post, min_size=2, max_size=8)))
    return World(externals, inactive, groups, members, posts)


def _wipe(backend: SearchBackend) -> None:
    db.session.rollback()
    for table in reversed(Base.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()
    backend.rebuild([])


def _build(world: World) -> None:
    users = [
        do_create_user(
            None,
            {
                "email": f"p{i}@example.org",
                "display_name": f"Kiwi Person{i}",
                "roles": ["employee"],
                "is_external": ext,
            },
        )
        for i, ext in enumerate(world.externals)
    ]
    groups = [
        do_create_group(
            users[0],
            {"name": f"kiwi group {i}", "visibility": VIS[v], "join_policy": JoinPolicy.open},
        )
        for i, (v, _later) in enumerate(world.groups)
    ]
    db.session.flush()
    for person, group in set(world.members):
        if person != 0:  # the creator is the owner already
            do_join(users[person], groups[group])
    db.session.flush()
    for spec in world.posts:
        author = users[spec.author]
        group = groups[spec.group] if spec.group is not None else None
        if group is not None and not db.session.scalar(
            select(GroupMember.user_id).where(
                GroupMember.group_id == group.id, GroupMember.user_id == author.id
            )
        ):
            author = users[0]  # only members post in groups: the owner instead
        fields = {
            "kind": "article",
            "title": "kiwi",
            "body": f"kiwi #{TAGS[spec.tag]}",
            "publish": not spec.draft,
        }
        post = do_create_post(author, fields, group)
        db.session.flush()
        if spec.comment_by is not None and not spec.draft:
            do_create_comment(users[spec.comment_by], post, "kiwi comment", None)
        if spec.deleted:
            do_delete_post(author, post)
    db.session.commit()
    for group, (v, later) in zip(groups, world.groups, strict=True):
        if later != v:
            do_update_group(users[0], group, {"visibility": VIS[later]})
    for user, off in zip(users, world.inactive, strict=True):
        if off:
            do_deactivate_user(None, user)
    db.session.commit()


def _expected(viewer: User) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for user in db.session.scalars(select(User)):
        if user.is_active and access.can(viewer, "profile:read", user):
            out.add(("person", user.id))
    for group in db.session.scalars(select(Group)):
        if access.can(viewer, "group:see", group):
            out.add(("group", group.id))
    for post in db.session.scalars(select(Post)):
        if access.can(viewer, "post:read", post):
            out.add(("article", post.id))
    for comment in db.session.scalars(select(Comment)):
        post = db.session.get(Post, comment.post_id)
        if access.can(viewer, "comment:read", (comment, post)):
            out.add(("comment", comment.id))
    return out


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(world=worlds())
def test_search_finds_exactly_what_the_policy_allows(
    app: Flask, search_backend: SearchBackend, world: World
) -> None:
    _wipe(search_backend)
    _build(world)
    db.session.rollback()
    viewers = list(db.session.scalars(select(User)))
    for viewer in viewers:
        answer = service.search(app, viewer, SearchQuery(text="kiwi", limit=100, facets=("type",)))
        found = {(f.hit.type, f.hit.id) for f in answer.items}
        assert found == _expected(viewer), viewer.id
        # The second layer alone (no hit left for the third to drop):
        raw = search_backend.search(SearchQuery(text="kiwi", limit=100), viewer_audience(viewer))
        assert {(h.type, h.id) for h in raw.hits} == found
        assert answer.total == len(found)
        assert answer.facets["type"] == dict(Counter(t for t, _ in found))
        for tag in TAGS:
            hits, _ = service.suggest(app, viewer, "hashtag", tag, 5)
            readable = db.session.scalar(
                select(Post.id)
                .join(PostHashtag, PostHashtag.post_id == Post.id)
                .join(Hashtag, Hashtag.id == PostHashtag.hashtag_id)
                .where(
                    Hashtag.name == tag,
                    Post.status == PostStatus.published,
                    access.visible_posts(viewer),
                )
                .limit(1)
            )
            assert bool(hits) == (readable is not None), (viewer.id, tag)
