"""The rollup job: brings the telemetry rollups up to the last complete UTC day.

Each day is aggregated from the event log by the database (INSERT … SELECT … GROUP BY over the
day's events) and written in one transaction together with the fill state, so a job killed
midway has written complete days only: the interrupted day was never committed, and the next
run starts from it. Building a day first deletes whatever rows it has, so a day can always be
redone.

What a day's rows must hold is specified in Python by ``telemetry.rollup.reduce_day``;
tests/telemetry/test_rollup_job.py holds these statements to it on random worlds. After-hours
uses each person's time zone through a small table of the day's UTC hours per time zone
(``AfterHours.hour_split``), so both databases compute it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    distinct,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from esn.accounts.models import User
from esn.clock import now
from esn.database import UTCDateTime, insert_ignoring_conflicts, write_intent
from esn.usage import kinds
from esn.usage.models import UsageEvent
from esn.usage.rollups import (
    Figures,
    FillState,
    FirstContribution,
    PersonDay,
    Report,
    Thread,
    TieDay,
)
from telemetry.rollup import ALL, NO_PROCESS, AfterHours, Vocabulary, day_bounds

FILL_STATE = "usage_rollups"
ROLLUP_TABLES = (PersonDay, TieDay, Thread, FirstContribution, Report, Figures)

# The day's UTC hours per time zone: minutes before ``split`` are after hours if ``late_before``.
_tz_hours = Table(
    "telemetry_tz_hours",
    MetaData(),
    Column("time_zone", String(64), primary_key=True),
    Column("hour_key", String(13), primary_key=True),
    Column("split", Integer),
    Column("late_before", Integer),
    Column("late_after", Integer),
    prefixes=["TEMPORARY"],
)
_TZ_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS telemetry_tz_hours (time_zone VARCHAR(64), "
    "hour_key VARCHAR(13), split INTEGER, late_before INTEGER, late_after INTEGER, "
    "PRIMARY KEY (time_zone, hour_key))"
)


def vocabulary() -> Vocabulary:
    declared = kinds.all_kinds()
    return Vocabulary(
        interactions=frozenset(k.name for k in declared if k.interaction),
        contributions=frozenset(k.name for k in declared if k.contribution),
        thread_starts=frozenset({kinds.POST_PUBLISH.name}),
        comments=frozenset({kinds.COMMENT_CREATE.name}),
        reactions=frozenset({kinds.REACTION_ADD.name}),
        reports_raised=frozenset({kinds.REPORT_RAISE.name}),
        reports_resolved=frozenset({kinds.REPORT_RESOLVE.name}),
    )


@dataclass
class RollupRun:
    days: int
    events: int
    done_through: date | None


def done_through(conn: Connection) -> date | None:
    return conn.scalar(select(FillState.done_through).where(FillState.name == FILL_STATE))


def _first_day(conn: Connection) -> date | None:
    first = conn.scalar(select(func.min(UsageEvent.occurred_at)))
    if first is None:
        return None
    if isinstance(first, str):  # SQLite without the column type's conversion
        first = datetime.fromisoformat(first)
    return first.date()


class _Dialect:
    """The few expressions that differ between SQLite (timestamps stored as UTC text) and
    PostgreSQL (timestamptz)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        at = UsageEvent.occurred_at
        if self.postgres:
            utc = func.timezone("UTC", at)
            self.day: Any = cast(utc, Date)
            self.hour_key: Any = func.to_char(utc, "YYYY-MM-DD HH24")
            self.minute: Any = cast(func.extract("minute", utc), Integer)
        else:
            self.day = func.substr(at, 1, 10)
            self.hour_key = func.substr(at, 1, 13)
            self.minute = cast(func.substr(at, 15, 2), Integer)

    def days_between(self, later: Any, earlier: Any) -> Any:
        if self.postgres:
            return later - earlier
        return cast(func.julianday(later) - func.julianday(earlier), Integer)


def _fill_tz_hours(
    conn: Connection, first: date, last: date, zones: list[str], late: AfterHours
) -> None:
    conn.execute(text(_TZ_DDL))
    conn.execute(delete(_tz_hours))
    rows = []
    day = first
    while day <= last:
        start = datetime.combine(day, datetime.min.time(), UTC)
        for zone in zones:
            for hour in range(24):
                moment = start + timedelta(hours=hour)
                split, before, after = late.hour_split(moment, zone)
                rows.append(
                    {
                        "time_zone": zone,
                        "hour_key": moment.strftime("%Y-%m-%d %H"),
                        "split": split,
                        "late_before": int(before),
                        "late_after": int(after),
                    }
                )
        day += timedelta(days=1)
    if rows:
        conn.execute(insert(_tz_hours), rows)


# Bound per run: the span's first and last day, and its bounds as instants.
_FIRST = bindparam("span_first", type_=Date())
_LAST = bindparam("span_last", type_=Date())
_START = bindparam("span_start", type_=UTCDateTime())
_END = bindparam("span_end", type_=UTCDateTime())


def _statements(postgres: bool, vocab: Vocabulary) -> list[Any]:
    """The statements that build the days from ``_FIRST`` to ``_LAST``, in order. Built once
    per dialect and vocabulary: composing them costs more than running them on a day."""
    d = _Dialect(postgres)
    e = UsageEvent
    in_span = and_(e.occurred_at >= _START, e.occurred_at < _END)
    pd, td, t = PersonDay, TieDay, Thread
    out: list[Any] = [
        delete(PersonDay).where(pd.day.between(_FIRST, _LAST)),
        delete(TieDay).where(td.day.between(_FIRST, _LAST)),
        delete(Thread).where(t.start_day.between(_FIRST, _LAST)),
    ]
    actor = User.__table__.alias("actor")
    human = and_(actor.c.id == e.actor_id, actor.c.is_bot.is_(False))
    not_self = or_(e.owner_id.is_(None), e.owner_id != e.actor_id)
    interaction = and_(e.kind.in_(sorted(vocab.interactions)), not_self)
    contribution = and_(e.kind.in_(sorted(vocab.contributions)), not_self)
    hours = _tz_hours
    is_late = case((d.minute < hours.c.split, hours.c.late_before), else_=hours.c.late_after)
    slice_ = func.coalesce(e.process, NO_PROCESS)

    def one_if(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    # A person's day per process slice, then the "*" slice from those rows.
    columns = ["process", "day", "person_id", "events", "interactions", "contributions",
               "after_hours"]  # fmt: skip
    out.append(
        insert(PersonDay).from_select(
            columns,
            select(
                slice_,
                d.day,
                e.actor_id,
                func.count(),
                one_if(interaction),
                one_if(contribution),
                one_if(and_(interaction, is_late == 1)),
            )
            .select_from(e)
            .join(actor, human)
            .outerjoin(
                hours,
                and_(hours.c.time_zone == actor.c.time_zone, hours.c.hour_key == d.hour_key),
            )
            .where(in_span)
            .group_by(slice_, d.day, e.actor_id),
        )
    )
    out.append(
        insert(PersonDay).from_select(
            columns,
            select(
                literal(ALL),
                pd.day,
                pd.person_id,
                func.sum(pd.events),
                func.sum(pd.interactions),
                func.sum(pd.contributions),
                func.sum(pd.after_hours),
            )
            .where(pd.day.between(_FIRST, _LAST), pd.process != ALL)
            .group_by(pd.day, pd.person_id),
        )
    )
    # Days since each person's previous active day in the slice.
    earlier = PersonDay.__table__.alias("earlier")
    previous = (
        select(func.max(earlier.c.day))
        .where(
            earlier.c.person_id == pd.person_id,
            earlier.c.process == pd.process,
            earlier.c.day < pd.day,
        )
        .scalar_subquery()
    )
    out.append(
        update(PersonDay)
        .where(pd.day.between(_FIRST, _LAST))
        .values(gap_days=d.days_between(pd.day, previous))
    )
    dialect = "postgresql" if postgres else "sqlite"
    out.append(
        insert_ignoring_conflicts(FirstContribution, dialect).from_select(
            ["process", "person_id", "day"],
            select(pd.process, pd.person_id, func.min(pd.day))
            .where(pd.day.between(_FIRST, _LAST), pd.contributions > 0)
            .group_by(pd.process, pd.person_id),
        )
    )

    # Ties u -> v, per process slice, then "*".
    owner = User.__table__.alias("owner")
    tie_columns = ["process", "day", "source_id", "target_id", "weight"]
    out.append(
        insert(TieDay).from_select(
            tie_columns,
            select(slice_, d.day, e.actor_id, e.owner_id, func.count())
            .select_from(e)
            .join(actor, human)
            .join(owner, and_(owner.c.id == e.owner_id, owner.c.is_bot.is_(False)))
            .where(in_span, e.kind.in_(sorted(vocab.interactions)), e.owner_id != e.actor_id)
            .group_by(slice_, d.day, e.actor_id, e.owner_id),
        )
    )
    out.append(
        insert(TieDay).from_select(
            tie_columns,
            select(literal(ALL), td.day, td.source_id, td.target_id, func.sum(td.weight))
            .where(td.day.between(_FIRST, _LAST), td.process != ALL)
            .group_by(td.day, td.source_id, td.target_id),
        )
    )

    # Threads started in the span, then the first responses of the span to any thread.
    root = func.coalesce(e.thread_root_id, e.object_id)
    question = case((e.payload["is_question"].as_boolean(), True), else_=False)
    out.append(
        insert_ignoring_conflicts(Thread, dialect).from_select(
            ["root_id", "process", "author_id", "started_at", "start_day", "is_question"],
            select(root, slice_, e.actor_id, e.occurred_at, d.day, question)
            .select_from(e)
            .join(actor, human)
            .where(in_span, e.kind.in_(sorted(vocab.thread_starts)), not_self, root.is_not(None)),
        )
    )
    responses = (
        select(
            e.thread_root_id.label("root"),
            func.min(e.occurred_at).label("first"),
            func.min(case((e.kind.in_(sorted(vocab.comments)), e.occurred_at))).label("comment"),
        )
        .select_from(e)
        .join(actor, human)
        .join(t, and_(t.root_id == e.thread_root_id, t.author_id != e.actor_id))
        .where(in_span, e.kind.in_(sorted(vocab.comments | vocab.reactions)), not_self)
        .group_by(e.thread_root_id)
        .subquery("responses")
    )
    out.append(
        update(Thread)
        .where(Thread.root_id == responses.c.root)
        .values(
            first_response_at=case(
                (
                    or_(t.first_response_at.is_(None), t.first_response_at > responses.c.first),
                    responses.c.first,
                ),
                else_=t.first_response_at,
            ),
            first_comment_at=case(
                (
                    and_(
                        responses.c.comment.is_not(None),
                        or_(
                            t.first_comment_at.is_(None),
                            t.first_comment_at > responses.c.comment,
                        ),
                    ),
                    responses.c.comment,
                ),
                else_=t.first_comment_at,
            ),
        )
    )

    # Reports raised and resolved.
    if vocab.reports_raised:
        out.append(
            insert_ignoring_conflicts(Report, dialect).from_select(
                ["report_id", "process", "raised_at"],
                select(e.object_id, slice_, func.min(e.occurred_at))
                .select_from(e)
                .join(actor, human)
                .where(in_span, e.kind.in_(sorted(vocab.reports_raised)), e.object_id.is_not(None))
                .group_by(e.object_id, slice_),
            )
        )
    if vocab.reports_resolved:
        resolved = (
            select(e.object_id.label("report"), func.min(e.occurred_at).label("at"))
            .where(in_span, e.kind.in_(sorted(vocab.reports_resolved)), e.object_id.is_not(None))
            .group_by(e.object_id)
            .subquery("resolved")
        )
        out.append(
            update(Report)
            .where(Report.report_id == resolved.c.report, Report.resolved_at.is_(None))
            .values(resolved_at=resolved.c.at)
        )
    out.append(select(func.count()).select_from(e).where(in_span))
    return out


_built: dict[tuple[bool, Vocabulary], list[Any]] = {}


def roll_days(
    conn: Connection, first: date, last: date, vocab: Vocabulary, zones: list[str],
    late: AfterHours,
) -> int:  # fmt: skip
    """Build the days from ``first`` to ``last`` (replacing any rows they have) within
    ``conn``'s transaction; the number of events they hold."""
    postgres = conn.dialect.name == "postgresql"
    statements = _built.get((postgres, vocab))
    if statements is None:
        statements = _built[(postgres, vocab)] = _statements(postgres, vocab)
    start, _ = day_bounds(first, UTC)
    _, end = day_bounds(last, UTC)
    params = {"span_first": first, "span_last": last, "span_start": start, "span_end": end}
    _fill_tz_hours(conn, first, last, zones, late)
    counted = 0
    for statement in statements:
        result = conn.execute(statement, params)
        if statement is statements[-1]:
            counted = int(result.scalar() or 0)
    return counted


def _zones(conn: Connection) -> list[str]:
    return sorted(z for z in conn.scalars(select(distinct(User.time_zone))) if z)


def _set_fill_state(conn: Connection, day: date | None) -> None:
    conn.execute(
        update(FillState)
        .where(FillState.name == FILL_STATE)
        .values(done_through=day, updated_at=now())
    )


def run_rollups(
    engine: Engine,
    through: date | None = None,
    *,
    after_day: Callable[[date], None] | None = None,
    span_days: int = 1,
) -> RollupRun:
    """Build every day not yet built, up to ``through`` (default: yesterday, the last complete
    UTC day; never today or later), ``span_days`` days per transaction (more is faster when
    catching up; a span is built, or redone, as a whole). ``after_day`` is called with the last
    day of each span once it is committed."""
    yesterday = now().astimezone(UTC).date() - timedelta(days=1)
    last = min(through or yesterday, yesterday)
    with engine.connect() as conn:
        done = done_through(conn)
        start = done + timedelta(days=1) if done is not None else _first_day(conn)
        zones = _zones(conn)
    vocab = vocabulary()
    late = AfterHours()
    days = events = 0
    if start is None:
        return RollupRun(0, 0, done)
    with write_intent(), engine.begin() as conn:
        conn.execute(
            insert_ignoring_conflicts(FillState, conn.dialect.name),
            [{"name": FILL_STATE, "done_through": None, "updated_at": now()}],
        )
    day = start
    while day <= last:
        with write_intent(), engine.begin() as conn:
            # Another run may have built these days meanwhile (the dashboard starts runs too):
            # the fill state row, locked, says; a day is never built twice over later ones.
            built = conn.scalar(
                select(FillState.done_through).where(FillState.name == FILL_STATE).with_for_update()
            )
            if built is not None and built >= day:
                day = built + timedelta(days=1)
                continue
            span_last = min(day + timedelta(days=span_days - 1), last)
            events += roll_days(conn, day, span_last, vocab, zones, late)
            conn.execute(delete(Figures))  # computed from rollups that have changed
            _set_fill_state(conn, span_last)
        days += (span_last - day).days + 1
        if after_day is not None:
            after_day(span_last)
        day = span_last + timedelta(days=1)
    return RollupRun(days, events, last if days else done)


def rebuild_rollups(engine: Engine, through: date | None = None, span_days: int = 7) -> RollupRun:
    """Every rollup from scratch: the tables are emptied, then built a week per
    transaction. What retention kept of the days whose events it deleted (first-contribution
    markers, reports raised then) is older than the event log and stays: the log cannot
    rebuild it."""
    with write_intent(), engine.begin() as conn:
        first = _first_day(conn)
        for table in ROLLUP_TABLES:
            if first is not None and table is FirstContribution:
                conn.execute(delete(table).where(FirstContribution.day >= first))
            elif first is not None and table is Report:
                start, _ = day_bounds(first, UTC)
                conn.execute(delete(table).where(Report.raised_at >= start))
            else:
                conn.execute(delete(table))
        conn.execute(delete(FillState).where(FillState.name == FILL_STATE))
    return run_rollups(engine, through, span_days=span_days)


__all__ = ["ALL", "RollupRun", "rebuild_rollups", "run_rollups", "vocabulary"]
