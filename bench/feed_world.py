"""The world of the feed benchmark: people, groups, follows, posts and hashtags, generated from a
seed and written with the raw driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL).

This is benchmark set-up, not a product path: the rows are written as the application would
store them (same column formats, the schema built by the migrations) but without the actions,
so that a million posts load in a minute instead of an hour. Nothing here is imported by the
application or the tests.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import sqlite3
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import make_url

TOKEN_KEY = b"esn-bench-feed"  # bench tokens are derived from the user id (reproducible)
FIRST = ["Anna", "Bo", "Cas", "Daan", "Eva", "Femke", "Gijs", "Hugo", "Ines", "Joris", "Karin",
         "Lotte", "Milan", "Noor", "Olivier", "Pien", "Quinten", "Roos", "Sem", "Tess", "Umar",
         "Vera", "Wout", "Xena", "Yara", "Zeno", "Léa", "Jürgen", "Søren"]  # fmt: skip
LAST = ["de Vries", "Jansen", "Smit", "Bakker", "Visser", "Meijer", "Mulder", "de Boer", "Bos",
        "Dekker", "Dubois", "Martin", "Bernard", "Silva", "Santos", "Müller", "Schmidt", "Nowak",
        "García", "Rossi", "O'Brien", "van den Berg", "Peeters", "Hansen"]  # fmt: skip
TEXT = """the new line is running ahead of plan and the team would like feedback on the test
results before friday customer visit went well thanks everyone who helped with the demo
quarterly review notes are in the shared folder who can help with the supplier audit next
week lunch talk about safety in the lab"""
WORDS = TEXT.split()
TOPICS = ("Safety", "Lean", "Launch", "Quality", "Hiring", "Sales", "Kaizen", "Audit", "Demo",
          "Training", "Customer", "Supply", "Energy", "Data", "Python", "Onboarding")  # fmt: skip
PROCESSES = ("marketing", "recruitment", "innovation", "production", "service", "general")


def bench_token(user_id: int) -> str:
    """The API token of a benchmark user (reproducible, so that ``--reuse`` needs no file)."""
    mac = hmac.new(TOKEN_KEY, str(user_id).encode(), hashlib.sha256).hexdigest()
    return f"esn_bench{mac[:40]}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class World:
    people: int
    groups: int
    posts: int
    seed: int = 2026
    # filled by generate_people/generate_groups; used by the post generator
    active: list[int] = field(default_factory=list)
    externals: set[int] = field(default_factory=set)
    member_of: dict[int, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def _zipf_cum(n: int, s: float) -> list[float]:
    """Cumulative weights of ranks 1..n with exponent s (a few are popular, most are not)."""
    return list(itertools.accumulate(1 / (rank**s) for rank in range(1, n + 1)))


def _pick(rng: random.Random, cum: list[float], k: int) -> list[int]:
    """k indexes drawn from the cumulative weights (with repetition)."""
    total = cum[-1]
    return [bisect_left(cum, rng.random() * total) for _ in range(k)]


def _ts(value: datetime) -> str:
    """A timestamp as SQLAlchemy stores ``DateTime`` on SQLite (naive UTC, microseconds)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class Writer:
    """Bulk inserts with the raw driver: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            path = make_url(url).database
            assert path is not None
            self.conn: Any = sqlite3.connect(path, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = OFF")  # set-up only; the server uses FULL
            self.conn.execute("PRAGMA foreign_keys = OFF")  # rows are consistent by design
            self.conn.execute("PRAGMA cache_size = -400000")
            self.conn.execute("BEGIN")
        else:
            import psycopg

            dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
            self.conn = psycopg.connect(dsn)

    def value(self, v: Any) -> Any:
        if self.sqlite:
            if isinstance(v, datetime):
                return _ts(v)
            if isinstance(v, date):
                return v.isoformat()
        return v

    def rows(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        n = 0
        if self.sqlite:
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            for chunk in _chunks(rows, 50_000):
                self.conn.executemany(sql, [tuple(map(self.value, r)) for r in chunk])
                n += len(chunk)
            return n
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self.conn.cursor() as cur, cur.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def finish(self, serial_tables: Iterable[str]) -> None:
        if self.sqlite:
            self.conn.execute("COMMIT")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
            return
        for table in serial_tables:
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        self.conn.commit()
        # What autovacuum would do soon after a bulk load: statistics and the visibility map
        # (index-only scans need it).
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.close()


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def generate(world: World, url: str, today: date) -> dict[str, int]:
    """Write the whole world into the migrated, empty database at ``url``."""
    rng = random.Random(world.seed)
    end = datetime.combine(today, datetime.min.time(), UTC) - timedelta(minutes=1)
    start = end - timedelta(days=365)
    w = Writer(url)
    counts: dict[str, int] = {}

    # Departments: 10 divisions, 5 departments each, 3 teams each.
    departments: list[tuple[int, str, str, int | None, datetime]] = []
    for d in range(10):
        div_id = len(departments) + 1
        departments.append((div_id, f"D{d}", f"Division {d}", None, start))
        for s in range(5):
            dep_id = len(departments) + 1
            departments.append((dep_id, f"D{d}-{s}", f"Department {d}.{s}", div_id, start))
            for t in range(3):
                departments.append(
                    (len(departments) + 1, f"D{d}-{s}-{t}", f"Team {d}.{s}.{t}", dep_id, start)
                )
    teams = [d[0] for d in departments if d[1].count("-") == 2]
    counts["departments"] = w.rows(
        "departments", ("id", "code", "name", "parent_id", "created_at"), departments
    )

    # People: 3% externals (no department), 1% deactivated.
    users, roles, tokens, dept_of = [], [], [], {}
    for uid in range(1, world.people + 1):
        external = rng.random() < 0.03
        active = rng.random() >= 0.01 or uid == 1
        dept = None if external else rng.choice(teams)
        dept_of[uid] = dept
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        users.append((
            uid, f"person{uid}@{'partner.example' if external else 'example.org'}",
            f"E{100000 + uid}", f"person{uid}", name, None, active, external, False, dept,
            "", "Delft", "Europe/Amsterdam", "", 0, None, start, start,
            None if active else end,
        ))  # fmt: skip
        roles.append((uid, "employee"))
        if uid == 1:
            roles.append((uid, "admin"))
        elif uid % 500 == 0:
            roles.append((uid, "communications"))
        if active:
            world.active.append(uid)
            tok = bench_token(uid)
            tokens.append((uid, uid, "bench", token_digest(tok), tok[:10], start, None))
        if external:
            world.externals.add(uid)
    counts["users"] = w.rows(
        "users",
        ("id", "email", "employee_number", "handle", "display_name", "password_hash",
         "is_active", "is_external", "is_bot", "department_id", "title", "location",
         "time_zone", "bio", "auth_epoch", "last_visit_on", "created_at", "updated_at",
         "deactivated_at"),
        users,
    )  # fmt: skip
    w.rows("user_roles", ("user_id", "role"), roles)
    counts["api_tokens"] = w.rows(
        "api_tokens",
        ("id", "user_id", "name", "token_hash", "prefix", "created_at", "expires_at"),
        tokens,
    )
    del users

    # Groups: half public, a third private, the rest secret; popularity is skewed.
    groups, visibility = [], {}
    for gid in range(1, world.groups + 1):
        r = rng.random()
        vis = "public" if r < 0.5 else "private" if r < 0.85 else "secret"
        policy = {"public": "open", "private": "request", "secret": "invite"}[vis]
        visibility[gid] = vis
        groups.append((gid, f"Group {gid}", "", vis, policy, rng.choice(PROCESSES), None,
                       None, start, None))  # fmt: skip
    counts["groups"] = w.rows(
        "groups",
        ("id", "name", "description", "visibility", "join_policy", "process",
         "process_owner_id", "created_by_id", "created_at", "archived_at"),
        groups,
    )  # fmt: skip
    group_cum = _zipf_cum(world.groups, 0.8)
    members: list[tuple[int, int, str, datetime]] = []
    for uid in range(1, world.people + 1):
        k = rng.randint(2, 8)  # about 5 groups each
        mine = sorted({g + 1 for g in _pick(rng, group_cum, k)})
        world.member_of[uid] = mine
        members.extend((g, uid, "member", start) for g in mine)
    # The first member of each group owns it.
    owned: set[int] = set()
    for i, (group_id, user_id, _role, joined) in enumerate(members):
        if group_id not in owned:
            owned.add(group_id)
            members[i] = (group_id, user_id, "owner", joined)
    counts["group_members"] = w.rows(
        "group_members", ("group_id", "user_id", "role", "joined_at"), members
    )
    del members

    # Hashtags with Zipf popularity.
    labels = [f"{TOPICS[i % len(TOPICS)]}{i // len(TOPICS) or ''}" for i in range(1000)]
    tags = [(i + 1, label.lower(), label) for i, label in enumerate(labels)]
    counts["hashtags"] = w.rows("hashtags", ("id", "name", "label"), tags)
    tag_cum = _zipf_cum(len(tags), 1.0)

    # Follows: ~50 people each (colleagues of the same team and popular people), a public group
    # or two, a few hashtags.
    people_cum = _zipf_cum(world.people, 0.7)
    popular = list(range(1, world.people + 1))
    rng.shuffle(popular)  # popularity is independent of the id
    by_team: dict[int | None, list[int]] = {}
    for uid, dept in dept_of.items():
        by_team.setdefault(dept, []).append(uid)
    public_groups = [g for g, v in visibility.items() if v == "public"]

    def follows() -> Iterator[tuple[int, str, int, datetime]]:
        for uid in range(1, world.people + 1):
            target = rng.randint(35, 65)
            chosen: set[int] = set()
            team = by_team.get(dept_of[uid], []) if dept_of[uid] is not None else []
            chosen.update(rng.sample(team, min(len(team), target // 4)))
            while len(chosen) < target:
                chosen.update(popular[i] for i in _pick(rng, people_cum, target - len(chosen)))
            chosen.discard(uid)
            for other in sorted(chosen):
                yield (uid, "user", other, start)
            for g in sorted(
                set(rng.sample(public_groups, rng.randint(0, 2))) - set(world.member_of[uid])
            ):
                yield (uid, "group", g, start)
            for t in sorted({i + 1 for i in _pick(rng, tag_cum, rng.randint(0, 5))}):
                yield (uid, "hashtag", t, start)

    counts["follows"] = w.rows(
        "follows", ("follower_id", "target_type", "target_id", "created_at"), follows()
    )

    # Posts over the past year, in time order (ids grow with time, as they do live); activity
    # is skewed (a few people post a lot); 30% of posts in one of the author's groups; 20% carry
    # hashtags; some articles, drafts and deleted posts.
    author_cum = _zipf_cum(world.people, 0.6)
    authors_by_rank = list(range(1, world.people + 1))
    rng.shuffle(authors_by_rank)
    span = (end - start).total_seconds()
    stamps = sorted(rng.random() * span for _ in range(world.posts))
    sentences = [" ".join(rng.choices(WORDS, k=rng.randint(6, 30))).capitalize() + "."
                 for _ in range(2000)]  # fmt: skip
    post_tags: list[tuple[int, int, datetime | None]] = []

    def posts() -> Iterator[tuple[Any, ...]]:
        picks = _pick(rng, author_cum, world.posts)
        for pid in range(1, world.posts + 1):
            author = authors_by_rank[picks[pid - 1]]
            published = start + timedelta(seconds=stamps[pid - 1])
            mine = world.member_of.get(author) or []
            group = rng.choice(mine) if mine and rng.random() < 0.3 else None
            text = rng.choice(sentences)
            tagged = []
            if rng.random() < 0.2:
                tagged = sorted({i + 1 for i in _pick(rng, tag_cum, rng.randint(1, 2))})
                text += " " + " ".join(f"#{tags[t - 1][2]}" for t in tagged)
            article = rng.random() < 0.05
            status = "draft" if article and rng.random() < 0.1 else "published"
            deleted = published if rng.random() < 0.005 else None
            when = published if status == "published" else None
            for t in tagged:
                post_tags.append((pid, t, when))
            yield (
                pid, "article" if article else "post", author, group,
                "An article" if article else None, text, f"<p>{escape(text)}</p>", status,
                rng.choice(PROCESSES) if group is None else "general", rng.random() < 0.05,
                None, published, when, None, deleted, rng.randint(0, 5), rng.randint(0, 12),
            )  # fmt: skip

    counts["posts"] = w.rows(
        "posts",
        ("id", "kind", "author_id", "group_id", "title", "body", "body_html", "status",
         "process", "is_question", "accepted_comment_id", "created_at", "published_at",
         "edited_at", "deleted_at", "comment_count", "reaction_count"),
        posts(),
    )  # fmt: skip
    counts["post_hashtags"] = w.rows(
        "post_hashtags", ("post_id", "hashtag_id", "published_at"), post_tags
    )

    # Reactions: some on recent posts, so that "my reaction" lookups find rows.
    def reactions() -> Iterator[tuple[Any, ...]]:
        seen: set[tuple[int, int]] = set()
        for rid in range(1, world.posts // 4 + 1):
            post = world.posts - int(rng.random() ** 2 * world.posts)
            uid = rng.choice(world.active)
            if (post, uid) in seen:
                continue
            seen.add((post, uid))
            yield (rid, "post", post, uid, "like", end)

    counts["reactions"] = w.rows(
        "reactions", ("id", "target_type", "target_id", "user_id", "kind", "created_at"),
        reactions(),
    )  # fmt: skip

    # Announcements: a few recent top-level posts, for everyone or a division.
    recent = range(world.posts, max(0, world.posts - 5000), -97)
    announcements = []
    for n, pid in enumerate(itertools.islice(recent, 12)):
        dept = None if n < 4 else rng.choice([d[0] for d in departments if d[3] is None])
        until = None if n % 3 else end + timedelta(days=30 if n % 2 else -400)
        announcements.append((n + 1, pid, dept, 1, end, until))
    counts["announcements"] = w.rows(
        "announcements",
        ("id", "post_id", "department_id", "pinned_by_id", "pinned_at", "pinned_until"),
        announcements,
    )
    # Announced posts must be readable by everyone: top level and published.
    ids = ",".join(str(a[1]) for a in announcements)
    w.conn.execute(
        f"UPDATE posts SET group_id = NULL, status = 'published', deleted_at = NULL, "
        f"published_at = created_at WHERE id IN ({ids})"
    )
    w.conn.execute(
        f"UPDATE post_hashtags SET published_at = (SELECT published_at FROM posts "
        f"WHERE posts.id = post_hashtags.post_id) WHERE post_id IN ({ids})"
    )
    w.finish(("departments", "users", "api_tokens", "groups", "hashtags", "posts",
              "reactions", "announcements"))  # fmt: skip
    world.counts = counts
    return counts
