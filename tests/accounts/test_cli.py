"""``esn users import``: the command line boundary of the HR import (exit status, output, flags).

The import's semantics are tested in test_import.py; these tests check what the command adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from esn.accounts.models import User
from esn.extensions import db
from tests.accounts.test_import import INVALID, ORG, table_counts, to_csv
from tests.conftest import fresh, make_user


def invoke(app: Flask, tmp_path: Path, content: str | bytes, *options: str) -> Any:
    path = tmp_path / "people.csv"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return app.test_cli_runner().invoke(args=["users", "import", str(path), *options])


def test_import_prints_a_summary(app, tmp_path):
    result = invoke(app, tmp_path, to_csv(ORG))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("applied: 5 rows in ")
    assert "departments created 3, updated 0; people created 5, updated 0" in result.stdout
    assert result.stderr == ""

    again = invoke(app, tmp_path, to_csv(ORG))
    assert again.exit_code == 0
    assert "people created 0, updated 0, unchanged 5" in again.stdout
    assert again.stdout.rstrip().endswith("no changes")


def test_invalid_rows_exit_1_with_their_lines_and_write_nothing(app, tmp_path):
    before = table_counts()
    result = invoke(app, tmp_path, INVALID)
    assert result.exit_code == 1
    assert result.stdout.startswith("NOT applied: 8 rows")
    assert "invalid rows 6" in result.stdout
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 4 [email]: ")
    assert [e.split(":")[0] for e in errors] == [
        "line 4 [email]", "line 5 [department_code]", "line 6 [time_zone]",
        "line 7 [employee_number]", "line 8 [roles]", "line 10",
    ]  # fmt: skip
    assert table_counts() == before


def test_skip_invalid_writes_the_valid_rows(app, tmp_path):
    result = invoke(app, tmp_path, INVALID, "--skip-invalid")
    assert result.exit_code == 0
    assert result.stdout.startswith("applied: 8 rows")
    assert "people created 2" in result.stdout and "invalid rows 6" in result.stdout
    fresh()
    assert len(db.session.scalars(select(User.id)).all()) == 2


def test_dry_run_writes_nothing(app, tmp_path):
    before = table_counts()
    result = invoke(app, tmp_path, to_csv(ORG), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.startswith("dry run: 5 rows")
    assert "people created 5" in result.stdout
    assert table_counts() == before
    # A dry run of an invalid file lists the errors, without failing.
    result = invoke(app, tmp_path, INVALID, "--dry-run")
    assert result.exit_code == 0 and "line 4 [email]" in result.stderr


def test_json_prints_the_whole_report(app, tmp_path):
    make_user("gone@example.org", employee_number="0999")
    result = invoke(app, tmp_path, "\ufeff" + to_csv(ORG), "--json", "--deactivate-missing")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["applied"] and report["users_created"] == 5
    assert report["users_deactivated"] == 1
    assert report["changes"][-1] == {
        "line": None, "action": "deactivated", "key": "gone@example.org", "fields": ["active"],
    }  # fmt: skip


def test_a_file_that_is_not_utf8_is_refused(app, tmp_path):
    result = invoke(app, tmp_path, to_csv(ORG).replace("Jansen", "Jänsen").encode("latin-1"))
    assert result.exit_code == 1
    assert "is not UTF-8 text" in result.stderr
