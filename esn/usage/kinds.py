"""The declared kinds of usage event and the payload each may carry.

A kind is named ``source:subject:action``. Recording an undeclared kind, or a payload field
that its kind does not declare, raises ``UsageKindError``: telemetry can only trust a log whose
vocabulary is closed. Features declare their kinds at import time with ``declare``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

KIND_PATTERN = re.compile(r"^[a-z][a-z_]*:[a-z][a-z_]*:[a-z][a-z_]*$")


class UsageKindError(ValueError):
    """An undeclared kind, or a payload that does not match its kind's declaration."""


class NoPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class UsageKind:
    name: str
    payload: type[BaseModel]
    # What this kind means to telemetry; stated once here so the indicator code can ask.
    interaction: bool = False
    contribution: bool = False
    description: str = ""


_REGISTRY: dict[str, UsageKind] = {}


def declare(
    name: str,
    payload: type[BaseModel] = NoPayload,
    *,
    interaction: bool = False,
    contribution: bool = False,
    description: str = "",
) -> UsageKind:
    """Add a kind to the vocabulary. Declaring the same name twice is a programming error."""
    if not KIND_PATTERN.match(name):
        raise UsageKindError(f"usage kind {name!r} is not of the form source:subject:action")
    if name in _REGISTRY:
        raise UsageKindError(f"usage kind {name!r} is declared twice")
    if payload.model_config.get("extra") != "forbid":
        raise UsageKindError(f"payload of {name!r} must forbid unknown fields")
    kind = UsageKind(name, payload, interaction, contribution, description)
    _REGISTRY[name] = kind
    return kind


def get(name: str) -> UsageKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageKindError(f"unknown usage kind {name!r}") from None


def all_kinds() -> list[UsageKind]:
    return sorted(_REGISTRY.values(), key=lambda k: k.name)


# --- kinds of the foundation -------------------------------------------------------------


class ImportSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    departments_created: int
    departments_updated: int
    users_created: int
    users_updated: int
    users_deactivated: int
    rows_skipped: int


class DepartmentMove(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    from_department_id: int | None
    to_department_id: int | None


class ChangedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fields: list[str]


SIGN_IN = declare("account:session:sign_in", description="a person signed in with a password")
SIGN_OUT = declare("account:session:sign_out")
VISIT = declare(
    "account:session:visit",
    description="the first authenticated request of a person on a UTC day (A2 visitor share)",
)
PASSWORD_CHANGE = declare("account:password:change")
TOKEN_CREATE = declare("account:token:create")
TOKEN_REVOKE = declare("account:token:revoke")
PROFILE_UPDATE = declare("account:profile:update", ChangedFields)
USER_CREATE = declare("admin:user:create")
USER_UPDATE = declare("admin:user:update", ChangedFields)
USER_DEACTIVATE = declare("admin:user:deactivate")
USER_REACTIVATE = declare("admin:user:reactivate")
DEPARTMENT_MOVE = declare("admin:user:move_department", DepartmentMove)
DEPARTMENT_CREATE = declare("admin:department:create")
DEPARTMENT_UPDATE = declare("admin:department:update", ChangedFields)
IMPORT_APPLY = declare("admin:import:apply", ImportSummary)
