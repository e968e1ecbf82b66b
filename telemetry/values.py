"""The shape of a measured figure, shared by indicators, privacy rules and the assessment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class IndicatorValue:
    """One indicator over one scope and window.

    ``value`` is None exactly when ``suppressed`` (then ``reason`` says why): too few people
    behind the figure (privacy), or nothing to divide by. ``people`` is how many people the
    figure is about, the count the privacy rules compare with k; it is never shown.
    """

    key: str
    value: float | None
    numerator: float | None
    denominator: float | None
    window_days: int
    people: int = 0
    suppressed: bool = False
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def suppress(self, reason: str = INSUFFICIENT_DATA) -> IndicatorValue:
        """The same figure with every number withheld."""
        return replace(
            self,
            value=None,
            numerator=None,
            denominator=None,
            suppressed=True,
            reason=reason,
            detail={},
        )

    def public(self) -> dict[str, Any]:
        """The dashboard contract's shape."""
        return {
            "key": self.key,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "suppressed": self.suppressed,
            "reason": self.reason,
            "detail": self.detail or None,
        }
