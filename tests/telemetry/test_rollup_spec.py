"""The rollup job's SQL builds exactly the rows that ``telemetry.rollup.reduce_day`` — the
Python statement of what a day's rollup holds — gives for the same events, on both databases."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from esn.clock import frozen_at
from esn.extensions import db
from esn.usage.rollup_job import rebuild_rollups, run_rollups, vocabulary
from esn.usage.rollups import FirstContribution, PersonDay, Thread, TieDay
from telemetry.rollup import AfterHours, Event, Person, reduce_day
from tests.telemetry import world
from tests.telemetry.reference import Ev
from tests.telemetry.test_indicators_reference import (  # noqa: F401 (the fixture)
    LAST_DAY,
    PEOPLE,
    build,
    event_spec,
    person_attrs,
    setting,
)


def _naive(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def expected(events: list[Ev], people: dict[int, Person]) -> dict[str, Any]:
    vocab = vocabulary()
    late = AfterHours()
    by_day: dict[date, list[Event]] = defaultdict(list)
    for e in events:
        by_day[e.at.date()].append(
            Event(e.at, e.kind, e.actor, e.owner, e.process, e.root, e.obj, e.question)
        )
    person_days: dict[tuple[str, date, int], tuple[int, int, int, int]] = {}
    ties: dict[tuple[str, date, int, int], int] = {}
    threads: dict[int, list[Any]] = {}
    responses: list[tuple[int, int, datetime, datetime | None]] = []
    for day in sorted(by_day):
        r = reduce_day(day, by_day[day], people, vocab, late)
        for (s, p), c in r.person_days.items():
            person_days[(s, day, p)] = tuple(c)  # type: ignore[assignment]
        for (s, a, b), w in r.ties.items():
            ties[(s, day, a, b)] = w
        for root, (process, author, at, question) in r.thread_starts.items():
            threads.setdefault(root, [process, author, _naive(at), question, None, None])
        for (root, who), (first, comment) in r.responses.items():
            responses.append((root, who, first, comment))
    for root, who, first, comment in responses:
        thread = threads.get(root)
        if thread is None or thread[1] == who:
            continue
        first = _naive(first)
        if thread[4] is None or first < thread[4]:
            thread[4] = first
        if comment is not None and (thread[5] is None or _naive(comment) < thread[5]):
            thread[5] = _naive(comment)
    firsts: dict[tuple[str, int], date] = {}
    for (s, day, p), c in sorted(person_days.items(), key=lambda kv: kv[0][1]):
        if c[2]:
            firsts.setdefault((s, p), day)
    gaps: dict[tuple[str, date, int], int | None] = {}
    last: dict[tuple[str, int], date] = {}
    for s, day, p in sorted(person_days, key=lambda k: k[1]):
        gaps[(s, day, p)] = (day - last[(s, p)]).days if (s, p) in last else None
        last[(s, p)] = day
    return {
        "person_days": {k: (*v, gaps[k]) for k, v in person_days.items()},
        "ties": ties,
        "threads": {k: tuple(v) for k, v in threads.items()},
        "firsts": firsts,
    }


def built() -> dict[str, Any]:
    db.session.rollback()
    pd = {
        (r.process, r.day, r.person_id): (
            r.events, r.interactions, r.contributions, r.after_hours, r.gap_days
        )
        for r in db.session.scalars(select(PersonDay))
    }  # fmt: skip
    ties = {(r.process, r.day, r.source_id, r.target_id): r.weight
            for r in db.session.scalars(select(TieDay))}  # fmt: skip
    threads = {
        r.root_id: (
            r.process, r.author_id, _naive(r.started_at), r.is_question,
            _naive(r.first_response_at) if r.first_response_at else None,
            _naive(r.first_comment_at) if r.first_comment_at else None,
        )
        for r in db.session.scalars(select(Thread))
    }  # fmt: skip
    firsts = {
        (r.process, r.person_id): r.day for r in db.session.scalars(select(FirstContribution))
    }
    return {"person_days": pd, "ties": ties, "threads": threads, "firsts": firsts}


def compare(world_setting: dict[str, Any], events: list[Ev]) -> None:
    users = [world_setting["lead"], *world_setting["people"]]
    people = {u.id: Person(u.is_bot, u.time_zone, u.is_external) for u in users}
    want, got = expected(events, people), built()
    for part in ("person_days", "ties", "threads", "firsts"):
        assert got[part] == want[part], part


@settings(
    max_examples=10,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    attrs=st.lists(person_attrs, min_size=PEOPLE, max_size=PEOPLE),
    specs=st.lists(event_spec, min_size=1, max_size=120),
    span=st.sampled_from([1, 3, 7]),
)
def test_the_rollups_are_what_the_specification_says(app, setting, attrs, specs, span):  # noqa: F811
    events = build(setting, attrs, specs)
    with frozen_at(world.at(LAST_DAY + 2)):
        rebuild_rollups(db.engine, span_days=span)
    compare(setting, events)


def test_day_by_day_equals_a_rebuild(app, setting):  # noqa: F811
    """Incremental runs (one day at a time, as the schedule does) give the rebuild's rows."""
    import random

    rng = random.Random(3)
    attrs = [
        {"is_bot": i == 0, "is_external": i == 1, "time_zone": rng.choice(["UTC", "Asia/Kolkata"]),
         "department": rng.randint(0, 2)}
        for i in range(PEOPLE)
    ]  # fmt: skip
    specs = [
        (rng.randint(0, 20), rng.randint(0, 23), rng.randint(0, 5), rng.randint(0, PEOPLE - 1),
         rng.randint(0, 10_000), rng.randint(0, 2), rng.random() < 0.3)
        for _ in range(300)
    ]  # fmt: skip
    events = build(setting, attrs, specs)
    for day in range(0, 23):
        with frozen_at(world.at(day + 1)):
            run_rollups(db.engine)
    compare(setting, events)
    assert built()["threads"], "the world has threads"
    with frozen_at(world.at(23)):
        rebuild_rollups(db.engine)
    compare(setting, events)
