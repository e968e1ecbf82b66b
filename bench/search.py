"""Benchmark of search on the SQL backend (SQLite FTS5), end to end through the production
server, next to the raw FTS5 ``MATCH`` on the same data (the floor).

    .venv/bin/python bench/search.py [--people 10000] [--groups 200] [--posts 1000000]
        [--reuse] [--requests 150] [--common-requests 20] [--servers 2x4]
        [--index-posts 300] [--lag-rate 2] [--lag-seconds 30]

Builds a world (``bench/feed_world.py``: people in departments, public, private and secret
groups with memberships, a million posts over a year with hashtags; ``--reuse`` takes the file
``bench/feed.py --reuse`` keeps in ``bench/out/`` and works on a copy of it), then measures:

(a) the full rebuild of the index, the code path of ``esn search reindex``
    (``backend.rebuild(all_documents())``): total seconds, documents per second, and the time
    of each phase (people and groups, posts, hashtags, FTS5's own ``rebuild`` and the commit);
    next to the floor: the post rows copied into the content table by one
    ``INSERT ... SELECT`` and FTS5's ``rebuild`` with the raw driver (rolled back);
(b) under gunicorn (gthread) on 127.0.0.1, one request at a time on a keep-alive connection,
    each with the bearer token of another reader (readers who are members of private or secret
    groups, so that their audience holds group tokens): p50/p95/p99 of
    ``GET /api/v1/search?q=`` with selective two-word queries (two words that occur together
    in a few posts), ``GET /api/v1/search/people?prefix=`` with two or three letters of names,
    and ``GET /api/v1/search?q=`` with very common words (in most posts); next to each, the
    floor: the raw FTS5 ``MATCH`` of the same words with ``sqlite3``, ordered by rank, one page;
(c) incremental indexing: posts created with the application's action (jobs wait in the
    outbox), then the outbox drained as ``esn worker`` does: documents per second, untagged
    posts and tagged posts apart (a tagged post also refreshes its hashtags' documents); next
    to the floor: the same post documents written with the raw driver, one transaction each;
(d) commit-to-searchable lag: ``POST /api/v1/posts`` at ``--lag-rate`` per second for
    ``--lag-seconds`` (20% with hashtags, as in the world), the server dispatching the outbox
    in a thread after each commit (as production does); each post's author polls the search
    endpoint for the post's own unique word until it is found.

SQLite only (the floor is FTS5's). Not a test: it asserts only that it measured what it meant
to.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, make_url, select

from bench import feed
from bench.feed import cpu_seconds, make_app, server, server_version
from bench.feed_world import FIRST, LAST, TOPICS, WORDS, bench_token
from bench.realtime import HTTP, percentile
from esn.extensions import db
from esn.search.backend import Document
from esn.search.sql import fts5_match, safe_terms

ROOT = Path(__file__).resolve().parent.parent
SEARCH = "/api/v1/search"
PEOPLE = "/api/v1/search/people"
# Targets of the issue, in milliseconds (latency) and seconds (rebuild, lag).
TARGET_P95_MS = 50.0
TARGET_P99_MS = 150.0
TARGET_COMMON_MS = 200.0
TARGET_LAG_P99_S = 3.0
TARGET_REBUILD_S = 60.0


# --- the database -------------------------------------------------------------------------------


@contextmanager
def database(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str]]:
    """(URL, what happened) of a fresh SQLite file holding the world. With ``--reuse`` the file
    ``bench/feed.py`` keeps is generated once and copied: this benchmark writes posts and
    rebuilds the index, and the kept world stays as generated."""
    with feed.database(args, workdir) as (url, what):
        if not args.reuse:
            yield url, what
            return
        source = make_url(url).database
        assert source is not None
        with sqlite3.connect(source) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        copy = workdir / Path(source).name
        started = time.perf_counter()
        shutil.copyfile(source, copy)
        yield f"sqlite:///{copy}", f"{what}; copied in {time.perf_counter() - started:.1f} s"


def raw(url: str) -> sqlite3.Connection:
    """The raw driver on the benchmark's database, as the application configures it."""
    path = make_url(url).database
    assert path is not None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


# --- (a) the full rebuild -------------------------------------------------------------------------


@dataclass
class Rebuild:
    documents: int
    seconds: float
    phases: list[tuple[str, float]]
    built_alone: list[tuple[str, float]]  # the documents built without writing them
    counts: dict[str, int]
    floor: list[tuple[str, float]]
    floor_rows: int

    @property
    def floor_seconds(self) -> float:
        return sum(s for _, s in self.floor)


def rebuild(url: str, workdir: Path) -> Rebuild:
    """``esn search reindex`` in process (its progress bar replaced by marks of the time each
    type of document began), then the floor with the raw driver."""
    from esn.search.documents import all_documents
    from esn.search.service import backend_for

    app = make_app(url, workdir)
    marks: list[tuple[str, float]] = []
    built: list[tuple[str, float]] = []
    with app.app_context():
        backend = backend_for(app)
        db.session.rollback()
        started = time.perf_counter()
        total = backend.rebuild(_marked(all_documents(), marks, "FTS5 rebuild, commit"))
        ended = time.perf_counter()
        counts = backend.counts()
        db.session.rollback()
        # The same documents built again and dropped: what building them costs alone.
        began = time.perf_counter()
        for _ in _marked(all_documents(), built, "end"):
            pass
        done = time.perf_counter()
        db.session.remove()
        db.engine.dispose()
    phases = _phases(marks, started, ended, "empty the tables, first read")
    alone = _phases(built, began, done, "first read")
    return Rebuild(total, ended - started, phases, alone, counts, *rebuild_floor(url))


def _marked(
    docs: Iterator[Document], marks: list[tuple[str, float]], last: str
) -> Iterator[Document]:
    """The documents, noting the time at which each phase (type) began."""
    for doc in docs:
        phase: str = "posts" if doc.type in ("post", "article") else doc.type
        phase = "people, groups" if phase in ("person", "group") else phase
        if not marks or marks[-1][0] != phase:
            marks.append((phase, time.perf_counter()))
        yield doc
    marks.append((last, time.perf_counter()))


def _phases(
    marks: list[tuple[str, float]], started: float, ended: float, first: str
) -> list[tuple[str, float]]:
    phases: dict[str, float] = {first: (marks[0][1] if marks else ended) - started}
    for (name, at), (_, until) in zip(marks, [*marks[1:], ("", ended)], strict=True):
        phases[name] = phases.get(name, 0.0) + until - at
    return [(k, v) for k, v in phases.items() if k != "end"]


def rebuild_floor(url: str) -> tuple[list[tuple[str, float]], int]:
    """The least a rebuild of the posts can cost on this database: in one transaction (rolled
    back), empty the index, copy the published post rows into the content table with one
    ``INSERT ... SELECT`` and let FTS5 index them."""
    conn = raw(url)
    steps = [
        ("empty the tables", "DELETE FROM search_audience"),
        ("", "DELETE FROM search_facets"),
        ("", "DELETE FROM search_documents"),
        (
            "INSERT ... SELECT posts",
            "INSERT INTO search_documents (doc_type, object_id, version, title, body, keywords,"
            " name_key, group_id, author_id, created_ts) SELECT kind, id, 0, coalesce(title, ''),"
            " body, '', '', group_id, author_id, 0 FROM posts WHERE deleted_at IS NULL",
        ),
        ("FTS5 'rebuild'", "INSERT INTO search_fts(search_fts) VALUES ('rebuild')"),
    ]
    times: dict[str, float] = {}
    label = ""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, sql in steps:
            label = name or label
            started = time.perf_counter()
            conn.execute(sql)
            times[label] = times.get(label, 0.0) + time.perf_counter() - started
        rows = int(conn.execute("SELECT count(*) FROM search_documents").fetchone()[0])
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    return list(times.items()), rows


# --- (b) queries ----------------------------------------------------------------------------------


@dataclass
class Queries:
    selective: list[str]
    people: list[str]
    common: list[str]
    share: dict[str, float]  # the share of the index's documents holding each common word
    pair_hits: list[int]  # matches of each selective pair


def choose_queries(url: str, rng: random.Random, posts: int) -> Queries:
    """Query words from the index's own vocabulary (``fts5vocab``)."""
    conn = raw(url)
    conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, search_fts, 'row')")
    df = dict(conn.execute("SELECT term, doc FROM temp.vocab"))
    documents = int(conn.execute("SELECT count(*) FROM search_documents").fetchone()[0])
    words = sorted({w for w in WORDS if w in df}, key=lambda w: -df[w])
    common = words[:3]
    # Selective: a text word and a hashtag that is rare (a few hundred posts at most): the pair
    # occurs together in a few posts.
    tags = [t for t, n in df.items() if n <= max(20, posts // 2000) and t[:1].isalpha()]
    tags = [t for t in tags if any(t.startswith(p.lower()) for p in TOPICS)]
    rng.shuffle(tags)
    selective: list[str] = []
    hits: list[int] = []
    for tag in tags:
        word = rng.choice(words)
        n = conn.execute(
            "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?",
            (fts5_match([word, tag]),),
        ).fetchone()[0]
        if 1 <= n <= 200:
            selective.append(f"{word} {tag}")
            hits.append(int(n))
        if len(selective) == 40:
            break
    conn.close()
    names = {w for name in FIRST + LAST for w in safe_terms(name) if len(w) >= 3}
    people = sorted({n[:k] for n in names for k in (2, 3)})
    assert selective and people and common, "no query words found"
    return Queries(selective, people, common, {w: df[w] / documents for w in common}, hits)


@dataclass
class Latency:
    samples: list[float]  # milliseconds

    def p(self, q: float) -> float:
        return percentile(self.samples, q)


def http_latency(
    base: str, path: str, param: str, words: list[str], tokens: list[str], n: int, seed: int
) -> tuple[Latency, list[dict[str, Any]]]:
    """``n`` requests one after the other on a keep-alive connection, each by another reader
    with words drawn from ``words``; the latencies and the answers."""
    rng = random.Random(seed)
    conn = HTTP(base)
    out: list[float] = []
    answers: list[dict[str, Any]] = []
    for i in range(n + 5):
        query = urllib.parse.urlencode({param: rng.choice(words)})
        token = tokens[(i * 7919 + seed) % len(tokens)]
        conn.ready()
        started = time.perf_counter()
        conn.request("GET", f"{path}?{query}", headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        body = response.read()
        took = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"GET {path}?{query} answered {response.status}: {body[:300]!r}")
        if i >= 5:  # the first five warm the connection and the caches
            out.append(took * 1000)
            answers.append(json.loads(body))
    conn.close()
    return Latency(out), answers


def floor_latency(url: str, words: list[str], n: int, seed: int, *, limit: int,
                  person: bool = False) -> Latency:  # fmt: skip
    """The raw FTS5 ``MATCH`` of the same words (the last one as a prefix, as the product
    asks), ordered by rank, one page; for the people picker, in the people's own FTS5 table
    (names and keyword columns), as the product asks."""
    rng = random.Random(seed)
    conn = raw(url)
    table = "search_people_fts" if person else "search_fts"
    sql = f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT ?"
    out: list[float] = []
    for i in range(n + 5):
        match = fts5_match(safe_terms(rng.choice(words)))
        started = time.perf_counter()
        conn.execute(sql, (match, limit)).fetchall()
        if i >= 5:
            out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return Latency(out)


def search_readers(url: str, workdir: Path, count: int, seed: int) -> list[int]:
    """Active people who are members of at least one private or secret group (their audience
    holds group tokens, so the filter has work), all having visited today already."""
    ids = feed.readers(url, workdir, 10**9, seed)
    conn = raw(url)
    members = {
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT m.user_id FROM group_members m JOIN groups g ON g.id = m.group_id "
            "WHERE g.visibility IN ('private', 'secret')"
        )
    }
    conn.close()
    chosen = [i for i in ids if i in members][:count]
    assert chosen, "no reader is in a private or secret group"
    return chosen


def closed_groups(url: str) -> set[int]:
    conn = raw(url)
    ids = {int(r[0]) for r in conn.execute("SELECT id FROM groups WHERE visibility != 'public'")}
    conn.close()
    return ids


# --- (c) incremental indexing -----------------------------------------------------------------


@dataclass
class Indexing:
    label: str
    posts: int
    documents: int
    seconds: float
    floor_seconds: float | None


def post_text(rng: random.Random, tagged: bool, extra: str = "") -> str:
    """A body like the world's: 6 to 30 of its words, a fifth of the posts with hashtags (the
    popular ones more often)."""
    text = " ".join(rng.choices(WORDS, k=rng.randint(6, 30))).capitalize() + "."
    if extra:
        text += f" {extra}"
    if tagged:
        labels = [f"{TOPICS[i % len(TOPICS)]}{i // len(TOPICS) or ''}" for i in range(1000)]
        weights = [1 / (rank + 1) for rank in range(1000)]
        text += " " + " ".join(f"#{t}" for t in set(rng.choices(labels, weights, k=2)))
    return text


def indexing(url: str, workdir: Path, authors: list[int], n: int, seed: int) -> list[Indexing]:
    """Posts created with the application's action while the outbox does not dispatch (the
    jobs wait), then the outbox drained in batches of 100 as ``esn worker`` does; untagged and
    tagged posts apart. The floor: the same untagged post documents written with the raw
    driver, one transaction per document (as each job commits its own), then removed."""
    from esn.accounts.models import User
    from esn.outbox.models import OutboxJob
    from esn.search.indexing import TOPIC
    from esn.social import actions

    rng = random.Random(seed)
    app = make_app(url, workdir)
    results = []
    with app.app_context():
        dispatcher = app.extensions["esn.outbox"]
        for label, count, tagged in (("untagged posts", n, False),
                                     ("tagged posts", max(1, n // 5), True)):  # fmt: skip
            texts: list[tuple[int, str]] = []
            for i in range(count):
                author = db.session.get(User, authors[i % len(authors)])
                assert author is not None
                body = post_text(rng, tagged)
                actions.check_create_post(author, {"kind": "post", "body": body}, None)
                texts.append((author.id, body))
            db.session.commit()
            jobs = db.session.scalar(
                select(func.count()).select_from(OutboxJob).where(OutboxJob.topic == TOPIC)
            )
            assert jobs == count, (jobs, count)
            before = _documents(url)
            db.session.remove()
            floor = index_floor(url, texts) if not tagged else None
            started = time.perf_counter()
            while dispatcher.run_jobs(limit=100):
                pass
            seconds = time.perf_counter() - started
            left = db.session.scalar(select(func.count()).select_from(OutboxJob))
            assert left == 0, f"{left} jobs left in the outbox"
            added = _documents(url) - before
            assert added >= count, (added, count)  # (and hashtags new to the index)
            # Every job's documents: its post, and each hashtag's document refreshed.
            documents = count + sum(len({w for w in t.split() if w.startswith("#")})
                                    for _, t in texts)  # fmt: skip
            results.append(Indexing(label, count, documents, seconds, floor))
        db.session.remove()
        db.engine.dispose()
    return results


def _documents(url: str) -> int:
    conn = raw(url)
    n = int(conn.execute("SELECT count(*) FROM search_documents").fetchone()[0])
    conn.close()
    return n


def index_floor(url: str, texts: list[tuple[int, str]]) -> float:
    """Raw writes of post documents (content row, two audience tokens, the FTS5 entry), one
    ``BEGIN IMMEDIATE`` ... ``COMMIT`` each; then removed again."""
    conn = raw(url)
    now = int(time.time())
    ids: list[tuple[int, str]] = []
    started = time.perf_counter()
    for i, (author, body) in enumerate(texts):
        conn.execute("BEGIN IMMEDIATE")
        rid = conn.execute(
            "INSERT INTO search_documents (doc_type, object_id, version, title, body, keywords, "
            "name_key, author_id, created_ts) VALUES ('post', ?, 1, '', ?, '', '', ?, ?) "
            "RETURNING id",
            (-1 - i, body, author, now),
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO search_audience (document_id, token) VALUES (?, ?)",
            [(rid, "internal"), (rid, f"user:{author}")],
        )
        conn.execute(
            "INSERT INTO search_fts(rowid, title, body, keywords) VALUES (?, '', ?, '')",
            (rid, body),
        )
        conn.execute("COMMIT")
        ids.append((rid, body))
    seconds = time.perf_counter() - started
    conn.execute("BEGIN IMMEDIATE")
    for rid, body in ids:
        conn.execute(
            "INSERT INTO search_fts(search_fts, rowid, title, body, keywords) "
            "VALUES ('delete', ?, '', ?, '')",
            (rid, body),
        )
        conn.execute("DELETE FROM search_audience WHERE document_id = ?", (rid,))
        conn.execute("DELETE FROM search_documents WHERE id = ?", (rid,))
    conn.execute("COMMIT")
    conn.close()
    return seconds


# --- (d) commit-to-searchable lag --------------------------------------------------------------


@dataclass
class Lag:
    seconds: list[float]  # answer of the POST -> found by search
    tagged: list[float]
    answers_ms: list[float]  # the POST's own answer time
    polls: int
    missing: int


def lag(base: str, authors: list[int], rate: float, duration: float, seed: int) -> Lag:
    """Posts at a steady rate; a poller per post searches for the post's unique word with its
    author's token every ``POLL`` seconds until found (at most 60 s)."""
    rng = random.Random(seed)
    poll = 0.02
    found: dict[int, float] = {}
    polls = [0]
    lock = threading.Lock()

    def watch(n: int, word: str, token: str, since: float) -> None:
        conn = HTTP(base)
        query = urllib.parse.urlencode({"q": word, "type": "post"})
        deadline = since + 60
        while time.perf_counter() < deadline:
            conn.ready()
            conn.request("GET", f"{SEARCH}?{query}", headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            data = json.loads(response.read())
            with lock:
                polls[0] += 1
            if response.status == 200 and data["total"] >= 1:
                with lock:
                    found[n] = time.perf_counter() - since
                break
            time.sleep(poll)
        conn.close()

    posts = max(1, round(rate * duration))
    tagged: set[int] = set()
    answers: list[float] = []
    conn = HTTP(base)
    with ThreadPoolExecutor(max_workers=64) as pool:
        began = time.perf_counter()
        for n in range(posts):
            due = began + n / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            author = authors[n % len(authors)]
            token = bench_token(author)
            word = f"lagprobe{uuid.uuid4().hex[:12]}"
            is_tagged = rng.random() < 0.2
            if is_tagged:
                tagged.add(n)
            body = {"body": post_text(rng, is_tagged, word)}
            conn.ready()
            started = time.perf_counter()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            conn.request("POST", "/api/v1/posts", json.dumps(body), headers)
            response = conn.getresponse()
            data = response.read()
            answered = time.perf_counter()
            if response.status != 201:
                raise SystemExit(f"POST /api/v1/posts answered {response.status}: {data[:300]!r}")
            answers.append((answered - started) * 1000)
            pool.submit(watch, n, word, token, answered)
    conn.close()
    return Lag(
        seconds=[found[n] for n in sorted(found)],
        tagged=[found[n] for n in sorted(found) if n in tagged],
        answers_ms=answers,
        polls=polls[0],
        missing=posts - len(found),
    )


# --- main -----------------------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = f" ({line.split(':', 1)[1].strip()})"
                break
    memory = ""
    with suppress(OSError, ValueError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return f"{os.cpu_count()} CPUs{model}{memory}; Python {platform.python_version()}"


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


@dataclass
class Kind:
    label: str
    http: Latency
    floor: Latency
    targets: list[tuple[str, float, float]]  # (name, value, target)


def measure_queries(
    url: str, base: str, master: int, queries: Queries, tokens: list[str],
    args: argparse.Namespace,
) -> tuple[list[Kind], dict[str, float]]:  # fmt: skip
    """Each kind of query through HTTP, then its floor; the server's CPU per request; and the
    share of hits in closed groups (the access filter let the readers' group tokens through)."""
    kinds = []
    notes: dict[str, float] = {}
    closed = closed_groups(url)
    plan: list[tuple[str, str, str, list[str], int, int, bool]] = [
        ("(b1) selective two words", SEARCH, "q", queries.selective, args.requests, 20, False),
        ("(b2) people prefix", PEOPLE, "prefix", queries.people, args.requests, 8, True),
        ("(b3) common word", SEARCH, "q", queries.common, args.common_requests, 20, False),
    ]
    for n, (label, path, param, words, count, limit, person) in enumerate(plan):
        cpu = cpu_seconds(master)
        latency, answers = http_latency(base, path, param, words, tokens, count, args.seed + n)
        notes[f"{label} cpu"] = (cpu_seconds(master) - cpu) * 1000 / max(count + 5, 1)
        items = [i for a in answers for i in a["items"]]
        notes[f"{label} items"] = statistics.fmean(len(a["items"]) for a in answers)
        if path == SEARCH:
            notes[f"{label} closed"] = sum(1 for i in items if i.get("group_id") in closed)
            notes[f"{label} total"] = statistics.median(a["total"] for a in answers)
            notes[f"{label} exact counts"] = sum(1 for a in answers if a["exact_counts"])
        floor = floor_latency(url, words, count, args.seed + n, limit=limit, person=person)
        if "common" in label:
            targets = [("p95", latency.p(0.95), TARGET_COMMON_MS),
                       ("p99", latency.p(0.99), TARGET_COMMON_MS)]  # fmt: skip
        else:
            targets = [("p95", latency.p(0.95), TARGET_P95_MS),
                       ("p99", latency.p(0.99), TARGET_P99_MS)]  # fmt: skip
        kinds.append(Kind(label, latency, floor, targets))
        print(f"  {label}: p50 {latency.p(0.5):.1f} ms (floor {floor.p(0.5):.1f} ms)", flush=True)
    return kinds, notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--reuse", action="store_true",
                        help="generate the world once into bench/out/ (shared with feed.py) "
                        "and work on a copy")  # fmt: skip
    parser.add_argument("--readers", type=int, default=500,
                        help="how many different people search")  # fmt: skip
    parser.add_argument("--requests", type=int, default=150,
                        help="requests of selective and of people queries")  # fmt: skip
    parser.add_argument("--common-requests", type=int, default=20,
                        help="requests of common-word queries")  # fmt: skip
    parser.add_argument("--servers", default="2x4", help="gunicorn WORKERSxTHREADS")
    parser.add_argument("--index-posts", type=int, default=300,
                        help="untagged posts indexed incrementally (and a fifth as many "
                        "tagged ones)")  # fmt: skip
    parser.add_argument("--lag-rate", type=float, default=2.0, help="posts per second")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    parser.add_argument("--skip", default="",
                        help="parts to leave out: rebuild,queries,indexing,lag (the rebuild "
                        "is still run, untimed, when the index is empty)")  # fmt: skip
    args = parser.parse_args(argv)
    args.database_url = None  # SQLite only: the floor is FTS5's
    skip = set(filter(None, args.skip.split(",")))
    workers, threads = map(int, args.servers.split("x"))
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="esn-bench-search-") as tmp:
        workdir = Path(tmp)
        with database(args, workdir) as (url, what):
            print(f"database: {what}", flush=True)
            version = server_version(url)
            load = os.getloadavg()
            print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
            built = rebuild(url, workdir)
            print(f"  (a) rebuild: {built.documents:,} documents in {built.seconds:.1f} s "
                  f"(floor {built.floor_seconds:.1f} s)", flush=True)  # fmt: skip
            readers = search_readers(url, workdir, args.readers, args.seed)
            tokens = [bench_token(uid) for uid in readers]
            queries = choose_queries(url, rng, args.posts)
            kinds: list[Kind] = []
            notes: dict[str, float] = {}
            if "queries" not in skip:
                with server(url, workdir, workers, threads) as (base, master):
                    kinds, notes = measure_queries(url, base, master, queries, tokens, args)
            indexed: list[Indexing] = []
            if "indexing" not in skip:
                indexed = indexing(url, workdir, readers, args.index_posts, args.seed)
                for r in indexed:
                    print(f"  (c) {r.label}: {r.documents / r.seconds:,.0f} documents/s",
                          flush=True)  # fmt: skip
            lagged: Lag | None = None
            if "lag" not in skip:
                with server(url, workdir, workers, threads, outbox="thread") as (base, _):
                    lagged = lag(base, readers, args.lag_rate, args.lag_seconds, args.seed)
            load = os.getloadavg()

    report(args, version, built, queries, kinds, notes, indexed, lagged, load, len(readers))


def report(
    args: argparse.Namespace, version: str, built: Rebuild, queries: Queries, kinds: list[Kind],
    notes: dict[str, float], indexed: list[Indexing], lagged: Lag | None,
    load: tuple[float, float, float], readers: int,
) -> None:  # fmt: skip
    line: Callable[..., None] = print
    line()
    line(f"Search, SQL backend: {args.people:,} people, {args.groups} groups, "
         f"{args.posts:,} posts; {version}")  # fmt: skip
    line(f"machine: {machine()}; load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    line()
    docs = ", ".join(f"{n:,} {t}" for t, n in built.counts.items() if n)
    line(f"(a) full rebuild (esn search reindex): {built.documents:,} documents ({docs})")
    met = verdict(built.seconds, TARGET_REBUILD_S)
    line(f"    {built.seconds:8.1f} s  {built.documents / built.seconds:9,.0f} documents/s   "
         f"target {TARGET_REBUILD_S:.0f} s: {met}")  # fmt: skip
    alone = dict(built.built_alone)
    line(f"    {'seconds':>8}    phase{'':26}{'of which building the documents':>32}")
    for name, seconds in built.phases:
        of = f"{alone[name]:8.1f} s" if name in alone else ""
        line(f"    {seconds:8.1f} s  {name:32}{of:>20}")
    line(f"    floor (raw driver, {built.floor_rows:,} post rows, rolled back): "
         f"{built.floor_seconds:.1f} s = "
         + ", ".join(f"{n} {s:.1f} s" for n, s in built.floor)
         + f"; rebuild x floor {built.seconds / built.floor_seconds:.1f}")  # fmt: skip
    if kinds:
        line()
        line(f"(b) latency through HTTP (gunicorn {args.servers} gthread, one request at a time, "
             f"keep-alive; {readers} readers, all in private or secret groups) next to the raw "
             "FTS5 MATCH (floor)")  # fmt: skip
        line(f"{'query':28}{'n':>5}{'p50':>8}{'p95':>8}{'p99':>8}   {'floor p50':>9}"
             f"{'p95':>8}{'p99':>8}{'x floor p95':>12}   targets")  # fmt: skip
        for k in kinds:
            h, f = k.http, k.floor
            targets = ", ".join(f"{n} <= {t:.0f} ms {verdict(v, t)}" for n, v, t in k.targets)
            line(f"{k.label:28}{len(h.samples):5}{h.p(0.5):8.1f}{h.p(0.95):8.1f}{h.p(0.99):8.1f}"
                 f"   {f.p(0.5):9.2f}{f.p(0.95):8.2f}{f.p(0.99):8.2f}"
                 f"{h.p(0.95) / max(f.p(0.95), 1e-6):12.1f}   {targets}")  # fmt: skip
        line(
            "    milliseconds; the floor is sqlite3 on the same file: MATCH of the same words "
            "(last as a prefix), ORDER BY rank, LIMIT one page (20; 8 people)"
        )
        for k in kinds:
            extra = [f"server CPU {notes[k.label + ' cpu']:.1f} ms/request",
                     f"{notes[k.label + ' items']:.1f} items/answer"]  # fmt: skip
            if k.label + " total" in notes:
                extra.append(f"median total {notes[k.label + ' total']:,.0f}")
                extra.append(f"{notes[k.label + ' exact counts']:,.0f} with exact counts")
                extra.append(f"{notes[k.label + ' closed']:,.0f} items from closed groups")
            line(f"    {k.label}: " + ", ".join(extra))
        shares = ", ".join(f"'{w}' {s:.0%}" for w, s in queries.share.items())
        line(f"    {len(queries.selective)} selective pairs (matches: median "
             f"{statistics.median(queries.pair_hits):.0f}, max {max(queries.pair_hits)}), e.g. "
             f"'{queries.selective[0]}'; {len(queries.people)} name prefixes, e.g. "
             f"'{queries.people[0]}'; common words: {shares} of the documents")  # fmt: skip
    if indexed:
        line()
        line("(c) incremental indexing through the outbox (jobs drained as `esn worker` does, "
             "one commit per job)")  # fmt: skip
        for r in indexed:
            rate = r.documents / r.seconds
            floor = ""
            if r.floor_seconds:
                floor_rate = r.posts / r.floor_seconds
                floor = (f"; floor (raw driver, a transaction per document) {floor_rate:,.0f} "
                         f"documents/s, x floor {floor_rate / rate:.1f}")  # fmt: skip
            line(f"    {r.label}: {r.posts:,} jobs, {r.documents:,} documents in "
                 f"{r.seconds:.1f} s = {rate:,.0f} documents/s, {r.seconds / r.posts * 1000:.1f} "
                 f"ms/job{floor}")  # fmt: skip
    if lagged is not None:
        line()
        s = lagged.seconds
        line(f"(d) commit-to-searchable lag: {len(s) + lagged.missing} posts through "
             f"POST /api/v1/posts at {args.lag_rate}/s, outbox dispatched in a thread, polled "
             f"every 20 ms ({lagged.polls:,} searches)")  # fmt: skip
        if s:
            p99 = percentile(s, 0.99)
            line(
                f"    p50 {percentile(s, 0.5):.2f} s, p99 {p99:.2f} s, max {max(s):.2f} s; "
                f"target p99 <= {TARGET_LAG_P99_S:.0f} s: {verdict(p99, TARGET_LAG_P99_S)}"
            )
        if lagged.tagged:
            t = lagged.tagged
            line(f"    of which tagged ({len(t)}): p50 {percentile(t, 0.5):.2f} s, "
                 f"max {max(t):.2f} s")  # fmt: skip
        line(f"    the POST's own answer: p50 {percentile(lagged.answers_ms, 0.5):.0f} ms, "
             f"p99 {percentile(lagged.answers_ms, 0.99):.0f} ms; "
             f"not found within 60 s: {lagged.missing}")  # fmt: skip


if __name__ == "__main__":
    main()
