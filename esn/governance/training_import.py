"""Import of training completions from CSV (the learning system's export).

Columns (a header row is required; names are case-insensitive; unknown columns are refused so
that a typo cannot be ignored):

===============  ========  ==========================================================
column           required  meaning
===============  ========  ==========================================================
employee_number  one of    the person, by HR key (matched first when the cell is filled)
email            the two   the person, by e-mail address
training         yes       the training (course) key, e.g. ``social-media-basics``
completed_on     yes       ``YYYY-MM-DD``, not in the future
expires_on       no        ``YYYY-MM-DD`` (empty: does not expire), not before completed_on
===============  ========  ==========================================================

A completion is identified by (person, training, completed_on): importing it again changes
nothing, or only its expiry date. The whole file is validated first; invalid rows are
reported with their line numbers and nothing is written, unless ``skip_invalid`` imports the
valid rows. A dry run reports what would happen and writes nothing. An import that changes
anything records one usage event (``governance:training:import``) with the counts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from sqlalchemy import Table, bindparam, insert, select, update

from esn.accounts.models import User
from esn.api.types import Email, EmployeeNumber
from esn.clock import now
from esn.extensions import db
from esn.governance.actions import check_training_dates
from esn.governance.models import TrainingRecord, TrainingSource
from esn.governance.schemas import (
    Day,
    TrainingImportError,
    TrainingImportReport,
    TrainingKey,
)
from esn.usage import kinds
from esn.usage.recorder import record_usage

COLUMNS = ("employee_number", "email", "training", "completed_on", "expires_on")
REQUIRED = ("training", "completed_on")
PERSON_KEYS = ("employee_number", "email")


def _empty_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class TrainingRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    employee_number: Annotated[EmployeeNumber | None, BeforeValidator(_empty_is_none)] = None
    email: Annotated[Email | None, BeforeValidator(_empty_is_none)] = None
    training: TrainingKey
    completed_on: Day
    expires_on: Annotated[Day | None, BeforeValidator(_empty_is_none)] = None


@dataclass
class _Wanted:
    line: int
    user_id: int
    training: str
    completed_on: date
    expires_on: date | None


class _Report:
    def __init__(self, dry_run: bool) -> None:
        self.dry_run = dry_run
        self.rows = 0
        self.errors: list[TrainingImportError] = []
        self.bad_lines: set[int] = set()

    def error(self, line: int, field: str | None, message: str) -> None:
        self.errors.append(TrainingImportError(line=line, field=field, message=message[:500]))
        self.bad_lines.add(line)

    def build(
        self, *, applied: bool, created: int, updated: int, unchanged: int, skipped: int
    ) -> TrainingImportReport:
        return TrainingImportReport(
            dry_run=self.dry_run,
            applied=applied,
            rows=self.rows,
            records_created=created,
            records_updated=updated,
            records_unchanged=unchanged,
            rows_skipped=skipped,
            errors=sorted(self.errors, key=lambda e: e.line),
        )


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record, blank lines left out; a quoted cell may span
    lines, so a record's line is where it starts."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    end = 0
    for cells in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in cells):
            yield start, cells


def _header_problem(header: list[str]) -> str | None:
    if not header:
        return "the file is empty (a header row is required)"
    detail = []
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        detail.append(f"missing columns: {', '.join(missing)}")
    if not any(k in header for k in PERSON_KEYS):
        detail.append("a column employee_number or email is required")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        detail.append(f"unknown columns: {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        detail.append(f"columns given twice: {', '.join(twice)}")
    return "; ".join(detail) or None


def _people() -> tuple[dict[str, int], dict[str, int]]:
    by_number: dict[str, int] = {}
    by_email: dict[str, int] = {}
    for uid, number, email in db.session.execute(select(User.id, User.employee_number, User.email)):
        if number:
            by_number[number] = uid
        by_email[email] = uid
    return by_number, by_email


def _parse(text: str, report: _Report) -> list[_Wanted]:
    by_number, by_email = _people()
    wanted: list[_Wanted] = []
    seen: dict[tuple[int, str, date], int] = {}
    line = 1
    records = _records(text.removeprefix("\ufeff"))
    try:
        first = next(records, None)
        header = [h.strip().lower() for h in first[1]] if first else []
        line = first[0] if first else 1
        problem = _header_problem(header)
        if problem is not None:
            report.error(line, None, problem)
            return []
        for line, cells in records:
            report.rows += 1
            if len(cells) != len(header):
                report.error(
                    line, None, f"{len(cells)} cells where the header has {len(header)} columns"
                )
                continue
            try:
                row = TrainingRow.model_validate(dict(zip(header, cells, strict=True)))
            except ValidationError as exc:
                for err in exc.errors(include_url=False, include_input=False):
                    column = str(err["loc"][0]) if err["loc"] else None
                    report.error(line, column, err["msg"])
                continue
            if row.employee_number is not None:
                user_id = by_number.get(row.employee_number)
                if user_id is None:
                    report.error(line, "employee_number", "no person has this employee number")
                    continue
            elif row.email is not None:
                user_id = by_email.get(row.email)
                if user_id is None:
                    report.error(line, "email", "no person has this e-mail address")
                    continue
            else:
                report.error(line, None, "give the person's employee_number or email")
                continue
            dates = check_training_dates(row.completed_on, row.expires_on)
            if dates is not None:
                report.error(line, *dates)
                continue
            key = (user_id, row.training, row.completed_on)
            if key in seen:
                report.error(line, None, f"the same completion is also on line {seen[key]}")
                continue
            seen[key] = line
            wanted.append(_Wanted(line, *key, row.expires_on))
    except csv.Error as exc:
        report.error(line, None, f"the CSV cannot be read after this line: {exc}")
        return []
    return wanted


def import_training(
    text: str, *, actor: User, dry_run: bool = False, skip_invalid: bool = False
) -> TrainingImportReport:
    """Validate ``text`` and, unless ``dry_run`` or invalid rows forbid it, write it in the
    current transaction; the caller commits when ``report.applied`` and rolls back otherwise.
    The counts say what was (or would be) done with the valid rows."""
    report = _Report(dry_run)
    wanted = _parse(text, report)
    existing: dict[tuple[int, str, date], tuple[int, date | None]] = {}
    users = sorted({w.user_id for w in wanted})
    for start in range(0, len(users), 1000):
        chunk = users[start : start + 1000]
        for rid, uid, training, completed_on, expires_on in db.session.execute(
            select(
                TrainingRecord.id,
                TrainingRecord.user_id,
                TrainingRecord.training,
                TrainingRecord.completed_on,
                TrainingRecord.expires_on,
            ).where(TrainingRecord.user_id.in_(chunk))
        ):
            existing[(uid, training, completed_on)] = (rid, expires_on)
    create: list[_Wanted] = []
    change: list[tuple[int, date | None]] = []
    unchanged = 0
    for w in wanted:
        found = existing.get((w.user_id, w.training, w.completed_on))
        if found is None:
            create.append(w)
        elif found[1] != w.expires_on:
            change.append((found[0], w.expires_on))
        else:
            unchanged += 1
    skipped = len(report.bad_lines) if skip_invalid else 0
    applied = not dry_run and (not report.errors or skip_invalid)
    if applied and (create or change):
        _apply(actor, create, change)
    return report.build(
        applied=applied,
        created=len(create),
        updated=len(change),
        unchanged=unchanged,
        skipped=skipped,
    )


def _apply(actor: User, create: list[_Wanted], change: list[tuple[int, date | None]]) -> None:
    moment = now()
    if create:
        db.session.execute(
            insert(TrainingRecord),
            [
                {
                    "user_id": w.user_id,
                    "training": w.training,
                    "completed_on": w.completed_on,
                    "expires_on": w.expires_on,
                    "source": TrainingSource.import_,
                    "recorded_by_id": actor.id,
                    "recorded_at": moment,
                }
                for w in create
            ],
        )
    if change:
        table = cast(Table, TrainingRecord.__table__)
        db.session.execute(
            update(table)
            .where(table.c.id == bindparam("rid"))
            .values(expires_on=bindparam("new_expiry"), recorded_at=moment),
            [{"rid": rid, "new_expiry": expiry} for rid, expiry in change],
        )
    record_usage(
        kinds.GOV_TRAINING_IMPORT,
        actor,
        object_type="training_import",
        payload={"records_created": len(create), "records_updated": len(change)},
    )
