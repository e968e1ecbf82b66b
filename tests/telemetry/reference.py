"""The indicators of SMG_MODEL.md computed the plainest way, straight from raw usage events and
people: no rollups, no shared code with ``telemetry``. Tests hold the product to these."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

INTERACTION = {
    "social:post:publish",
    "social:comment:create",
    "social:reaction:add",
    "social:mention:create",
}
CONTRIBUTION = {"social:post:publish", "social:comment:create"}


@dataclass(frozen=True)
class P:
    id: int
    department: int | None
    bot: bool = False
    external: bool = False
    tz: str = "UTC"


@dataclass(frozen=True)
class Ev:
    at: datetime
    kind: str
    actor: int | None
    owner: int | None = None
    process: str | None = None
    root: int | None = None
    obj: int | None = None
    question: bool = False


def _month(day: date, plus: int = 0) -> tuple[int, int]:
    i = day.year * 12 + day.month - 1 + plus
    return i // 12, i % 12 + 1


def reference(
    people: list[P],
    events: list[Ev],
    at: date,
    window: int,
    scope: str = "org",
    department_tree: dict[int, int | None] | None = None,
) -> dict[str, Any]:
    """{key: value or None, "_people": {key: how many people}} for ``scope`` (org,
    process:<key> with the whole organisation as audience, or department:<id>)."""
    by_id = {p.id: p for p in people}
    start = at - timedelta(days=window - 1)

    def in_dept(d: int | None, root: int) -> bool:
        while d is not None:
            if d == root:
                return True
            d = (department_tree or {}).get(d)
        return False

    eligible = {p.id for p in people if not p.bot and not p.external}
    if scope.startswith("department:"):
        root = int(scope.split(":")[1])
        eligible = {u for u in eligible if in_dept(by_id[u].department, root)}
    process = scope.split(":")[1] if scope.startswith("process:") else None

    def human(u: int | None) -> bool:
        return u is not None and u in by_id and not by_id[u].bot

    def counted(e: Ev) -> bool:
        return human(e.actor) and (process is None or e.process == process)

    def interaction(e: Ev) -> bool:
        return e.kind in INTERACTION and e.owner != e.actor

    def contribution(e: Ev) -> bool:
        return e.kind in CONTRIBUTION and e.owner != e.actor

    def day_of(e: Ev) -> date:
        return e.at.date()

    inw = [e for e in events if counted(e) and start <= day_of(e) <= at]
    n = len(eligible)
    out: dict[str, Any] = {}
    people_of: dict[str, int] = {}

    def ratio(key: str, num: float, den: float, ppl: int) -> None:
        out[key] = num / den if den else None
        people_of[key] = ppl

    interactive = {e.actor for e in inw if interaction(e) and e.actor in eligible}
    active = {e.actor for e in inw if e.actor in eligible}
    contrib: dict[int, int] = {}
    for e in inw:
        if contribution(e) and e.actor in eligible:
            contrib[e.actor] = contrib.get(e.actor, 0) + 1  # type: ignore[index]
    ratio("A1", len(interactive), n, n)
    ratio("A2", len(active), n, n)
    ratio("A3", len(contrib), n, n)
    xs = sorted([contrib.get(u, 0) for u in eligible])
    total = sum(xs)
    if n and total:
        out["P2"] = 2 * sum(i * x for i, x in enumerate(xs, 1)) / (n * total) - (n + 1) / n
    else:
        out["P2"] = None
    people_of["P2"] = n
    cs = sorted(contrib.values(), reverse=True)
    top = math.ceil(len(cs) / 10)
    ratio("P3", sum(cs[:top]), total, len(cs))
    # A4
    ratios = []
    d = start
    while d <= at:
        today = {e.actor for e in events if counted(e) and e.actor in eligible and day_of(e) == d}
        month = {
            e.actor
            for e in events
            if counted(e) and e.actor in eligible and d - timedelta(days=27) <= day_of(e) <= d
        }
        if month:
            ratios.append(len(today) / len(month))
        d += timedelta(days=1)
    out["A4"] = sum(ratios) / len(ratios) if ratios else None
    people_of["A4"] = n
    # threads
    starts = [
        e
        for e in inw
        if e.kind == "social:post:publish" and e.actor in eligible and e.owner != e.actor
    ]
    answered = q = q_answered = 0
    waits = []
    commented: set[int | None] = set()
    for s in starts:
        root = s.root if s.root is not None else s.obj
        replies = [
            e
            for e in events
            if human(e.actor)
            and e.actor != s.actor
            and e.root == root
            and e.kind in ("social:comment:create", "social:reaction:add")
            and e.owner != e.actor
        ]
        first = min((e.at for e in replies), default=None)
        ok = first is not None and first - s.at <= timedelta(days=7)
        answered += ok
        if s.question:
            q += 1
            q_answered += ok
        comments = [e.at for e in replies if e.kind == "social:comment:create"]
        if comments:
            waits.append((min(comments) - s.at).total_seconds() / 3600)
            commented.add(s.actor)
    authors = len({s.actor for s in starts})
    ratio("R1", answered, len(starts), authors)
    out["R2"] = statistics.median(waits) if waits else None
    people_of["R2"] = len(commented)
    # ties
    ties = {
        (e.actor, e.owner) for e in inw if interaction(e) and e.owner is not None and human(e.owner)
    }
    own = {(u, v) for u, v in ties if u in eligible}
    tie_people = len({u for u, _ in own} | {v for _, v in own})
    ratio("N1", sum(1 for u, v in own if (v, u) in ties), len(own), tie_people)
    dept = {p.id: p.department for p in people}
    cross = sum(1 for u, v in own if dept[u] != dept[v])
    if own:
        ei = (cross - (len(own) - cross)) / len(own)
        out["X1"] = ei
        s_ = (ei + 1) / 2
        sizes: dict[Any, int] = {}
        for u in eligible:
            sizes[dept[u]] = sizes.get(dept[u], 0) + 1
        s_exp = 1 - sum(k * (k - 1) for k in sizes.values()) / (n * (n - 1)) if n > 1 else 0
        out["X2"] = s_ / s_exp if s_exp else None
    else:
        out["X1"] = out["X2"] = None
    people_of["X1"] = people_of["X2"] = tie_people
    org_depts = {
        p.department for p in people if not p.bot and not p.external and p.department is not None
    }
    bridging = {dept[u] for u, v in ties if v in eligible and dept[u] is not None}
    ratio("X4", len(bridging), len(org_depts), len({u for u, v in ties if v in eligible}))
    # T1: six latest cohorts whose month m+3 has ended by the end of ``at``
    last = _month(at + timedelta(days=1), -4)
    cohort_months = {_month(date(*last, 1), -i) for i in range(6)}
    firsts: dict[int, date] = {}
    for e in sorted(events, key=lambda e: e.at):
        if counted(e) and contribution(e) and e.actor in eligible and e.actor not in firsts:
            firsts[e.actor] = day_of(e)  # type: ignore[index]
    size = kept = 0
    for u, first in firsts.items():
        m = _month(first)
        if m in cohort_months:
            size += 1
            target = _month(first, 3)
            kept += any(
                counted(e) and contribution(e) and e.actor == u and _month(day_of(e)) == target
                for e in events
            )
    ratio("T1", kept, size, size)

    # T2
    def active_since(days: int) -> set[int]:
        return {
            e.actor  # type: ignore[misc]
            for e in events
            if counted(e)
            and e.actor in eligible
            and at - timedelta(days=days - 1) <= day_of(e) <= at
        }

    yearly = active_since(365)
    ratio("T2", len(active_since(30)), len(yearly), len(yearly))

    # H1
    def late(e: Ev) -> bool:
        local = e.at.astimezone(ZoneInfo(by_id[e.actor].tz))  # type: ignore[index]
        return local.weekday() >= 5 or not 7 <= local.hour < 19

    mine = [e for e in inw if interaction(e) and e.actor in eligible]
    ratio("H1", sum(1 for e in mine if late(e)), len(mine), len(interactive))
    out["_people"] = people_of
    out["_population"] = n
    return out
