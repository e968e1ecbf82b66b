"""The indicators of SMG_MODEL.md as pure functions of what the rollups hold for a scope.

Every function returns an ``IndicatorValue`` with its numerator and denominator (the figures a
reader can check) and ``people``, the number of people the figure is about (what the privacy
rules compare with k). Nothing here hides a value: ``telemetry.privacy`` does that.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from telemetry.values import IndicatorValue

# The registry: stable keys, in the dashboard's order, with what each one means.
INDICATORS: dict[str, str] = {
    "A1": "interactive share: people with at least one interaction / eligible people",
    "A2": "visitor share: people with any event, visits included / eligible people",
    "A3": "contributor share: people with at least one post or comment / eligible people",
    "A4": "stickiness: mean over the days of the window of active that day / active in the "
    "28 days to that day",
    "P2": "Gini coefficient of contributions over all eligible people, zeros included",
    "P3": "top-10% share: contributions by the top 10% of contributors / all contributions",
    "R1": "response rate: threads started in the window answered by someone else within 7 days "
    "/ threads started in the window",
    "R2": "time to first response: median hours from a thread's start to the first comment by "
    "someone else (detail: p90_hours)",
    "R4": "escalation latency: median hours from a report being raised to its resolution",
    "N1": "edge reciprocity: ties whose reverse tie exists / distinct ties",
    "X1": "E-I index: (ties across departments - ties inside) / all ties (detail: s = (EI+1)/2)",
    "X2": "E-I against random mixing: s / s_exp, s_exp = 1 - sum n_g(n_g-1) / (N(N-1))",
    "X4": "departments bridged: departments with a tie into the scope / all departments",
    "T1": "cohort retention: people whose first contribution fell in month m who contribute in "
    "month m+3 / people whose first contribution fell in month m (six latest cohorts)",
    "T2": "community health: people active in the last 30 days / active in the last 365 days",
    "H1": "after-hours share: interactions outside 07:00-19:00 local time or at weekends / all "
    "interactions",
}
# Figures the assessment uses besides the indicators (not shown as indicators).
EXTRA_METRICS: dict[str, str] = {
    "EXT": "external participants active in the scope in the window (a count)",
    "Q1": "answered share of question threads: question threads answered by someone else "
    "within 7 days / question threads started in the window",
}
NETWORK = frozenset({"N1", "X1", "X2", "X4"})
RESPONSE_DAYS = 7
STICKY_DAYS = 28


def _ratio(
    key: str, numerator: float, denominator: float, window: int, people: int, **detail: float
) -> IndicatorValue:
    value = numerator / denominator if denominator else None
    return IndicatorValue(key, value, numerator, denominator, window, people, detail=detail)


@dataclass(frozen=True)
class PersonTotals:
    """One eligible person's sums over the window (people without a row have zeros)."""

    events: int
    interactions: int
    contributions: int
    after_hours: int


def activity(
    population: int, totals: Mapping[int, PersonTotals], window: int
) -> dict[str, IndicatorValue]:
    """A1, A2, A3, P2, P3 and H1 from the eligible people's sums over the window."""
    rows = list(totals.values())
    interactive = sum(1 for t in rows if t.interactions)
    active = sum(1 for t in rows if t.events)
    contributions = sorted(t.contributions for t in rows if t.contributions)
    contributors = len(contributions)
    total = sum(contributions)
    out = {
        "A1": _ratio("A1", interactive, population, window, population),
        "A2": _ratio("A2", active, population, window, population),
        "A3": _ratio("A3", contributors, population, window, population),
    }
    # P2 over all n eligible people, zeros first: G = 2 sum(i x_i) / (n sum x) - (n+1)/n.
    n = population
    if n and total:
        weighted = sum((n - contributors + i) * x for i, x in enumerate(contributions, start=1))
        gini = 2 * weighted / (n * total) - (n + 1) / n
        out["P2"] = IndicatorValue("P2", gini, total, n, window, population)
    else:
        out["P2"] = IndicatorValue("P2", None, total, n, window, population)
    top = math.ceil(contributors * 0.10)
    top_sum = sum(contributions[contributors - top :]) if top else 0
    out["P3"] = _ratio("P3", top_sum, total, window, contributors)
    interactions = sum(t.interactions for t in rows)
    late = sum(t.after_hours for t in rows)
    out["H1"] = _ratio("H1", late, interactions, window, interactive)
    return out


def stickiness(
    start: date, end: date, rows: Iterable[tuple[date, int | None, int]], people: int
) -> IndicatorValue:
    """A4 from (day, days since the person's previous active day or None, how many people)
    rows of active person-days from 27 days before ``start`` to ``end``.

    A person active on day a whose previous active day was g days earlier is among the active
    of the 28 days to d for d from a + max(0, 28 - g) to a + 27."""
    span = (end - start).days + 1
    limit = span + STICKY_DAYS - 1  # indices of ``change``: origin .. end
    active = [0] * span
    change = [0] * (limit + 1)
    origin = start - timedelta(days=STICKY_DAYS - 1)  # index 0 of ``change``
    for day, gap, count in rows:
        offset = (day - start).days
        if 0 <= offset < span:
            active[offset] += count
        at = (day - origin).days
        first = at + (0 if gap is None or gap >= STICKY_DAYS else STICKY_DAYS - gap)
        last = at + STICKY_DAYS - 1
        if first < limit and last >= 0:
            change[max(first, 0)] += count
            change[min(last + 1, limit)] -= count
    ratios = []
    running = 0
    in28: list[int] = []
    for index in range(limit):
        running += change[index]
        if index >= STICKY_DAYS - 1:
            in28.append(running)
    for today, window_active in zip(active, in28, strict=True):
        if window_active:
            ratios.append(today / window_active)
    value = sum(ratios) / len(ratios) if ratios else None
    return IndicatorValue("A4", value, sum(active), sum(in28), span, people)


def responses(
    threads: Sequence[tuple[int, float | None, float | None, bool]], window: int
) -> dict[str, IndicatorValue]:
    """R1, R2 and Q1 from the threads started in the window, each (author, hours to the first
    response by someone else, hours to the first comment by someone else, is a question)."""
    authors = len({t[0] for t in threads})
    answered = sum(1 for t in threads if t[1] is not None and t[1] <= RESPONSE_DAYS * 24)
    out = {"R1": _ratio("R1", answered, len(threads), window, authors)}
    waits = sorted(t[2] for t in threads if t[2] is not None)
    commented_authors = len({t[0] for t in threads if t[2] is not None})
    if waits:
        p90 = waits[math.ceil(0.9 * len(waits)) - 1]
        out["R2"] = IndicatorValue(
            "R2",
            statistics.median(waits),
            None,
            len(waits),
            window,
            commented_authors,
            detail={"p90_hours": p90},
        )
    else:
        out["R2"] = IndicatorValue("R2", None, None, 0, window, commented_authors)
    questions = [t for t in threads if t[3]]
    q_answered = sum(1 for t in questions if t[1] is not None and t[1] <= RESPONSE_DAYS * 24)
    out["Q1"] = _ratio("Q1", q_answered, len(questions), window, len({t[0] for t in questions}))
    return out


def escalation(latencies_hours: Sequence[float], window: int) -> IndicatorValue:
    """R4: median hours from raised to resolved over the reports resolved in the window. A
    report is not about a group of people, so k does not apply (``people`` is set high)."""
    if not latencies_hours:
        return IndicatorValue("R4", None, None, 0, window, people=1 << 30)
    return IndicatorValue(
        "R4",
        statistics.median(latencies_hours),
        None,
        len(latencies_hours),
        window,
        people=1 << 30,
    )


def network(
    ties: Iterable[tuple[int, int]],
    population: Mapping[int, int | None],
    department_of: Mapping[int, int | None],
    departments: int,
    window: int,
) -> dict[str, IndicatorValue]:
    """N1, X1, X2 and X4 from the distinct ties (u, v) of the scope's events in the window.

    ``population`` maps the eligible people of the scope to their department; N1 and X1 count
    the ties whose source is one of them; X4 counts the departments (of anyone) with a tie into
    them, over ``departments``, all departments with eligible people."""
    distinct = set(ties)
    own = {(u, v) for u, v in distinct if u in population}
    people = len({u for u, _ in own} | {v for _, v in own})
    reciprocated = sum(1 for u, v in own if (v, u) in distinct)
    out = {"N1": _ratio("N1", reciprocated, len(own), window, people)}
    cross = sum(1 for u, v in own if department_of.get(u) != department_of.get(v))
    inside = len(own) - cross
    if own:
        ei = (cross - inside) / len(own)
        s = (ei + 1) / 2
        out["X1"] = IndicatorValue(
            "X1", ei, cross - inside, len(own), window, people, detail={"s": s}
        )
        sizes: dict[int | None, int] = {}
        for dept in population.values():
            sizes[dept] = sizes.get(dept, 0) + 1
        n = len(population)
        same = sum(k * (k - 1) for k in sizes.values())
        s_exp = 1 - same / (n * (n - 1)) if n > 1 else 0.0
        x2 = s / s_exp if s_exp else None
        out["X2"] = IndicatorValue("X2", x2, s, s_exp, window, people)
    else:
        out["X1"] = IndicatorValue("X1", None, 0, 0, window, people)
        out["X2"] = IndicatorValue("X2", None, None, None, window, people)
    bridging = {department_of.get(u) for u, v in distinct if v in population and u != v}
    bridging.discard(None)
    sources = len({u for u, v in distinct if v in population})
    out["X4"] = _ratio("X4", len(bridging), departments, window, sources)
    return out


def retention(
    cohorts: Mapping[date, set[int]], retained: Mapping[date, set[int]], window: int
) -> IndicatorValue:
    """T1 over the given cohorts (first day of the cohort month -> its people) and, for each,
    who of them contributed in the third month after."""
    size = sum(len(c) for c in cohorts.values())
    kept = sum(len(retained.get(m, set()) & c) for m, c in cohorts.items())
    return _ratio("T1", kept, size, window, size, cohorts=len(cohorts))


def health(monthly: int, yearly: int, window: int) -> IndicatorValue:
    return _ratio("T2", monthly, yearly, window, yearly)


def externals(count: int, window: int) -> IndicatorValue:
    return IndicatorValue("EXT", float(count), count, None, window, people=count)
