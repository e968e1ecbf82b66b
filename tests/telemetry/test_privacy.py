"""Privacy through the API (SMG_MODEL.md, "Privacy is part of the number"): a figure about
fewer than k people is never shown, k = 10 for network figures per department, complementary
suppression in per-department breakdowns, the department matrix only with departments of at
least 10 people, and comparisons of readings never show a delta of a suppressed figure."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from esn.accounts.models import User
from esn.clock import frozen_at
from esn.extensions import db
from esn.usage import kinds
from telemetry.indicators import INDICATORS
from telemetry.privacy import BreakdownRow, complementary
from telemetry.values import IndicatorValue
from tests.conftest import ApiClient
from tests.telemetry import world
from tests.telemetry.dashboard_helpers import (
    ASKED,
    LAST,
    NETWORK,
    WINDOW,
    circle,
    departments,
    gate,
    get_indicators,
    hidden,
    lead,
    needs_readings,
    people_in,
    shown,
    store_reading,
    visits,
)
from tests.telemetry.reference import Ev


def breakdown(api: ApiClient, key: str) -> dict[int, dict[str, Any]]:
    with frozen_at(ASKED):
        response = api.get(
            f"/api/v1/governance/indicators/by-department?indicator={key}"
            f"&window_days={WINDOW}&at={LAST}"
        )
    assert response.status_code == 200, response.get_json()
    return {row["department_id"]: row for row in response.get_json()["departments"]}


# --- scopes under k ------------------------------------------------------------------------------


def test_a_department_under_five_people_shows_nothing(app):
    """Four eligible people (a bot, an external and a deactivated person in the department do
    not count), all very active: every indicator is suppressed, none has a value. The same
    events do show in the organisation."""
    small, big = departments([4, 8])
    (four, eight, extra) = people_in(
        [small, big],
        [4, 8],
        [
            {"department_id": small, "is_bot": True},
            {"department_id": small, "is_external": True},
            {"department_id": small},
        ],
    )
    bot, external, leaver = extra
    db.session.execute(update(User).where(User.id == leaver.id).values(is_active=False))
    db.session.commit()
    events = []
    for day in range(0, 21, 2):
        events += circle([*four, external], day, "innovation") + circle(eight, day)
        events += visits([*four, bot, leaver], day)
    world.record(events)
    api = lead(app)

    got = get_indicators(api, f"department:{small}")
    assert got["population"] == 4
    for key in INDICATORS:
        hidden(got[key])
    # Every window, too.
    for window in (1, 7, 90, 400):
        got = get_indicators(api, f"department:{small}", window)
        assert all(got[k]["suppressed"] and got[k]["value"] is None for k in INDICATORS)

    org = get_indicators(api, "org")
    assert org["population"] == 4 + 8 + 1  # and the lead
    for key in ("A1", "A2", "A3", "P2", "P3", "R1", "R2", "N1", "X1", "X4", "H1", "T2"):
        shown(org[key])


def test_a_department_counts_its_sub_departments(app):
    """Three people in a department and three in its sub-department: six, shown."""
    parent, child = departments([3, 3], parents={1: 0})
    a, b, _ = people_in([parent, child], [3, 3])
    events = []
    for day in range(0, 21, 3):
        events += circle([*a, *b], day)
    world.record(events)
    api = lead(app)
    got = get_indicators(api, f"department:{parent}")
    assert got["population"] == 6
    shown(got["A1"])
    assert got["A1"]["value"] == 1.0
    only_child = get_indicators(api, f"department:{child}")
    assert only_child["population"] == 3
    for key in INDICATORS:
        hidden(only_child[key])


@pytest.mark.parametrize("scope", ["org", "process:innovation"])
def test_figures_about_three_contributors_are_suppressed(app, scope):
    """Nine eligible people visit, only three of them post, comment, react and mention (in
    the innovation process): shares of the whole population are shown, every figure about
    the three (top-10% share, after-hours share, responses, network) is not."""
    (dept,) = departments([9])
    (nine, _) = people_in([dept], [9])
    three = nine[:3]
    events = []
    for day in range(0, 21, 2):
        events += circle(three, day, "innovation")
        events += visits(nine, day)
    world.record(events)
    api = lead(app)

    got = get_indicators(api, scope)
    assert got["population"] == 10  # nine and the lead
    shown(got["A1"])
    assert math.isclose(got["A1"]["value"], 3 / 10)
    assert (got["A1"]["numerator"], got["A1"]["denominator"]) == (3, 10)
    shown(got["A3"])
    shown(got["P2"])
    for key in ("P3", "H1", "R1", "R2", *NETWORK):
        hidden(got[key])


def test_network_figures_of_a_department_need_ten_people(app):
    """Network figures per department use k = 10: a department of 9 (5 + a sub-department of
    4) shows its activity but no network figure; one of 10 (5 + 5) shows both. The
    organisation (k = 5) shows the network figures of the nine."""
    d9, d9_child, d10, d10_child = departments([5, 4, 5, 5], parents={1: 0, 3: 2})
    a, b, c, d, _ = people_in([d9, d9_child, d10, d10_child], [5, 4, 5, 5])
    nine, ten = [*a, *b], [*c, *d]
    events = []
    for day in range(0, 21, 2):
        events += circle(nine, day) + circle(ten, day + 1 if day < 20 else day)
    world.record(events)
    api = lead(app)

    got9 = get_indicators(api, f"department:{d9}")
    assert got9["population"] == 9
    for key in ("A1", "A2", "A3", "R1", "H1", "T2"):
        shown(got9[key])
    for key in NETWORK:
        hidden(got9[key])

    got10 = get_indicators(api, f"department:{d10}")
    assert got10["population"] == 10
    for key in NETWORK:
        shown(got10[key])
    assert got10["N1"]["value"] == 1.0  # every tie of the circle is reciprocated

    org = get_indicators(api, "org")
    for key in ("N1", "X1", "X4"):
        shown(org[key])


# --- breakdowns: complementary suppression -----------------------------------------------------


def test_one_department_under_k_hides_the_next_smallest_too(app):
    ids = departments([3, 6, 7, 12])
    groups = people_in(ids, [3, 6, 7, 12])
    events = []
    for day in range(0, 21, 2):
        for group in groups[:4]:
            events += circle(group, day)
    world.record(events)
    api = lead(app)

    rows = breakdown(api, "A1")
    assert list(rows) == ids  # every top-level department, in order
    for dept in ids[:2]:  # 3 people (under k) and 6 (the next smallest)
        assert rows[dept]["suppressed"] and rows[dept]["value"] is None, rows[dept]
        assert rows[dept]["reason"] == "insufficient_data"
    for dept in ids[2:]:
        assert not rows[dept]["suppressed"] and rows[dept]["value"] == 1.0, rows[dept]


def test_no_department_under_k_hides_nothing(app):
    ids = departments([5, 6, 7])
    groups = people_in(ids, [5, 6, 7])
    events = []
    for day in range(0, 21, 2):
        for i, group in enumerate(groups[:3]):
            events += circle(group[: 2 + i], day) + visits(group, day)
    world.record(events)
    api = lead(app)
    rows = breakdown(api, "A1")
    assert [rows[d]["suppressed"] for d in ids] == [False, False, False]
    assert [rows[d]["value"] for d in ids] == [2 / 5, 3 / 6, 4 / 7]


def test_two_departments_under_k_hide_each_other(app):
    ids = departments([3, 4, 6, 7])
    groups = people_in(ids, [3, 4, 6, 7])
    events = []
    for day in range(0, 21, 2):
        for group in groups[:4]:
            events += circle(group, day)
    world.record(events)
    api = lead(app)
    rows = breakdown(api, "A1")
    assert [rows[d]["suppressed"] for d in ids] == [True, True, False, False]


def test_an_empty_department_gives_no_cover(app):
    """A department without people is "suppressed" too, but hides nothing: its figure is
    known to be empty. With one real department under k, the next smallest must still go,
    or the small one's figure could be had from the organisation's total."""
    ids = departments([0, 3, 6, 7])
    groups = people_in(ids, [0, 3, 6, 7])
    events = []
    for day in range(0, 21, 2):
        for group in groups[1:4]:
            events += circle(group, day)
    world.record(events)
    api = lead(app)
    rows = breakdown(api, "A1")
    assert rows[ids[0]]["suppressed"]
    assert rows[ids[1]]["suppressed"]  # 3 people
    assert rows[ids[2]]["suppressed"], rows  # 6: the next smallest with people
    assert not rows[ids[3]]["suppressed"]


def test_network_breakdowns_use_k_ten(app):
    """N1 per department: 7 people is under k = 10, so 10 (the next smallest) goes too; 12
    is shown."""
    ids = departments([7, 10, 12])
    groups = people_in(ids, [7, 10, 12])
    events = []
    for day in range(0, 21, 2):
        for group in groups[:3]:
            events += circle(group, day)
    world.record(events)
    api = lead(app)
    rows = breakdown(api, "N1")
    assert [rows[d]["suppressed"] for d in ids] == [True, True, False]
    assert rows[ids[2]]["value"] == 1.0


def complementary_rows(sizes: list[int]) -> list[bool]:
    rows = [
        BreakdownRow(i, n, IndicatorValue("A1", 0.5, n / 2, n, 90, people=n))
        for i, n in enumerate(sizes)
    ]
    guarded = [
        BreakdownRow(r.group, r.population, r.value.suppress() if r.population < 5 else r.value)
        for r in rows
    ]
    return [r.value.suppressed for r in complementary(guarded)]


def test_complementary_suppression_rules():
    assert complementary_rows([3, 6, 7, 12]) == [True, True, False, False]
    assert complementary_rows([12, 7, 3, 6]) == [False, False, True, True]
    assert complementary_rows([5, 6, 7]) == [False, False, False]
    assert complementary_rows([3, 4, 6]) == [True, True, False]
    # No cover from a department without people; nor from hidden ones that together are
    # still under k (their sum could be had from a total).
    assert complementary_rows([0, 3, 6, 7]) == [True, True, True, False]
    assert complementary_rows([1, 2, 6, 7]) == [True, True, True, False]
    # Nothing to hide behind: every row is suppressed, or none shown.
    assert complementary_rows([3]) == [True]
    assert complementary_rows([3, 8]) == [True, True]


# --- the department matrix ---------------------------------------------------------------------


def test_the_matrix_lists_only_departments_of_ten_or_more(app):
    ids = departments([10, 9, 11])
    ten, nine, eleven, _ = people_in(ids, [10, 9, 11])
    groups = {ids[0]: ten, ids[1]: nine, ids[2]: eleven}
    department_of = {u.id: d for d, g in groups.items() for u in g}
    events = []
    for day in range(0, 20, 4):
        # Inside each department, and across all pairs of departments.
        events += circle(ten, day) + circle(nine, day) + circle(eleven, day)
        for a, b in ((ten, nine), (nine, eleven), (eleven, ten), (ten, eleven)):
            for x, y in zip(a[:4], b[:4], strict=True):
                events.append(Ev(world.at(day + 1, 10), kinds.MENTION.name, x.id, y.id))
    world.record(events)
    api = lead(app)
    with frozen_at(ASKED):
        response = api.get(f"/api/v1/governance/network/departments?window_days={WINDOW}&at={LAST}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [d["id"] for d in body["departments"]] == [ids[0], ids[2]]
    # The distinct ties between the shown departments, by hand from the events.
    ties = {(e.actor, e.owner) for e in events if e.owner is not None and e.owner != e.actor}
    shown_ids = [ids[0], ids[2]]
    expected = [[0, 0], [0, 0]]
    for u, v in ties:
        du, dv = department_of[u], department_of[v]
        if du in shown_ids and dv in shown_ids:
            expected[shown_ids.index(du)][shown_ids.index(dv)] += 1
    assert body["ties"] == expected
    assert expected[0][1] > 0 and expected[1][0] > 0


# --- comparisons of readings -------------------------------------------------------------------


def test_a_comparison_shows_no_delta_of_a_figure_suppressed_in_either_reading(app):
    api = lead(app)
    first = store_reading(
        1,
        {
            "org": {"A1": 0.25, "A2": None, "P3": 0.5, "N1": 0.4},
            "process:innovation": {"A1": None, "R1": 0.5},
        },
        [gate("A1", 2, "fail", 0.01), gate("R1", 3, "insufficient_data")],
    )
    second = store_reading(
        2,
        {
            "org": {"A1": 0.5, "A2": 0.75, "P3": None, "N1": 0.4},
            "process:innovation": {"A1": 0.2, "R1": None},
        },
        [gate("A1", 2, "pass", 0.04), gate("R1", 3, "insufficient_data")],
    )
    with frozen_at(ASKED):
        response = api.get(f"/api/v1/governance/readings/compare?from={first}&to={second}")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    deltas = {(d["scope"], d["key"]): d for d in body["indicators"]}
    assert deltas[("org", "A1")] == {
        "scope": "org",
        "key": "A1",
        "from_value": 0.25,
        "to_value": 0.5,
        "delta": 0.25,
        "suppressed": False,
    }
    assert deltas[("org", "N1")]["delta"] == 0.0
    for key in (
        ("org", "A2"),
        ("org", "P3"),
        ("process:innovation", "A1"),
        ("process:innovation", "R1"),
    ):
        d = deltas[key]
        assert d["suppressed"] is True, d
        assert d["from_value"] is None and d["to_value"] is None and d["delta"] is None, d
    (innovation,) = body["processes"]
    assert (innovation["from_level"], innovation["to_level"], innovation["change"]) == (1, 2, "up")
    assert innovation["gates_changed"] == [
        {"gate": "A1", "level": 2, "from_status": "fail", "to_status": "pass"}
    ]


@needs_readings
def test_comparing_real_readings_hides_what_either_one_suppressed(app):
    """Two readings taken through the API: by the first, three people had contributed (the
    top-10% share is about them: suppressed); by the second, eight (shown). The comparison
    has no delta for it, and a delta for a figure shown in both."""
    (dept,) = departments([8])
    (eight, _) = people_in([dept], [8])
    events = []
    for day in range(0, 6):
        events += circle(eight[:3], day, "innovation") + visits(eight, day)
    for day in range(14, 21):
        events += circle(eight, day, "innovation") + visits(eight, day)
    world.record(events)
    api = lead(app)
    with frozen_at(ASKED):
        first = api.post("/api/v1/governance/readings", json={"at": str(LAST - timedelta(10))})
        second = api.post("/api/v1/governance/readings", json={"at": str(LAST)})
        assert first.status_code == 201 and second.status_code == 201, second.get_json()
        a, b = first.get_json(), second.get_json()
        response = api.get(f"/api/v1/governance/readings/compare?from={a['id']}&to={b['id']}")
    assert response.status_code == 200, response.get_json()

    def flat(reading: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (scope, i["key"]): i
            for scope, f in reading["indicators"].items()
            for i in f["indicators"]
        }

    figures, later = flat(a), flat(b)
    deltas = {(d["scope"], d["key"]): d for d in response.get_json()["indicators"]}
    assert figures[("org", "P3")]["suppressed"] and not later[("org", "P3")]["suppressed"]
    for key, d in deltas.items():
        either = figures[key]["suppressed"] or later[key]["suppressed"]
        if either:
            assert d["suppressed"] is True, d
            assert (d["from_value"], d["to_value"], d["delta"]) == (None, None, None), d
        else:
            assert d["suppressed"] is False, d
            assert math.isclose(d["delta"], later[key]["value"] - figures[key]["value"]), d
    assert deltas[("org", "P3")]["delta"] is None
    assert not deltas[("org", "A2")]["suppressed"] and deltas[("org", "A2")]["delta"] == 0.0
