"""The business processes that content, groups and telemetry are tagged with."""

from __future__ import annotations

import enum


class Process(enum.StrEnum):
    marketing = "marketing"
    recruitment = "recruitment"  # recruitment / HRM
    innovation = "innovation"
    production = "production"
    service = "service"  # service & maintenance
    general = "general"


# The five processes that the maturity model scores ("general" is not one of them).
SCORED = (
    Process.marketing,
    Process.recruitment,
    Process.innovation,
    Process.production,
    Process.service,
)
