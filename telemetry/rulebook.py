"""The SMG rulebook: the gates of every level as versioned data (SMG_MODEL.md, "Default gates").

The default is ``telemetry/rulebooks/smg-thresholds-1.json``; an installation may name its own
file in the same format. A file is validated strictly: an unknown field, a level outside 2..5,
an unknown metric or comparison, or a threshold of the wrong kind is a ``RulebookError`` that
names the file and the place in it.

The format::

    {"version": "smg-thresholds-1", "k": 5, "gates": [
        {"key": "response_rate", "name": "R1 response rate", "metric": "R1", "window_days": 90,
         "processes": ["service"],                       # optional; absent: every process
         "levels": {"3": {"kind": "measured", "comparison": "at_least", "threshold": 0.40},
                    "4": {...}}}]}

A level's requirement may name its own ``metric`` and ``window_days`` (the escalation gate is
declared at level 3 and measured on R4 from level 4). ``kind`` is ``measured`` or ``declared``;
``comparison`` is ``at_least`` or ``at_most`` (with a numeric ``threshold``), ``required`` (a
measured fact that must hold) or ``declared`` (approved, current evidence; the metric is the
evidence key, e.g. ``escalation_procedure``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeGuard

from telemetry.indicators import EXTRA_METRICS, INDICATORS

DEFAULT_VERSION = "smg-thresholds-1"
LEVELS = (2, 3, 4, 5)
KINDS = ("measured", "declared")
COMPARISONS = ("at_least", "at_most", "required", "declared")
# The business processes the model scores.
PROCESSES = ("marketing", "recruitment", "innovation", "production", "service")

# Metrics the host measures from the usage events (``measure(metric, window_days)``).
INDICATOR_METRICS = frozenset(INDICATORS) | frozenset(EXTRA_METRICS)
# Metrics read from the governance facts, with the comparisons that make sense for each.
FACT_METRICS: dict[str, tuple[str, ...]] = {
    "owner_and_space": ("required",),
    "platform_chosen": ("required",),
    "days_since_reading": ("at_most",),
    "policy_acknowledged": ("at_least", "at_most"),
    "training_completed": ("at_least", "at_most"),
    "policy_revisions_citing_readings": ("at_least", "at_most"),
    "roadmap_due_done": ("at_least",),
}
# Metrics whose value is a share (numerator / denominator): thresholds lie in [0, 1].
# X1's gate compares the share s = (EI+1)/2, not the E-I index itself.
SHARE_METRICS = frozenset(
    {"A1", "A2", "A3", "P3", "R1", "N1", "X1", "X4", "T1", "T2", "H1", "Q1"}
    | {"policy_acknowledged", "training_completed", "roadmap_due_done"}
)
EVIDENCE_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
GATE_KEY = EVIDENCE_KEY

_TOP_FIELDS = {"version", "k", "gates"}
_GATE_FIELDS = {"key", "name", "metric", "window_days", "processes", "levels"}
_REQUIREMENT_FIELDS = {"kind", "comparison", "threshold", "metric", "window_days"}


class RulebookError(ValueError):
    """A rulebook file that cannot be used; the message names the file and the place."""


@dataclass(frozen=True)
class Requirement:
    """What one gate demands at one level, with the metric and window resolved."""

    gate: str
    level: int
    kind: str  # measured | declared
    comparison: str  # at_least | at_most | required | declared
    threshold: float | None
    metric: str
    window_days: int | None  # for indicator metrics only

    @property
    def source(self) -> str:
        """Where the requirement's figure comes from: "events" (measured from the usage
        events), "platform" (a fact the platform records) or "evidence" (declared)."""
        if self.kind == "declared":
            return "evidence"
        return "events" if self.metric in INDICATOR_METRICS else "platform"


@dataclass(frozen=True)
class Gate:
    key: str
    name: str
    metric: str
    window_days: int | None
    processes: tuple[str, ...] | None  # None: every process
    requirements: tuple[Requirement, ...]  # by ascending level
    # The level entries as written (for ``Rulebook.as_dict``).
    raw_levels: tuple[tuple[int, tuple[tuple[str, Any], ...]], ...] = ()

    def applies_to(self, process: str) -> bool:
        return self.processes is None or process in self.processes

    def requirement(self, level: int) -> Requirement | None:
        for r in self.requirements:
            if r.level == level:
                return r
        return None


@dataclass(frozen=True)
class Rulebook:
    version: str
    k: int
    gates: tuple[Gate, ...]

    def gate(self, key: str) -> Gate:
        for g in self.gates:
            if g.key == key:
                return g
        raise KeyError(key)

    def requirements(self, process: str, level: int) -> tuple[Requirement, ...]:
        """The requirements of ``level`` (2..5) that apply to ``process``, in rulebook order."""
        out = []
        for g in self.gates:
            if g.applies_to(process):
                r = g.requirement(level)
                if r is not None:
                    out.append(r)
        return tuple(out)

    def evidence_keys(self) -> tuple[str, ...]:
        """The evidence keys that declared requirements read, in rulebook order."""
        keys: list[str] = []
        for g in self.gates:
            for r in g.requirements:
                if r.kind == "declared" and r.metric not in keys:
                    keys.append(r.metric)
        return tuple(keys)

    def as_dict(self) -> dict[str, Any]:
        """The rulebook in its file format (``parse_rulebook(book.as_dict())`` gives it back)."""
        gates = []
        for g in self.gates:
            entry: dict[str, Any] = {"key": g.key, "name": g.name, "metric": g.metric}
            if g.window_days is not None:
                entry["window_days"] = g.window_days
            if g.processes is not None:
                entry["processes"] = list(g.processes)
            entry["levels"] = {str(level): dict(fields) for level, fields in g.raw_levels}
            gates.append(entry)
        return {"version": self.version, "k": self.k, "gates": gates}


def default_rulebook_text() -> str:
    return (
        resources.files("telemetry")
        .joinpath("rulebooks", f"{DEFAULT_VERSION}.json")
        .read_text(encoding="utf-8")
    )


def load_rulebook(path: str | Path | None = None) -> Rulebook:
    """The default rulebook (``path`` None or empty), or an installation's file."""
    if path is None or str(path) == "":
        return parse_rulebook(
            _json(default_rulebook_text(), f"{DEFAULT_VERSION}.json"), f"{DEFAULT_VERSION}.json"
        )
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulebookError(f"{where}: cannot read the rulebook ({exc.strerror or exc})") from None
    return parse_rulebook(_json(text, where), where)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulebookError(
            f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def parse_rulebook(data: Any, where: str = "rulebook") -> Rulebook:
    """A rulebook from its decoded JSON, validated strictly."""
    if not isinstance(data, dict):
        raise RulebookError(f"{where}: the rulebook must be a JSON object")
    _fields(data, _TOP_FIELDS, {"version", "k", "gates"}, where)
    version = data["version"]
    if not isinstance(version, str) or not version.strip():
        raise RulebookError(f"{where}: version must be a non-empty string")
    k = data["k"]
    if not _is_int(k) or k < 1:
        raise RulebookError(f"{where}: k must be a positive integer, not {k!r}")
    raw_gates = data["gates"]
    if not isinstance(raw_gates, list) or not raw_gates:
        raise RulebookError(f"{where}: gates must be a non-empty list")
    gates: list[Gate] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_gates):
        gate = _gate(raw, f"{where}: gates[{index}]")
        if gate.key in seen:
            raise RulebookError(f"{where}: gates[{index}]: duplicate gate key {gate.key!r}")
        seen.add(gate.key)
        gates.append(gate)
    return Rulebook(version=version, k=int(k), gates=tuple(gates))


def _gate(raw: Any, place: str) -> Gate:
    if not isinstance(raw, dict):
        raise RulebookError(f"{place}: a gate must be a JSON object")
    key = raw.get("key")
    if isinstance(key, str) and GATE_KEY.match(key):
        place = f"{place} ({key!r})"
    _fields(raw, _GATE_FIELDS, {"key", "name", "metric", "levels"}, place)
    if not isinstance(key, str) or not GATE_KEY.match(key):
        raise RulebookError(f"{place}: key must match {GATE_KEY.pattern}, not {key!r}")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise RulebookError(f"{place}: name must be a non-empty string")
    metric = raw["metric"]
    if not isinstance(metric, str) or not metric:
        raise RulebookError(f"{place}: metric must be a non-empty string")
    window = _window(raw.get("window_days"), f"{place}.window_days")
    processes: tuple[str, ...] | None = None
    if "processes" in raw:
        listed = raw["processes"]
        if not isinstance(listed, list) or not listed:
            raise RulebookError(f"{place}.processes: must be a non-empty list of process keys")
        for p in listed:
            if p not in PROCESSES:
                raise RulebookError(
                    f"{place}.processes: unknown process {p!r} (one of {', '.join(PROCESSES)})"
                )
        if len(set(listed)) != len(listed):
            raise RulebookError(f"{place}.processes: a process is listed twice")
        processes = tuple(listed)
    levels = raw["levels"]
    if not isinstance(levels, dict) or not levels:
        raise RulebookError(f"{place}.levels: must be a non-empty object keyed by level 2..5")
    requirements: list[Requirement] = []
    raw_levels: list[tuple[int, tuple[tuple[str, Any], ...]]] = []
    for level_key, entry in levels.items():
        if level_key not in {str(level) for level in LEVELS}:
            raise RulebookError(
                f'{place}.levels: level {level_key!r} is not one of "2", "3", "4", "5"'
            )
        level = int(level_key)
        requirements.append(
            _requirement(entry, key, level, metric, window, f"{place}.levels[{level_key!r}]")
        )
        raw_levels.append((level, tuple(entry.items())))
    requirements.sort(key=lambda r: r.level)
    raw_levels.sort(key=lambda item: item[0])
    if window is not None and not any(r.metric in INDICATOR_METRICS for r in requirements):
        raise RulebookError(
            f"{place}.window_days: only indicator metrics have a window, and no level of this "
            "gate uses one"
        )
    return Gate(key, name, metric, window, processes, tuple(requirements), tuple(raw_levels))


def _requirement(
    raw: Any, gate: str, level: int, gate_metric: str, gate_window: int | None, place: str
) -> Requirement:
    if not isinstance(raw, dict):
        raise RulebookError(f"{place}: a requirement must be a JSON object")
    _fields(raw, _REQUIREMENT_FIELDS, {"kind", "comparison"}, place)
    kind = raw["kind"]
    if kind not in KINDS:
        raise RulebookError(f"{place}.kind: unknown kind {kind!r} (measured or declared)")
    comparison = raw["comparison"]
    if comparison not in COMPARISONS:
        raise RulebookError(
            f"{place}.comparison: unknown comparison {comparison!r} "
            f"(one of {', '.join(COMPARISONS)})"
        )
    if (kind == "declared") != (comparison == "declared"):
        raise RulebookError(
            f'{place}: a declared requirement has comparison "declared", and only it '
            f"(kind {kind!r}, comparison {comparison!r})"
        )
    metric = raw.get("metric", gate_metric)
    # Name the field the metric came from: the level's own, or the gate's.
    metric_place = (
        f"{place}.metric" if "metric" in raw else f"{place.rsplit('.levels', 1)[0]}.metric"
    )
    if not isinstance(metric, str) or not metric:
        raise RulebookError(f"{metric_place}: must be a non-empty string")
    if kind == "declared":
        if not EVIDENCE_KEY.match(metric):
            raise RulebookError(
                f"{metric_place}: a declared requirement names an evidence key matching "
                f"{EVIDENCE_KEY.pattern}, not {metric!r}"
            )
    elif metric in FACT_METRICS:
        if comparison not in FACT_METRICS[metric]:
            raise RulebookError(
                f"{place}.comparison: {metric} is compared with "
                f"{' or '.join(FACT_METRICS[metric])}, not {comparison!r}"
            )
    elif metric in INDICATOR_METRICS:
        if comparison not in ("at_least", "at_most"):
            raise RulebookError(
                f"{place}.comparison: indicator {metric} is compared with at_least or at_most, "
                f"not {comparison!r}"
            )
    else:
        known = sorted(INDICATOR_METRICS) + sorted(FACT_METRICS)
        raise RulebookError(
            f"{metric_place}: unknown metric {metric!r} (one of {', '.join(known)})"
        )
    raw_threshold = raw.get("threshold")
    threshold: float | None = None
    if comparison in ("at_least", "at_most"):
        if not _is_number(raw_threshold):
            raise RulebookError(
                f"{place}.threshold: {comparison} needs a numeric threshold, not {raw_threshold!r}"
            )
        number: float = raw_threshold
        if number < 0:
            raise RulebookError(f"{place}.threshold: must not be negative, not {number!r}")
        if metric in SHARE_METRICS and number > 1:
            raise RulebookError(
                f"{place}.threshold: {metric} is a share, so its threshold lies in [0, 1] "
                f"(write 0.58 for 58%), not {number!r}"
            )
        threshold = number
    elif raw_threshold is not None:
        raise RulebookError(f"{place}.threshold: a {comparison} requirement has no threshold")
    if "window_days" in raw:
        window = _window(raw["window_days"], f"{place}.window_days")
        if window is not None and metric not in INDICATOR_METRICS:
            raise RulebookError(
                f"{place}.window_days: only indicator metrics have a window, {metric!r} has none"
            )
    else:
        window = gate_window
    if kind == "measured" and metric in INDICATOR_METRICS:
        if window is None:
            raise RulebookError(f"{place}: indicator {metric} needs window_days")
    else:
        window = None
    return Requirement(gate, level, kind, comparison, threshold, metric, window)


def _fields(raw: dict[str, Any], allowed: set[str], required: set[str], place: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise RulebookError(
            f"{place}: unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    absent = sorted(required - set(raw))
    if absent:
        raise RulebookError(f"{place}: missing field {', '.join(repr(a) for a in absent)}")


def _window(value: Any, place: str) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise RulebookError(f"{place}: must be a positive number of days, not {value!r}")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


__all__ = [
    "COMPARISONS",
    "FACT_METRICS",
    "INDICATOR_METRICS",
    "KINDS",
    "LEVELS",
    "PROCESSES",
    "Gate",
    "Requirement",
    "Rulebook",
    "RulebookError",
    "load_rulebook",
    "parse_rulebook",
]
