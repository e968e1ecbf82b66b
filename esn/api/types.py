"""Constrained field types shared by request schemas. Every string has a maximum length."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class Input(BaseModel):
    """Base of request bodies and queries: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _email(value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone (for example Europe/Amsterdam)") from None
    return value


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be a single line")
    return value


Email = Annotated[str, StringConstraints(min_length=3, max_length=254), AfterValidator(_email)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_single_line)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_single_line)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
TimeZone = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_time_zone)
]
SkillName = Annotated[
    str, StringConstraints(min_length=1, max_length=80), AfterValidator(_single_line)
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
EmployeeNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_single_line)
]
Cursor = Annotated[str, StringConstraints(max_length=512)]
SearchText = Annotated[str, StringConstraints(max_length=200)]
