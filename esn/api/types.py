"""Constrained field types shared by request schemas.

Every string has a maximum length and every id is at most ``MAX_ID``. ``Input`` refuses NUL in
any string; the text types refuse it on their own as well, for models that are not ``Input``
(the rows of the HR import).
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

# The largest id: ids are INTEGER columns (32-bit signed on PostgreSQL). A larger number names
# nothing, and would fail in the database instead of being answered as not found.
MAX_ID = 2**31 - 1


class Input(BaseModel):
    """Base of request bodies and queries: unknown fields are refused, and so is NUL in any
    string (PostgreSQL cannot store it in text, and no legitimate input contains it).

    Surrounding whitespace is stripped, but a maximum length counts what was sent, as the
    OpenAPI document says: stripping never makes an over-long value fit."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _length_as_sent(cls, value: Any, info: ValidationInfo) -> Any:
        text, item = _max_lengths(cls).get(info.field_name or "", (None, None))
        if isinstance(value, str) and text is not None and len(value) > text:
            raise ValueError(f"String should have at most {text} characters")
        if isinstance(value, list) and item is not None:
            limit = item
            if any(isinstance(v, str) and len(v) > limit for v in value):
                raise ValueError(f"Each item should have at most {limit} characters")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


@functools.cache
def _max_lengths(model: type[BaseModel]) -> dict[str, tuple[int | None, int | None]]:
    """Per field of ``model``: the maxLength of it as text, and of its items as a list."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for name, prop in model.model_json_schema().get("properties", {}).items():
        alternatives = [prop, *prop.get("anyOf", [])]
        text = next(
            (
                a["maxLength"]
                for a in alternatives
                if a.get("type") == "string" and "maxLength" in a
            ),
            None,
        )
        item = next(
            (
                a["items"]["maxLength"]
                for a in alternatives
                if a.get("type") == "array" and "maxLength" in a.get("items", {})
            ),
            None,
        )
        out[name] = (text, item)
    return out


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False  # nested Input models check themselves


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


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _single_line(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be a single line")
    return value


Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email"}),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_single_line)]
ShortText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_single_line)]
LongText = Annotated[str, StringConstraints(max_length=5000), AfterValidator(_no_nul)]
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
SearchText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def _iso_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date and time") from None
    return value


# JSON has no time type: a timestamp arrives as an ISO 8601 string, which strict body parsing
# would refuse, so it is parsed here first; it must still carry an offset (AwareDatetime).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp)]


FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2199, 12, 31)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_day(value: Any) -> Any:
    # JSON has no date type, and strict body parsing would refuse the string (as for
    # Timestamp): parse YYYY-MM-DD here, exactly that form.
    if isinstance(value, str):
        if not _ISO_DAY.match(value):
            raise ValueError("not a date of the form YYYY-MM-DD")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("not a valid date") from None
    return value


def _day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


# A calendar day, exactly YYYY-MM-DD, within a sane range.
Day = Annotated[date, BeforeValidator(_iso_day), AfterValidator(_day)]
