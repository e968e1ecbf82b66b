"""The privacy rules: a figure about fewer than k people is never shown (SMG_MODEL.md).

k = 5 for every aggregate; k = 10 for new-hire cohorts and for network figures per department.
A scope whose eligible population is under k shows nothing at all. In a breakdown (one figure
per department), when one row is suppressed the next smallest is too, so that the hidden row
cannot be recovered by subtracting the shown ones from a total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telemetry.indicators import NETWORK
from telemetry.values import INSUFFICIENT_DATA, IndicatorValue

K = 5
K_SENSITIVE = 10  # new-hire cohorts, per-department network figures


def minimum_people(key: str, department_scope: bool) -> int:
    return K_SENSITIVE if department_scope and key in NETWORK else K


def guard(
    values: Mapping[str, IndicatorValue], population: int, *, department_scope: bool = False
) -> dict[str, IndicatorValue]:
    """``values`` with every figure that may not be shown suppressed: the scope's population or
    the figure's own people under k, or nothing to divide by."""
    out: dict[str, IndicatorValue] = {}
    for key, v in values.items():
        k = minimum_people(key, department_scope)
        if population < k or v.people < k or v.value is None:
            out[key] = v.suppress(INSUFFICIENT_DATA)
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class BreakdownRow:
    group: int  # e.g. a department id
    population: int
    value: IndicatorValue


def complementary(rows: Sequence[BreakdownRow], k: int = K) -> list[BreakdownRow]:
    """Rows under k suppressed; if exactly one row with people is suppressed that way, the
    smallest other row shown is suppressed too (with several suppressed, no single one can be
    derived). A row without people gives no cover (its figure is known to be empty), and
    neither do hidden rows that together are still under k people (their sum could be derived
    from a total): the next smallest rows are suppressed until the hidden ones cover k."""
    hidden = {r.group for r in rows if r.population < k or r.value.suppressed}
    shown = sorted(
        (r for r in rows if r.group not in hidden), key=lambda r: (r.population, r.group)
    )
    cover = [r for r in rows if r.group in hidden and r.population > 0]
    while shown and cover and (len(cover) == 1 or sum(r.population for r in cover) < k):
        row = shown.pop(0)
        hidden.add(row.group)
        cover.append(row)
    return [
        BreakdownRow(r.group, r.population, r.value.suppress())
        if r.group in hidden and not r.value.suppressed
        else r
        for r in rows
    ]
