"""The rulebook: the default file encodes SMG_MODEL.md's table, overrides load, and a bad file
is refused with a message that names the place."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from telemetry.rulebook import (
    Requirement,
    Rulebook,
    RulebookError,
    load_rulebook,
    parse_rulebook,
)

BOOK = load_rulebook()


def levels(gate: str) -> dict[int, tuple[str, str, float | None, str]]:
    """level -> (kind, comparison, threshold, metric) of one gate."""
    return {
        r.level: (r.kind, r.comparison, r.threshold, r.metric) for r in BOOK.gate(gate).requirements
    }


def default_data() -> dict[str, Any]:
    return copy.deepcopy(BOOK.as_dict())


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "rulebook.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_default_is_versioned_with_k_5():
    assert isinstance(BOOK, Rulebook)
    assert BOOK.version == "smg-thresholds-1"
    assert BOOK.k == 5
    assert load_rulebook(None) == BOOK
    assert load_rulebook("") == BOOK


def test_every_gate_key_of_the_table_is_there_in_order():
    assert [g.key for g in BOOK.gates] == [
        "owner_and_space",
        "interactive_share",
        "response_rate",
        "top10_share",
        "reciprocity",
        "cross_department",
        "cohort_retention",
        "recent_reading",
        "policy_described",
        "policy_communicated",
        "policy_adjusted",
        "platforms_chosen",
        "training",
        "escalation",
        "netiquette",
        "ambition_and_roadmap",
        "external_participants",
        "improvement_loops",
        "answered_questions",
        "first_response_time",
    ]
    assert all(g.name for g in BOOK.gates)


M, D = "measured", "declared"


@pytest.mark.parametrize(
    ("gate", "expected"),
    [
        (
            "owner_and_space",
            {lv: (M, "required", None, "owner_and_space") for lv in (2, 3, 4, 5)},
        ),
        (
            "interactive_share",
            {
                2: (M, "at_least", 0.025, "A1"),
                3: (M, "at_least", 0.16, "A1"),
                4: (M, "at_least", 0.27, "A1"),
                5: (M, "at_least", 0.38, "A1"),
            },
        ),
        (
            "response_rate",
            {
                3: (M, "at_least", 0.40, "R1"),
                4: (M, "at_least", 0.58, "R1"),
                5: (M, "at_least", 0.70, "R1"),
            },
        ),
        (
            "top10_share",
            {
                3: (M, "at_most", 0.90, "P3"),
                4: (M, "at_most", 0.80, "P3"),
                5: (M, "at_most", 0.70, "P3"),
            },
        ),
        ("reciprocity", {4: (M, "at_least", 0.20, "N1"), 5: (M, "at_least", 0.30, "N1")}),
        (
            "cross_department",
            {
                3: (M, "at_least", 0.10, "X1"),
                4: (M, "at_least", 0.25, "X1"),
                5: (M, "at_least", 0.40, "X1"),
            },
        ),
        ("cohort_retention", {4: (M, "at_least", 0.30, "T1"), 5: (M, "at_least", 0.40, "T1")}),
        (
            "recent_reading",
            {lv: (M, "at_most", 183, "days_since_reading") for lv in (3, 4, 5)},
        ),
        ("policy_described", {lv: (D, "declared", None, "policy_described") for lv in (3, 4, 5)}),
        (
            "policy_communicated",
            {lv: (M, "at_least", 0.80, "policy_acknowledged") for lv in (3, 4, 5)},
        ),
        (
            "policy_adjusted",
            {lv: (M, "at_least", 1, "policy_revisions_citing_readings") for lv in (3, 4, 5)},
        ),
        ("platforms_chosen", {lv: (M, "required", None, "platform_chosen") for lv in (3, 4, 5)}),
        ("training", {lv: (M, "at_least", 0.70, "training_completed") for lv in (3, 4, 5)}),
        (
            "escalation",
            {
                3: (D, "declared", None, "escalation_procedure"),
                4: (M, "at_most", 24, "R4"),
                5: (M, "at_most", 8, "R4"),
            },
        ),
        (
            "netiquette",
            {
                3: (D, "declared", None, "netiquette_published"),
                4: (D, "declared", None, "after_hours_reviewed"),
                5: (D, "declared", None, "after_hours_reviewed"),
            },
        ),
        (
            "ambition_and_roadmap",
            {lv: (M, "at_least", 0.50, "roadmap_due_done") for lv in (4, 5)},
        ),
        ("external_participants", {5: (M, "at_least", 5, "EXT")}),
        ("improvement_loops", {5: (M, "at_least", 2, "policy_revisions_citing_readings")}),
        (
            "answered_questions",
            {
                3: (M, "at_least", 0.50, "Q1"),
                4: (M, "at_least", 0.70, "Q1"),
                5: (M, "at_least", 0.80, "Q1"),
            },
        ),
        ("first_response_time", {4: (M, "at_most", 24, "R2"), 5: (M, "at_most", 8, "R2")}),
    ],
)
def test_the_default_encodes_the_table(gate: str, expected: dict[int, Any]):
    assert levels(gate) == expected


@pytest.mark.parametrize(
    ("gate", "window"),
    [
        ("interactive_share", 183),
        ("response_rate", 90),
        ("top10_share", 90),
        ("reciprocity", 90),
        ("cross_department", 90),
        ("answered_questions", 90),
        ("first_response_time", 90),
        ("external_participants", 90),
    ],
)
def test_indicator_gates_have_their_windows(gate: str, window: int):
    assert {r.window_days for r in BOOK.gate(gate).requirements} == {window}


def test_facts_and_declarations_have_no_window_and_the_right_source():
    escalation = BOOK.gate("escalation")
    l3, l4, l5 = (escalation.requirement(lv) for lv in (3, 4, 5))
    assert l3 is not None and l4 is not None and l5 is not None
    assert (l3.window_days, l3.source) == (None, "evidence")
    assert (l4.window_days, l4.source) == (90, "events")
    assert (l5.window_days, l5.source) == (90, "events")
    training = BOOK.gate("training").requirement(3)
    assert training is not None
    assert (training.window_days, training.source) == (None, "platform")
    assert BOOK.gate("external_participants").requirements[0].source == "events"


def test_service_gates_apply_to_service_only():
    for gate in ("answered_questions", "first_response_time"):
        assert BOOK.gate(gate).processes == ("service",)
    service = {r.gate for r in BOOK.requirements("service", 4)}
    marketing = {r.gate for r in BOOK.requirements("marketing", 4)}
    assert service - marketing == {"answered_questions", "first_response_time"}
    assert all(g.processes is None for g in BOOK.gates if g.key not in service - marketing)


def test_requirements_per_level():
    l2 = BOOK.requirements("innovation", 2)
    assert [r.gate for r in l2] == ["owner_and_space", "interactive_share"]
    assert all(isinstance(r, Requirement) and r.level == 2 for r in l2)
    assert [r.gate for r in BOOK.requirements("innovation", 5)][-3:] == [
        "ambition_and_roadmap",
        "external_participants",
        "improvement_loops",
    ]
    assert BOOK.requirements("innovation", 1) == ()
    assert BOOK.evidence_keys() == (
        "policy_described",
        "escalation_procedure",
        "netiquette_published",
        "after_hours_reviewed",
    )


def test_the_book_is_frozen_and_round_trips():
    with pytest.raises(AttributeError):
        BOOK.k = 7  # type: ignore[misc]
    assert parse_rulebook(BOOK.as_dict()) == BOOK


def test_an_installation_overrides_the_default(tmp_path: Path):
    data = default_data()
    data["version"] = "acme-1"
    data["k"] = 7
    response = next(g for g in data["gates"] if g["key"] == "response_rate")
    response["levels"]["4"]["threshold"] = 0.5
    data["gates"].append(
        {
            "key": "idea_departments",
            "name": "Share of departments that submitted ideas",
            "metric": "X4",
            "window_days": 183,
            "processes": ["innovation"],
            "levels": {"4": {"kind": "measured", "comparison": "at_least", "threshold": 0.3}},
        }
    )
    book = load_rulebook(write(tmp_path, data))
    assert (book.version, book.k) == ("acme-1", 7)
    r4 = book.gate("response_rate").requirement(4)
    assert r4 is not None and r4.threshold == 0.5
    assert "idea_departments" in {r.gate for r in book.requirements("innovation", 4)}
    assert "idea_departments" not in {r.gate for r in book.requirements("service", 4)}
    assert load_rulebook(str(write(tmp_path, data))) == book


def _mutate(data: dict[str, Any], gate: str) -> dict[str, Any]:
    return next(g for g in data["gates"] if g["key"] == gate)


BAD = [
    # (what to do to the default data, words the message must contain)
    (lambda d: d.update(extra=1), ["unknown field", "'extra'"]),
    (lambda d: d.pop("version"), ["missing field", "'version'"]),
    (lambda d: d.update(version=""), ["version"]),
    (lambda d: d.update(k=0), ["k must be a positive integer"]),
    (lambda d: d.update(k=True), ["k must be a positive integer"]),
    (lambda d: d.update(gates=[]), ["gates must be a non-empty list"]),
    (lambda d: _mutate(d, "training").update(owner="x"), ["'training'", "unknown field", "owner"]),
    (
        lambda d: _mutate(d, "response_rate")["levels"].update(
            {"6": {"kind": "measured", "comparison": "at_least", "threshold": 0.9}}
        ),
        ["'response_rate'", "level '6'"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"].update(
            {"1": {"kind": "measured", "comparison": "at_least", "threshold": 0.1}}
        ),
        ["'response_rate'", "level '1'"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].update(comparison="more_than"),
        ["'response_rate'", "levels['4'].comparison", "unknown comparison 'more_than'"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].update(kind="guessed"),
        ["levels['4'].kind", "unknown kind"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].update(unit="%"),
        ["levels['4']", "unknown field", "'unit'"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].update(threshold="58%"),
        ["levels['4'].threshold", "numeric threshold"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].update(threshold=58),
        ["levels['4'].threshold", "share"],
    ),
    (
        lambda d: _mutate(d, "response_rate")["levels"]["4"].pop("threshold"),
        ["levels['4'].threshold"],
    ),
    (
        lambda d: _mutate(d, "response_rate").update(metric="R9"),
        ["('response_rate').metric:", "unknown metric 'R9'"],
    ),
    (
        lambda d: _mutate(d, "response_rate").pop("window_days"),
        ["'response_rate'", "needs window_days"],
    ),
    (
        lambda d: _mutate(d, "response_rate").update(window_days=0),
        ["'response_rate'", "window_days"],
    ),
    (
        lambda d: _mutate(d, "platforms_chosen")["levels"]["3"].update(threshold=1),
        ["'platforms_chosen'", "has no threshold"],
    ),
    (
        lambda d: _mutate(d, "platforms_chosen")["levels"]["3"].update(comparison="at_least"),
        ["'platforms_chosen'", "platform_chosen is compared with required"],
    ),
    (
        lambda d: _mutate(d, "policy_described")["levels"]["3"].update(comparison="required"),
        ["'policy_described'", "declared"],
    ),
    (
        lambda d: _mutate(d, "training")["levels"]["3"].update(window_days=30),
        ["'training'", "only indicator metrics have a window"],
    ),
    (
        lambda d: _mutate(d, "escalation")["levels"]["4"].update(metric="R5"),
        ["('escalation').levels['4'].metric:", "unknown metric 'R5'"],
    ),
    (
        lambda d: _mutate(d, "netiquette")["levels"]["4"].update(metric="After Hours"),
        ["('netiquette').levels['4'].metric:", "evidence key"],
    ),
    (
        lambda d: _mutate(d, "answered_questions").update(processes=["sales"]),
        ["'answered_questions'", "unknown process 'sales'"],
    ),
    (
        lambda d: d["gates"].append(copy.deepcopy(_mutate(d, "training"))),
        ["duplicate gate key 'training'"],
    ),
]


@pytest.mark.parametrize(("change", "words"), BAD)
def test_a_bad_rulebook_is_refused_with_the_place(tmp_path: Path, change: Any, words: list[str]):
    data = default_data()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(RulebookError) as caught:
        load_rulebook(path)
    message = str(caught.value)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_unreadable_and_malformed_files(tmp_path: Path):
    with pytest.raises(RulebookError, match="cannot read"):
        load_rulebook(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": ', encoding="utf-8")
    with pytest.raises(RulebookError, match=r"not valid JSON \(line 1"):
        load_rulebook(broken)
    with pytest.raises(RulebookError, match="must be a JSON object"):
        load_rulebook(write(tmp_path, [1, 2]))


def test_the_default_file_ships_as_package_data():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert 'telemetry = ["rulebooks/*.json"]' in pyproject.read_text(encoding="utf-8")


def test_the_rulebook_and_the_assessment_import_no_web_or_database_code():
    import subprocess
    import sys

    code = (
        "import sys, telemetry.rulebook, telemetry.assessment\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in {'flask', 'sqlalchemy', 'esn'}]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
