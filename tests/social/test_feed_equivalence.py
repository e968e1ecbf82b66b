"""The optimised home feed returns exactly what the plain query returns.

``queries.home_feed`` unions each source's newest posts (own posts, followed people, groups
joined or followed, followed hashtags, announcements), each read in index order and cut at
the page size; ``queries.home_feed_reference`` is one SELECT with an OR over the sources. On
random worlds, for every reader and a few page sizes, both are read page by page to the end
and must agree page for page and cursor for cursor, the pinned announcements must be the
visible announced posts, and the page in the API's shape (read in the same query) must be what
``posts_out`` makes of those posts.

The worlds are built to stress what the optimisation could get wrong: sources that hold more
posts than a page (so that the per-source cut matters), many ties in ``published_at``, a post
in several sources at once, followed people who post in groups closed to the reader, followed
groups that are private or secret, hashtags in closed groups, drafts and deleted posts,
announcements for a department's parents and expired ones, external and deactivated readers.
Rows are written directly (the actions are tested elsewhere), keeping the one invariant the
feed relies on: ``post_hashtags.published_at`` is the post's ``published_at``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Integer, bindparam, select

from esn import access
from esn.accounts.models import Role, User, UserRole
from esn.clock import frozen_at
from esn.directory.models import Department
from esn.extensions import db
from esn.groups.models import Group, GroupMember, GroupRole, JoinPolicy, Visibility
from esn.social import queries
from esn.social.models import (
    Announcement,
    Follow,
    FollowType,
    Hashtag,
    Post,
    PostHashtag,
    PostKind,
    PostStatus,
    Reaction,
    ReactionKind,
    TargetType,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAYS = (0, 12, 25, 40, 41)  # days after START that posts are published on
NOW = START + timedelta(days=45)  # the readers' now


def build_world(rng: random.Random) -> None:
    departments = [Department(id=1, code="D", name="Division", parent_id=None)]
    departments += [Department(id=2, code="D-1", name="Department", parent_id=1)]
    departments += [Department(id=3, code="D-1-1", name="Team", parent_id=2)]
    departments += [Department(id=4, code="E", name="Other division", parent_id=None)]
    db.session.add_all(departments)
    db.session.flush()

    people = []
    for n in range(1, 13):
        external = n in (11, 12)
        people.append(
            User(
                id=n,
                email=f"p{n}@example.org",
                handle=f"p{n}",
                display_name=f"Person {n}",
                is_external=external,
                is_active=n != 10,
                department_id=None if external or n == 9 else rng.choice([1, 2, 3, 3, 4]),
            )
        )
    db.session.add_all(people)
    db.session.add_all(UserRole(user_id=p.id, role=Role.employee) for p in people)
    db.session.add_all([UserRole(user_id=1, role=Role.admin), UserRole(user_id=2, role=Role.hr)])
    visibilities = [Visibility.public, Visibility.public, Visibility.private, Visibility.secret]
    groups = [
        Group(
            id=g,
            name=f"Group {g}",
            visibility=visibilities[(g - 1) % 4] if g <= 4 else rng.choice(visibilities),
            join_policy=JoinPolicy.open,
        )
        for g in range(1, 7)
    ]
    db.session.add_all(groups)
    db.session.add_all(Hashtag(id=t, name=f"tag{t}", label=f"Tag{t}") for t in range(1, 5))
    db.session.flush()

    member_of: dict[int, set[int]] = {p.id: set() for p in people}
    for person in people:
        for g in rng.sample(range(1, 7), rng.randint(0, 3)):
            member_of[person.id].add(g)
            db.session.add(GroupMember(group_id=g, user_id=person.id, role=GroupRole.member))
    for person in people:
        others = [p.id for p in people if p.id != person.id]
        for other in rng.sample(others, rng.randint(0, 6)):
            db.session.add(
                Follow(follower_id=person.id, target_type=FollowType.user, target_id=other)
            )
        for g in rng.sample(range(1, 7), rng.randint(0, 2)):
            db.session.add(Follow(follower_id=person.id, target_type=FollowType.group, target_id=g))
        for t in rng.sample(range(1, 5), rng.randint(0, 2)):
            db.session.add(
                Follow(follower_id=person.id, target_type=FollowType.hashtag, target_id=t)
            )

    # Few distinct instants: many ties, which the (published_at, id) order must break alike.
    # They fall on a few days weeks apart, so that the feed's first read (the recent weeks
    # only) sometimes fills the page and sometimes must be redone without its bound.
    instants = [
        START + timedelta(days=rng.choice(DAYS), minutes=rng.randint(0, 40)) for _ in range(120)
    ]
    for pid in range(1, 121):
        author = rng.choice(people)
        mine = sorted(member_of[author.id])
        # Some posts in groups the author has since left or never joined (written earlier).
        group = rng.choice([*mine, None, None, rng.randint(1, 6)]) if rng.random() < 0.6 else None
        status = PostStatus.draft if rng.random() < 0.08 else PostStatus.published
        published = rng.choice(instants) if status == PostStatus.published else None
        db.session.add(
            Post(
                id=pid,
                kind=PostKind.article if status == PostStatus.draft else PostKind.post,
                author_id=author.id,
                group_id=group,
                title="A title" if status == PostStatus.draft else None,
                body=f"post {pid}",
                body_html=f"<p>post {pid}</p>",
                status=status,
                created_at=published or START,
                published_at=published,
                deleted_at=START if rng.random() < 0.06 else None,
            )
        )
        for t in rng.sample(range(1, 5), rng.choice([0, 0, 1, 2])):
            db.session.add(PostHashtag(post_id=pid, hashtag_id=t, published_at=published))
        for reader in rng.sample(people, rng.choice([0, 0, 1, 3])):
            kind = rng.choice(list(ReactionKind))
            db.session.add(
                Reaction(target_type=TargetType.post, target_id=pid, user_id=reader.id, kind=kind)
            )
    db.session.flush()
    for n, pid in enumerate(rng.sample(range(1, 121), 8)):
        until = [None, START + timedelta(days=3650), START - timedelta(days=1)][n % 3]
        db.session.add(
            Announcement(
                post_id=pid,
                department_id=rng.choice([None, 1, 2, 3, 4]),
                pinned_at=START,
                pinned_until=until,
            )
        )
    db.session.commit()


@pytest.fixture(autouse=True)
def readers_now():
    with frozen_at(NOW) as clock:
        yield clock


def pinned_reference(user: User) -> list[int]:
    """The pinned announcements as the feed computed them before it was optimised."""
    pinned = db.session.scalars(
        queries._published(user)
        .where(Post.id.in_(queries._announcements_for_reference(user)))
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(10)
    )
    return [p.id for p in pinned]


@pytest.mark.parametrize("seed", range(4))
def test_home_feed_equals_the_plain_query(app, seed):
    build_world(random.Random(seed))
    for user in db.session.scalars(select(User).order_by(User.id)).all():
        for limit in (3, 7, 50):
            cursor: str | None = None
            seen = 0
            while True:
                fast, fast_next, pinned = queries.home_feed(user, cursor, limit)
                plain, plain_next = queries.home_feed_reference(user, cursor, limit)
                where = f"seed {seed}, reader {user.id}, limit {limit}, after {seen} posts"
                assert [p.id for p in fast] == [p.id for p in plain], where
                assert fast_next == plain_next, where
                # The API shape, read in the same query, is what posts_out makes of the posts.
                items, items_next, pinned_out = queries.home_feed_out(user, cursor, limit)
                assert items == queries.posts_out(user, fast), where
                assert pinned_out == queries.posts_out(user, pinned), where
                assert items_next == fast_next, where
                if cursor is None:
                    assert [p.id for p in pinned] == pinned_reference(user), where
                else:
                    assert pinned == []
                seen += len(fast)
                if fast_next is None:
                    break
                cursor = fast_next
            if not user.is_active:
                assert seen == 0


def test_the_worlds_exercise_the_per_source_cut(app):
    """Guard against worlds too small to matter: some reader follows someone who alone has
    more visible posts than a page of 7, and some feed is several pages of 7 long; and the
    feed's first, recent-only read fills some first pages of 7 but not others."""
    build_world(random.Random(0))
    longest_source = longest_feed = 0
    recent_enough = {True: 0, False: 0}
    for reader in db.session.scalars(select(User).where(User.is_active.is_(True))).all():
        feed, _ = queries.home_feed_reference(reader, None, 1000)
        longest_feed = max(longest_feed, len(feed))
        if len(feed) > 7:
            eighth = feed[7].published_at
            assert eighth is not None
            recent_enough[eighth >= NOW - queries.HOME_RECENT] += 1
        visible = queries._published(reader).subquery()
        followed = select(Follow.target_id).where(
            Follow.follower_id == reader.id, Follow.target_type == FollowType.user
        )
        for author in db.session.scalars(followed):
            count = len(
                db.session.scalars(select(visible.c.id).where(visible.c.author_id == author)).all()
            )
            longest_source = max(longest_source, count)
    assert longest_source > 7 and longest_feed > 21, (longest_source, longest_feed)
    assert recent_enough[True] and recent_enough[False], recent_enough


def test_readers_of_a_kind_get_one_condition(app):
    """The home feed's statement is built once per ``reader_kind`` and run with each reader's
    id: that is right only while ``access.visible_posts`` gives readers of one kind the same
    condition (shape and values) but for their id. Administrators, roles, departments,
    externals and deactivated people are all in the world."""
    build_world(random.Random(0))
    conditions: dict[object, set[object]] = {}
    for reader in db.session.scalars(select(User)).all():
        viewer = bindparam(queries._VIEWER, type_=Integer)
        condition = access.visible_posts(reader, viewer=viewer)._generate_cache_key()
        assert condition is not None
        values = tuple(p.effective_value for p in condition.bindparams if p.key != viewer.key)
        conditions.setdefault(queries.reader_kind(reader), set()).add((condition.key, values))
    assert len(conditions) >= 3  # internal, external, deactivated
    assert all(len(found) == 1 for found in conditions.values()), conditions
