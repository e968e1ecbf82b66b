"""The world of the telemetry benchmark: people in departments and a usage event log of about
13 months, generated from a seed and written with the raw driver (``executemany`` on SQLite,
``COPY`` on PostgreSQL).

This is benchmark set-up, not a product path: the events are the rows ``record_usage`` writes
(same kinds, columns, payload JSON text and timestamp format, the schema built by the
migrations), but generated directly so that ten million of them load in minutes. Nothing here
is imported by the application or the tests.

The shape:

* people: a few divisions of departments with sub-departments (about 40 units), ~3% externals
  (no department), ~1% bots, ~1% deactivated during the period, ~6% hired during it; a handful
  of time zones;
* activity: each person has a rank (Zipf-like): the chance of being active on a weekday goes
  from ~0.9 for the most active few down to a few percent, and 30% are dormant (a visit or two
  a year); daily actives ~15-20% on average, fewer at weekends, over the year-end and in
  August. The acts of an active day are geometric, of a mean from ~150 for the most active to
  well under one (a visit only) for lurkers, so that the top 10% make ~85% of the acts (about
  70-80% of the people visit in 90 days, 60-70% interact); events fall mostly in the person's
  local office hours;
* every active person-day starts with one ``account:session:visit``; the rest is reactions,
  comments (some replies), posts (a process each, mostly ``general``; ~15% questions),
  mentions next to posts and comments, and other acts (follows, edits, sign-ins, group joins,
  a few moderation reports). Comments and reactions answer earlier posts (mostly recent ones,
  often of the same department): ``thread_root_id`` is the post, ``owner_id`` the person
  answered, ``process`` the post's.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate, islice
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import make_url

DIVISIONS = ("Research", "Engineering", "Manufacturing", "Sales and marketing", "People",
             "Finance and IT")  # fmt: skip
# The process a division's people post about besides "general".
DIVISION_PROCESS = ("innovation", "innovation", "production", "marketing", "recruitment",
                    "service")  # fmt: skip
SCORED = ("marketing", "recruitment", "innovation", "production", "service")
ZONES = (("Europe/Amsterdam", 45), ("Europe/London", 15), ("America/New_York", 15),
         ("Asia/Kolkata", 10), ("Asia/Singapore", 5), ("America/Los_Angeles", 5),
         ("UTC", 5))  # fmt: skip
REACTIONS = ("like", "like", "like", "love", "celebrate", "insightful", "support", "curious")
US = 1_000_000
DAY_US = 86_400 * US


def _payload(**fields: Any) -> str:
    """The JSON text the application stores: ``json.dumps`` of the payload model's dump."""
    return json.dumps(fields)


P_EMPTY = _payload()
P_PUBLISH = {(k, q): _payload(kind=k, is_question=q) for k in ("post", "article")
             for q in (False, True)}  # fmt: skip
P_DRAFT = _payload(kind="article", is_question=False)
P_COMMENT = {(r, q): _payload(is_reply=r, on_question=q) for r in (False, True)
             for q in (False, True)}  # fmt: skip
P_REACTION = {(r, t): _payload(reaction=r, target=t) for r in set(REACTIONS)
              for t in ("post", "comment")}  # fmt: skip
P_MENTION = {s: _payload(source=s) for s in ("post", "comment")}
P_FOLLOW = {t: _payload(target=t) for t in ("user", "group", "hashtag")}
P_FIELDS = {f: _payload(fields=[f]) for f in ("body", "bio", "title")}

# The mix of the acts of an active day after its visit (weights); mentions come on top, next
# to ~22% of posts and comments. "Other" acts are split further below.
ACTS = (("reaction", 35.0), ("comment", 15.0), ("post", 8.0), ("other", 12.0))
MENTION_RATE = 5 / 23  # mentions ~5% of all events, posts and comments ~23%
OTHER = (("follow", 3.0), ("sign_in", 2.0), ("reaction_remove", 1.5), ("post_edit", 1.5),
         ("join", 1.5), ("comment_edit", 1.0), ("profile", 0.5), ("draft", 0.5),
         ("reaction_change", 0.5), ("report", 0.02))  # fmt: skip


VERSION = 2  # of the generator: part of the name of a reused file


@dataclass
class World:
    people: int = 10_000
    events: int = 10_000_000
    days: int = 395
    seed: int = 2026
    daily_active: float = 0.18  # the average share of people active on a day (weekday peak ~0.23)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Person:
    id: int
    department: int | None
    division: int | None
    zone: str
    is_bot: bool
    is_external: bool
    first_day: int  # day index of the first possible activity (hires)
    last_day: int  # day index of the last (deactivated people)
    p_active: float  # chance of being active on a plain weekday
    weight: float  # relative number of acts on an active day


def _cum(weights: Sequence[tuple[str, float]]) -> tuple[list[str], list[float]]:
    names = [n for n, _ in weights]
    cum = list(accumulate(w for _, w in weights))
    return names, [c / cum[-1] for c in cum]


def day_factor(day: date) -> float:
    """How busy a day is relative to a plain weekday: weekends, the year-end, August."""
    if day.weekday() >= 5:
        return 0.12
    if (day.month == 12 and day.day >= 23) or (day.month == 1 and day.day <= 2):
        return 0.3
    if day.month == 8:
        return 0.75
    return 1.0


def last_weekday_before(today: date) -> date:
    """The last day of the log: the latest weekday before ``today`` (a busy day, so that the
    incremental day of the benchmark is a representative one)."""
    day = today - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


# --- people ---------------------------------------------------------------------------------------


def make_departments(start: datetime) -> list[tuple[int, str, str, int | None, datetime]]:
    """6 divisions of 4 departments each; two departments per division have teams (~40)."""
    rows: list[tuple[int, str, str, int | None, datetime]] = []
    for d, division in enumerate(DIVISIONS):
        div_id = len(rows) + 1
        rows.append((div_id, f"D{d}", division, None, start))
        for s in range(4):
            dep_id = len(rows) + 1
            rows.append((dep_id, f"D{d}-{s}", f"{division} {s + 1}", div_id, start))
            if s < 2 and not (d % 2 and s == 1):
                for t in range(2 if s == 0 else 1):
                    rows.append(
                        (len(rows) + 1, f"D{d}-{s}-{t}", f"{division} {s + 1}.{t + 1}", dep_id,
                         start)
                    )  # fmt: skip
    return rows


def make_people(
    world: World, rng: random.Random, departments: list[tuple[Any, ...]]
) -> list[Person]:
    leaves = [d for d in departments if d[3] is not None]  # departments and teams
    division_of = {}
    for dep_id, _code, _name, parent, _at in departments:
        division_of[dep_id] = dep_id if parent is None else division_of[parent]
    zones, zone_cum = _cum(ZONES)
    ranks = list(range(1, world.people + 1))
    rng.shuffle(ranks)  # activity is independent of the id
    people = []
    for i in range(world.people):
        uid = i + 1
        external = rng.random() < 0.03
        bot = not external and rng.random() < 0.01
        dept = None if external else rng.choice(leaves)[0]
        u = ranks[i] / world.people
        margin = max(1, world.days // 12)
        first = rng.randrange(margin, world.days - margin) if rng.random() < 0.06 else 0
        last = rng.randrange(first + margin, world.days) if rng.random() < 0.01 else world.days - 1
        people.append(Person(
            id=uid, department=dept, division=None if dept is None else division_of[dept],
            zone=zones[bisect_left(zone_cum, rng.random())], is_bot=bot, is_external=external,
            first_day=first, last_day=last,
            p_active=0.9 if bot else 0.004 if u > 0.7 else min(0.92, 0.03 * u**-1.2),
            weight=0.3 if bot else 0.05 if u > 0.7 else min(60.0, 0.3 / u),
        ))  # fmt: skip
    return people


# --- the events -----------------------------------------------------------------------------------


class Log:
    """The state of the generated platform as the days go by: posts, comments, reports."""

    def __init__(self, people: list[Person], rng: random.Random) -> None:
        self.rng = rng
        self.people = people
        self.post_author: list[int] = []
        self.post_process: list[str] = []
        self.post_question: list[bool] = []
        self.dept_posts: dict[int | None, deque[int]] = {}
        self.comments: deque[tuple[int, int, int]] = deque(maxlen=3000)  # id, author, post
        self.comment_count = 0
        self.report_count = 0
        self.last_post: dict[int, int] = {}
        self.last_comment: dict[int, tuple[int, int]] = {}
        self.pending_resolves: dict[int, list[tuple[int, int, str]]] = {}
        self.by_department: dict[int | None, list[int]] = {}
        for p in people:
            if not p.is_bot:
                self.by_department.setdefault(p.department, []).append(p.id)
        popular = [p.id for p in people if not p.is_bot]
        popular.sort(key=lambda uid: -people[uid - 1].weight)
        self.popular = popular
        self.popular_cum = list(accumulate(1 / (r + 1) for r in range(len(popular))))
        self.moderators = popular[10:15]

    def pick_post(self, actor: Person) -> int:
        """A post to answer (its id): often a recent one of the actor's department, mostly a
        recent one, sometimes an old one."""
        rng = self.rng
        n = len(self.post_author)
        r = rng.random()
        if r < 0.45:
            mine = self.dept_posts.get(actor.department)
            if mine:
                return mine[int(rng.random() * len(mine))]
        if r < 0.93:
            return max(1, n - int(rng.expovariate(1 / 400)))
        return 1 + int(rng.random() * n)

    def colleague(self, actor: Person) -> int:
        rng = self.rng
        if rng.random() < 0.6:
            team = self.by_department.get(actor.department)
            if team:
                return team[int(rng.random() * len(team))]
        total = self.popular_cum[-1]
        return self.popular[bisect_left(self.popular_cum, rng.random() * total)]


Row = tuple[Any, ...]
# (id, day index, microseconds into the UTC day, kind, actor, actor department, object type,
#  object id, owner, group, process, thread root, payload JSON text)


def events(world: World, people: list[Person], first_day: date) -> Iterator[Row]:
    """Every event of the log, day by day in time order, ids in time order."""
    rng = random.Random(world.seed + 1)
    log = Log(people, rng)
    acts, acts_cum = _cum(ACTS)
    others, others_cum = _cum(OTHER)
    zone_info = {z: ZoneInfo(z) for z, _ in ZONES}
    days = [first_day + timedelta(days=i) for i in range(world.days)]
    factors = [day_factor(d) for d in days]
    stats = world.stats
    stats.update(events=0, person_days=0, counted_person_days=0, posts=0, counted_posts=0,
                 kinds={}, per_day=[])  # fmt: skip
    kinds_count: dict[str, int] = stats["kinds"]

    # Calibration: the chance of a person being active is scaled so that the average day has
    # ``daily_active`` of the people active, then the acts per active day so that the log has
    # about ``world.events`` events. Externals and bots are a little less active.
    def alive(p: Person, i: int) -> bool:
        return p.first_day <= i <= p.last_day

    # With few events for the people and days, fewer people are active (visits at most ~30%).
    daily_active = min(world.daily_active, 0.3 * world.events / (world.people * world.days))
    for _ in range(6):  # scaled and capped again, until the cap no longer moves the average
        expected_days = sum(
            p.p_active * factors[i] for i in range(world.days) for p in people if alive(p, i)
        )
        scale = daily_active * world.people * world.days / expected_days
        for p in people:
            p.p_active = min(0.95, p.p_active * scale)
    active_days = sum(
        p.p_active * factors[i] for i in range(world.days) for p in people if alive(p, i)
    )
    weighted = sum(
        p.p_active * factors[i] * p.weight * (1 if factors[i] >= 0.5 else 0.6)
        for i in range(world.days) for p in people if alive(p, i)
    )  # fmt: skip
    acts_per_weight = (world.events - active_days) / (weighted * (1 + 23 / 70 * MENTION_RATE))

    next_id = 1
    for i, day in enumerate(days):
        f = factors[i]
        weekend = day.weekday() >= 5
        offsets = {
            z: int(zi.utcoffset(datetime.combine(day, time(12))).total_seconds())  # type: ignore[union-attr]
            for z, zi in zone_info.items()
        }
        todays: list[tuple[int, int, int, str]] = []  # (t, order, person id, act)
        visits: dict[int, int] = {}  # person id -> time of the day's visit
        for p in people:
            if not (p.first_day <= i <= p.last_day) or rng.random() >= p.p_active * f:
                continue
            stats["person_days"] += 1
            if not p.is_bot:
                stats["counted_person_days"] += 1
            mean = p.weight * acts_per_weight * (1 if f >= 0.5 else 0.6)
            # geometric, of mean ``mean``: often none (a visit only), sometimes many
            n = int(math.log(1 - rng.random()) / math.log(mean / (1 + mean))) if mean > 0 else 0
            offset = offsets[p.zone]
            start_h = rng.gauss(8.5, 1.0)
            first_t = DAY_US
            for _ in range(n):
                if weekend:
                    local = 8 + rng.random() * 14
                elif rng.random() < 0.82:
                    local = start_h + rng.random() * 9.5
                else:
                    local = 6 + rng.random() * 17
                t = int((local * 3600 - offset) * US) % DAY_US
                first_t = min(first_t, t)
                r = rng.random()
                act = acts[bisect_left(acts_cum, r)]
                if act == "other":
                    act = others[bisect_left(others_cum, rng.random())]
                todays.append((t, len(todays), p.id, act))
            if n == 0:
                local = start_h + rng.random() * 9.5
                first_t = int((local * 3600 - offset) * US) % DAY_US
            visit_t = max(0, first_t - int(rng.random() * 60 * US))
            todays.append((visit_t, -1, p.id, "visit"))
            visits[p.id] = visit_t
        for t, report_id, process in log.pending_resolves.pop(i, []):
            moderator = rng.choice(log.moderators)
            if moderator not in visits:  # a moderator who comes in only for this
                visits[moderator] = t - int(rng.random() * 60 * US) if t >= 60 * US else 0
                todays.append((visits[moderator], -1, moderator, "visit"))
                stats["person_days"] += 1
                stats["counted_person_days"] += 1
            t = max(t, visits[moderator] + US)
            todays.append((t, len(todays), moderator, f"resolve:{report_id}:{process}"))
        todays.sort()
        seen_reactions: set[tuple[int, int]] = set()
        day_events = 0
        for t, _order, uid, act in todays:
            for row in _act(log, people[uid - 1], i, t, act, seen_reactions):
                yield (next_id, *row)
                next_id += 1
                day_events += 1
                kinds_count[row[2]] = kinds_count.get(row[2], 0) + 1
        stats["per_day"].append(day_events)
        stats["events"] += day_events
    stats["posts"] = len(log.post_author)
    stats["counted_posts"] = sum(1 for a in log.post_author if not people[a - 1].is_bot)


def _act(log: Log, p: Person, day: int, t: int, act: str, seen: set[tuple[int, int]]) -> list[Row]:
    """The event rows (without ids) of one act of ``p``."""
    rng = log.rng
    uid, dept = p.id, p.department
    have_posts = bool(log.post_author)
    if act in ("reaction", "comment", "reaction_remove", "reaction_change") and not have_posts:
        act = "post"
    if act == "visit":
        return [(day, t, "account:session:visit", uid, dept, None, None, None, None, None, None,
                 P_EMPTY)]  # fmt: skip
    if act == "post":
        log.post_author.append(uid)
        pid = len(log.post_author)
        r = rng.random()
        if r < 0.58:
            process = "general"
        elif r < 0.83 and p.division is not None:
            process = DIVISION_PROCESS[_DIVISION_INDEX[p.division]]
        else:
            process = SCORED[int(rng.random() * 5)]
        question = rng.random() < 0.15
        log.post_process.append(process)
        log.post_question.append(question)
        ring = log.dept_posts.get(dept)
        if ring is None:
            ring = log.dept_posts[dept] = deque(maxlen=60)
        ring.append(pid)
        log.last_post[uid] = pid
        kind = "article" if rng.random() < 0.05 else "post"
        rows = [(day, t, "social:post:publish", uid, dept, "post", pid, None, None, process, pid,
                 P_PUBLISH[(kind, question)])]  # fmt: skip
        return rows + _mentions(log, p, day, t, "post", pid, pid, process)
    if act == "reaction":
        if log.comments and rng.random() < 0.2:
            cid, owner, pid = log.comments[int(rng.random() * len(log.comments))]
            target, obj = "comment", cid
        else:
            pid = log.pick_post(p)
            if (uid, pid) in seen:
                pid = log.pick_post(p)
            seen.add((uid, pid))
            owner, target, obj = log.post_author[pid - 1], "post", pid
        reaction = REACTIONS[int(rng.random() * len(REACTIONS))]
        return [(day, t, "social:reaction:add", uid, dept, target, obj, owner, None,
                 log.post_process[pid - 1], pid, P_REACTION[(reaction, target)])]  # fmt: skip
    if act == "comment":
        if log.comments and rng.random() < 0.25:
            _parent, owner, pid = log.comments[int(rng.random() * len(log.comments))]
            reply = True
        else:
            pid = log.pick_post(p)
            owner, reply = log.post_author[pid - 1], False
        log.comment_count += 1
        cid = log.comment_count
        log.comments.append((cid, uid, pid))
        log.last_comment[uid] = (cid, pid)
        process = log.post_process[pid - 1]
        rows = [(day, t, "social:comment:create", uid, dept, "comment", cid, owner, None, process,
                 pid, P_COMMENT[(reply, log.post_question[pid - 1])])]  # fmt: skip
        return rows + _mentions(log, p, day, t, "comment", cid, pid, process)
    if act in ("reaction_remove", "reaction_change"):
        pid = log.pick_post(p)
        kind = "social:reaction:remove" if act == "reaction_remove" else "social:reaction:change"
        return [(day, t, kind, uid, dept, "post", pid, log.post_author[pid - 1], None,
                 log.post_process[pid - 1], pid, P_REACTION[("like", "post")])]  # fmt: skip
    if act == "post_edit" and uid in log.last_post:
        pid = log.last_post[uid]
        return [(day, t, "social:post:edit", uid, dept, "post", pid, None, None,
                 log.post_process[pid - 1], pid, P_FIELDS["body"])]  # fmt: skip
    if act == "comment_edit" and uid in log.last_comment:
        cid, pid = log.last_comment[uid]
        return [(day, t, "social:comment:edit", uid, dept, "comment", cid, None, None,
                 log.post_process[pid - 1], pid, P_EMPTY)]  # fmt: skip
    if act == "follow":
        r = rng.random()
        if r < 0.6:
            other = log.colleague(p)
            return [(day, t, "social:follow:create", uid, dept, "user", other, other, None, None,
                     None, P_FOLLOW["user"])]  # fmt: skip
        if r < 0.85:
            g = 1 + int(rng.random() * 200)
            return [(day, t, "social:follow:create", uid, dept, "group", g, None, g, None, None,
                     P_FOLLOW["group"])]  # fmt: skip
        h = 1 + int(rng.random() * 1000)
        return [(day, t, "social:follow:create", uid, dept, "hashtag", h, None, None, None, None,
                 P_FOLLOW["hashtag"])]  # fmt: skip
    if act == "join":
        g = 1 + int(rng.random() * 200)
        return [(day, t, "groups:member:join", uid, dept, "group", g, None, g, None, None,
                 P_EMPTY)]  # fmt: skip
    if act == "profile":
        return [(day, t, "account:profile:update", uid, dept, "user", uid, None, None, None, None,
                 P_FIELDS["bio"])]  # fmt: skip
    if act == "draft":
        return [(day, t, "social:post:save_draft", uid, dept, "post", None, None, None, "general",
                 None, P_DRAFT)]  # fmt: skip
    if act == "report" and have_posts:
        pid = log.pick_post(p)
        log.report_count += 1
        rid = log.report_count
        process = log.post_process[pid - 1]
        later = t + int(rng.expovariate(1 / (20 * 3600)) * US)
        log.pending_resolves.setdefault(day + later // DAY_US, []).append(
            (later % DAY_US, rid, process)
        )
        return [(day, t, "moderation:report:raise", uid, dept, "report", rid, None, None, process,
                 None, P_EMPTY)]  # fmt: skip
    if act.startswith("resolve:"):
        _, rid, process = act.split(":")
        return [(day, t, "moderation:report:resolve", uid, dept, "report", int(rid), None, None,
                 process, None, P_EMPTY)]  # fmt: skip
    # sign-ins, and edits by people with nothing to edit yet
    return [(day, t, "account:session:sign_in", uid, dept, None, None, None, None, None, None,
             P_EMPTY)]  # fmt: skip


_DIVISION_INDEX: dict[int, int] = {}  # division id -> position in DIVISIONS


def _mentions(log: Log, p: Person, day: int, t: int, source: str, obj: int, root: int,
              process: str) -> list[Row]:  # fmt: skip
    if log.rng.random() >= MENTION_RATE:
        return []
    other = log.colleague(p)
    if other == p.id:
        other = log.colleague(p)
    return [(day, t, "social:mention:create", p.id, p.department, source, obj, other, None,
             process, root, P_MENTION[source])]  # fmt: skip


# --- writing --------------------------------------------------------------------------------------

SECONDS = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]
EVENT_COLUMNS = ("id", "occurred_at", "kind", "actor_id", "actor_department_id", "object_type",
                 "object_id", "owner_id", "group_id", "process", "thread_root_id",
                 "payload")  # fmt: skip


def timestamp(days: list[str], day: int, t: int, suffix: str = "") -> str:
    """As the application stores an aware UTC time on SQLite (naive UTC text with
    microseconds); with ``suffix="+00"`` as PostgreSQL reads a timestamptz."""
    return f"{days[day]} {SECONDS[t // US]}.{t % US:06d}{suffix}"


def to_datetime(first_day: date, day: int, t: int) -> datetime:
    return datetime.combine(first_day + timedelta(days=day), time(0), UTC) + timedelta(
        microseconds=t
    )


class Writer:
    """Bulk writes with the raw driver: executemany on SQLite, COPY on PostgreSQL. The indexes
    of ``usage_events`` are dropped for the load and made again after it with the very
    statements the migrations created them with."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            path = make_url(url).database
            assert path is not None
            self.conn: Any = sqlite3.connect(path, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = OFF")  # set-up only; the app uses FULL
            self.conn.execute("PRAGMA foreign_keys = OFF")  # rows are consistent by design
            self.conn.execute("PRAGMA cache_size = -1000000")
            self.conn.execute("BEGIN")
        else:
            import psycopg

            dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
            self.conn = psycopg.connect(dsn)

    def value(self, v: Any) -> Any:
        if self.sqlite and isinstance(v, datetime):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return v

    def rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if self.sqlite:
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            self.conn.executemany(sql, [tuple(map(self.value, r)) for r in rows])
            return len(rows)
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return len(rows)

    def event_indexes(self) -> list[str]:
        if self.sqlite:
            return [
                sql
                for (sql,) in self.conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'usage_events' AND sql IS NOT NULL ORDER BY name"
                )
            ]
        return [
            sql
            for (sql,) in self.conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_events' "
                "AND schemaname = current_schema() AND indexname <> 'pk_usage_events' "
                "ORDER BY indexname"
            )
        ]

    def events(self, first_day: date, rows: Iterator[Row]) -> int:
        """Write the event rows; the indexes are rebuilt at the end."""
        indexes = self.event_indexes()
        for ddl in indexes:
            name = ddl.split(" INDEX ", 1)[1].split()[0]
            self.conn.execute(f"DROP INDEX {name}")
        days = [(first_day + timedelta(days=i)).isoformat() for i in range(1000)]
        n = 0
        if self.sqlite:
            sql = (
                f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})"
            )
            while chunk := list(islice(rows, 100_000)):
                self.conn.executemany(
                    sql, [(r[0], timestamp(days, r[1], r[2]), *r[3:]) for r in chunk]
                )
                n += len(chunk)
        else:
            columns = ", ".join(EVENT_COLUMNS)
            with (
                self.conn.cursor() as cur,
                cur.copy(f"COPY usage_events ({columns}) FROM STDIN") as copy,
            ):
                while chunk := list(islice(rows, 100_000)):
                    # COPY text format; nothing generated holds a tab, newline or backslash.
                    copy.write(
                        "".join(
                            f"{r[0]}\t{timestamp(days, r[1], r[2], '+00')}\t{r[3]}\t{r[4]}\t"
                            f"{_n(r[5])}\t{_n(r[6])}\t{_n(r[7])}\t{_n(r[8])}\t{_n(r[9])}\t"
                            f"{_n(r[10])}\t{_n(r[11])}\t{r[12]}\n"
                            for r in chunk
                        )
                    )
                    n += len(chunk)
            self.conn.execute("SET maintenance_work_mem = '512MB'")
        for ddl in indexes:
            self.conn.execute(ddl)
        return n

    def finish(self) -> None:
        if self.sqlite:
            self.conn.execute("COMMIT")
            self.conn.execute("ANALYZE")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.close()
            return
        for table in ("departments", "users", "usage_events"):
            self.conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        self.conn.commit()
        # What autovacuum would do soon after a bulk load: statistics and the visibility map.
        self.conn.autocommit = True
        self.conn.execute("VACUUM ANALYZE")
        self.conn.close()


def _n(v: Any) -> str:
    return "\\N" if v is None else str(v)


# --- the whole world ------------------------------------------------------------------------------


def build(world: World, last_day: date) -> tuple[date, list[tuple[Any, ...]], list[Person]]:
    """(first day, department rows, people) of ``world`` ending on ``last_day``."""
    rng = random.Random(world.seed)
    first_day = last_day - timedelta(days=world.days - 1)
    start = datetime.combine(first_day, time(0), UTC) - timedelta(days=60)
    departments = make_departments(start)
    _DIVISION_INDEX.clear()
    for n, dep in enumerate(d for d in departments if d[3] is None):
        _DIVISION_INDEX[dep[0]] = n
    return first_day, departments, make_people(world, rng, departments)


def user_rows(world: World, first_day: date, people: list[Person]) -> list[tuple[Any, ...]]:
    base = datetime.combine(first_day, time(0), UTC) - timedelta(days=60)
    rows = []
    for p in people:
        created = base if p.first_day == 0 else datetime.combine(
            first_day + timedelta(days=p.first_day), time(7), UTC
        )  # fmt: skip
        gone = p.last_day < world.days - 1
        deactivated = (
            datetime.combine(first_day + timedelta(days=p.last_day + 1), time(9), UTC)
            if gone else None
        )  # fmt: skip
        domain = "partner.example" if p.is_external else "example.org"
        rows.append((
            p.id, f"person{p.id}@{domain}", f"E{100000 + p.id}", f"person{p.id}",
            f"Bot {p.id}" if p.is_bot else f"Person {p.id}", None, not gone, p.is_external,
            p.is_bot, p.department, "", "", p.zone, "", 0, None, created, created, deactivated,
        ))  # fmt: skip
    return rows


USER_COLUMNS = ("id", "email", "employee_number", "handle", "display_name", "password_hash",
                "is_active", "is_external", "is_bot", "department_id", "title", "location",
                "time_zone", "bio", "auth_epoch", "last_visit_on", "created_at", "updated_at",
                "deactivated_at")  # fmt: skip


EventSink = Callable[[date, Iterator[Row]], int]


def generate(
    world: World, url: str, last_day: date, event_sink: EventSink | None = None
) -> dict[str, Any]:
    """Write the whole world into the migrated, empty database at ``url``; its statistics.
    ``event_sink(first_day, rows)``, if given, writes the events instead of the raw driver
    (after everything else is committed)."""
    first_day, departments, people = build(world, last_day)
    w = Writer(url)
    w.rows("departments", ("id", "code", "name", "parent_id", "created_at"), departments)
    w.rows("users", USER_COLUMNS, user_rows(world, first_day, people))
    w.rows("user_roles", ("user_id", "role"), [(p.id, "employee") for p in people])
    # The innovation process is for Research and Engineering (and their sub-departments).
    scope_at = datetime.combine(first_day, time(0), UTC)
    w.rows("governance_process_scopes", ("process", "owner_id", "updated_by_id", "updated_at"),
           [("innovation", None, None, scope_at)])  # fmt: skip
    divisions = [d[0] for d in departments if d[3] is None]
    w.rows("governance_scope_departments", ("process", "department_id"),
           [("innovation", divisions[0]), ("innovation", divisions[1])])  # fmt: skip
    rows = events(world, people, first_day)
    if event_sink is None:
        n = w.events(first_day, rows)
        w.finish()
    else:
        w.finish()
        n = event_sink(first_day, rows)
    stats = world.stats
    assert n == stats["events"], (n, stats["events"])
    per_day = stats.pop("per_day")
    alive = len(people)
    return {
        "events": n,
        "people": alive,
        "bots": sum(p.is_bot for p in people),
        "externals": sum(p.is_external for p in people),
        "departments": len(departments),
        "first_day": first_day.isoformat(),
        "last_day": last_day.isoformat(),
        "last_day_events": per_day[-1],
        "max_day_events": max(per_day),
        "person_days": stats["person_days"],
        "counted_person_days": stats["counted_person_days"],
        "daily_active": stats["person_days"] / (alive * world.days),
        "posts": stats["posts"],
        "counted_posts": stats["counted_posts"],
        "kinds": dict(sorted(stats["kinds"].items(), key=lambda kv: -kv[1])),
    }


__all__ = ["EVENT_COLUMNS", "Row", "World", "generate", "last_weekday_before", "to_datetime"]
