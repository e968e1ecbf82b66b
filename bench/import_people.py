"""Benchmark of the HR import (esn.accounts.importer) against the driver's floor.

    .venv/bin/python bench/import_people.py [--rows 10000] [--database-url URL] [--repeat N]

Generates a realistic HR export (divisions, departments and teams, skills, roles, externals,
some bios), migrates a fresh database (a SQLite file in a temporary directory, or a fresh
schema of the PostgreSQL server named by ``--database-url``, dropped at the end) and prints
rows per second of:

(a) the first import (everyone created), as ``esn users import`` runs it: parse, validate,
    plan and write in one transaction, committed;
(b) the second import of the same file (nothing changes, nothing is written);
(c) the floor: one ``executemany`` INSERT of the same user rows into a table of the same shape
    as ``users`` (same columns, indexes, unique and foreign keys) with the raw DB-API driver
    (sqlite3 / psycopg) in one transaction, committed. No import can be faster than this.

plus the dry run of the first file (parse, validate and plan only). With ``--repeat N`` every
figure is the best of N runs, each on a fresh database.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask
from sqlalchemy import create_engine, make_url, select, text

from esn import create_app
from esn.accounts.importer import import_people
from esn.accounts.schemas import ImportReport
from esn.database import write_intent
from esn.directory.models import Department
from esn.extensions import db

COLUMNS = [
    "employee_number", "email", "display_name", "department_code", "department_name",
    "parent_department_code", "title", "location", "bio", "time_zone", "skills", "roles",
    "is_external",
]  # fmt: skip
FIRST = ["Anna", "Bo", "Cas", "Daan", "Eva", "Femke", "Gijs", "Hugo", "Ines", "Joris", "Karin",
         "Lotte", "Milan", "Noor", "Olivier", "Pien", "Quinten", "Roos", "Sem", "Tess", "Umar",
         "Vera", "Wout", "Xena", "Yara", "Zeno", "Léa", "Jürgen", "Søren", "Ana-Maria"]  # fmt: skip
LAST = ["de Vries", "Jansen", "Smit", "Bakker", "Visser", "Meijer", "Mulder", "de Boer", "Bos",
        "Dekker", "Dubois", "Martin", "Bernard", "Silva", "Santos", "Müller", "Schmidt", "Nowak",
        "Kowalski", "García", "Rossi", "O'Brien", "van den Berg", "Peeters", "Hansen"]  # fmt: skip
SITES = [("Delft", "Europe/Amsterdam"), ("Lyon", "Europe/Paris"), ("Porto", "Europe/Lisbon"),
         ("Kraków", "Europe/Warsaw"), ("Austin", "America/Chicago"),
         ("Pune", "Asia/Kolkata")]  # fmt: skip
TITLES = ["Engineer", "Senior engineer", "Analyst", "Scientist", "Technician", "Team lead",
          "Manager", "Director", "Assistant", "Consultant", "Specialist", "Operator",
          ""]  # fmt: skip
DIVISIONS = ["Research", "Manufacturing", "Sales", "Finance", "People", "IT", "Legal",
             "Supply chain", "Marketing", "Quality"]  # fmt: skip


def generate(rows: int, seed: int = 2026) -> str:
    """An HR export of ``rows`` people: 10 divisions of 4-8 departments of 0-4 teams; each row
    names its department and parent, as HR systems export them."""
    rng = random.Random(seed)
    units: list[tuple[str, str, str]] = []  # code, name, parent code
    for d, division in enumerate(DIVISIONS):
        units.append((f"D{d}", division, ""))
        for s in range(rng.randint(4, 8)):
            units.append((f"D{d}-{s}", f"{division} department {s + 1}", f"D{d}"))
            for t in range(rng.randint(0, 4)):
                units.append((f"D{d}-{s}-{t}", f"{division} {s + 1} team {t + 1}", f"D{d}-{s}"))
    topics = ("Python", "SQL", "Lean", "HPLC", "SAP", "Negotiation", "Excel", "Six Sigma",
              "Kotlin", "Statistics")  # fmt: skip
    skills = [f"{topic} {n}" for topic in topics for n in range(60)]
    weights = [1 / (i + 1) for i in range(len(skills))]  # a few skills are common, most rare
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    for n in range(rows):
        code, name, parent = units[n] if n < len(units) else rng.choice(units)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        location, zone = rng.choice(SITES)
        external = rng.random() < 0.03
        writer.writerow({
            "employee_number": f"{100000 + n}",
            "email": f"{first}.{last}.{n}".lower().replace(" ", "").replace("'", "")
            + ("@partner.example" if external else "@example.org"),
            "display_name": f"{first} {last}",
            "department_code": "" if external else code,
            "department_name": "" if external else name,
            "parent_department_code": "" if external else parent,
            "title": rng.choice(TITLES),
            "location": location,
            "bio": rng.choice(["", "", "", f"{first} works on {name.lower()}.\nAsk about it."]),
            "time_zone": zone,
            "skills": ";".join(dict.fromkeys(rng.choices(skills, weights, k=rng.randint(0, 6)))),
            "roles": rng.choices(["", "employee;moderator", "employee;hr",
                                  "employee;innovation_manager"], [90, 4, 3, 3])[0],
            "is_external": "yes" if external else "",
        })  # fmt: skip
    return out.getvalue()


# --- databases ------------------------------------------------------------------------------------


@contextmanager
def fresh_database(base_url: str | None, workdir: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if base_url is None:
        path = workdir / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
        yield f"sqlite:///{path}"
        return
    schema = f"esn_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in base_url else "?"
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_app(url: str, workdir: Path) -> Flask:
    from flask_migrate import upgrade

    app = create_app({
        "DATABASE_URL": url,
        "INSTANCE_PATH": str(workdir / "instance"),
        "SECRET_KEY": "benchmark-secret-key-not-for-production",
        "OUTBOX_DISPATCH": "sync",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    with app.app_context():
        upgrade()
    return app


def timed_import(app: Flask, text_: str, **options: Any) -> tuple[float, ImportReport]:
    """Seconds for one import as ``esn users import`` runs it (commit included)."""
    with app.app_context():
        started = time.perf_counter()
        with write_intent():
            report = import_people(text_, actor=None, **options)
            if report.applied:
                db.session.commit()
            else:
                db.session.rollback()
        elapsed = time.perf_counter() - started
        db.session.remove()
    if report.errors:
        raise SystemExit(f"the generated file is invalid: {report.errors[:3]}")
    return elapsed, report


# --- the floor ------------------------------------------------------------------------------------

FLOOR_COLUMNS = ("email", "display_name", "employee_number", "department_id", "title",
                 "location", "bio", "time_zone", "is_external", "is_bot", "is_active",
                 "auth_epoch", "created_at", "updated_at")  # fmt: skip


def floor_rows(app: Flask, text_: str) -> list[tuple[Any, ...]]:
    """The users rows the import writes for ``text_``, as plain tuples for the driver."""
    with app.app_context():
        ids = dict(db.session.execute(select(Department.code, Department.id)).tuples().all())
        db.session.remove()
    moment = datetime.now(UTC)
    rows = []
    for r in csv.DictReader(io.StringIO(text_, newline="")):
        rows.append((
            r["email"].lower(), r["display_name"], r["employee_number"],
            ids.get(r["department_code"]), r["title"], r["location"], r["bio"],
            r["time_zone"] or "UTC", r["is_external"] == "yes", False, True, 0, moment, moment,
        ))  # fmt: skip
    return rows


def floor(url: str, rows: list[tuple[Any, ...]]) -> float:
    """Seconds for one executemany INSERT of ``rows`` into a copy of ``users``, committed."""
    columns = ", ".join(FLOOR_COLUMNS)
    if url.startswith("sqlite"):
        path = make_url(url).database
        assert path is not None
        conn = sqlite3.connect(path, isolation_level=None)
        # The settings esn.database gives every connection of the application.
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'users'").fetchone()[0]
        conn.execute(
            ddl.replace('"users"', '"users_floor"', 1).replace(
                "CREATE TABLE users", "CREATE TABLE users_floor", 1
            )
        )
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' "
            "AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(
                sql.replace(" ix_users_", " ix_users_floor_").replace(
                    " ON users ", " ON users_floor "
                )
            )
        placeholders = ", ".join("?" for _ in FLOOR_COLUMNS)
        sqlite_rows = [r[:-2] + (r[-2].replace(tzinfo=None).isoformat(" "),) * 2 for r in rows]
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO users_floor ({columns}) VALUES ({placeholders})", sqlite_rows
        )
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return elapsed

    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE users_floor (LIKE users INCLUDING ALL)")
        conn.execute(
            "ALTER TABLE users_floor ADD FOREIGN KEY (department_id) REFERENCES departments (id)"
        )
        conn.commit()
        placeholders = ", ".join("%s" for _ in FLOOR_COLUMNS)
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO users_floor ({columns}) VALUES ({placeholders})", rows)
        conn.commit()
        return time.perf_counter() - started


# --- main -----------------------------------------------------------------------------------------


def best_of(repeat: int, run: Callable[[], dict[str, float]]) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(repeat):
        for key, seconds in run().items():
            best[key] = min(seconds, best.get(key, seconds))
    return best


def server_version(url: str | None) -> str:
    if url is None:
        return f"SQLite {sqlite3.sqlite_version} (file, WAL, synchronous=FULL)"
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return f"PostgreSQL {version}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server (a fresh schema is created and dropped); "
                        "default: a SQLite file in a temporary directory")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="report the best of N runs")
    args = parser.parse_args(argv)

    text_ = generate(args.rows)
    with tempfile.TemporaryDirectory(prefix="esn-bench-") as tmp:
        workdir = Path(tmp)

        def once() -> dict[str, float]:
            with fresh_database(args.database_url, workdir) as url:
                app = make_app(url, workdir)
                dry, _ = timed_import(app, text_, dry_run=True)
                first, report = timed_import(app, text_)
                assert report.users_created == args.rows, report.users_created
                second, again = timed_import(app, text_)
                assert again.users_unchanged == args.rows and not again.changes
                rows = floor_rows(app, text_)
                with app.app_context():
                    db.engine.dispose()
                return {"dry": dry, "first": first, "second": second, "floor": floor(url, rows)}

        figures = best_of(args.repeat, once)

    n = args.rows
    print(f"HR import of {n} people: {server_version(args.database_url)}; Python "
          f"{platform.python_version()}; {os.cpu_count()} CPUs; best of {args.repeat}")  # fmt: skip
    print(f"{'':44}{'seconds':>9}{'rows/s':>10}{'x floor':>9}")
    lines = [
        ("(a) first import (all created)", figures["first"]),
        ("(b) second import (no changes)", figures["second"]),
        ("    dry run of the first file", figures["dry"]),
        ("(c) floor: raw executemany INSERT of users", figures["floor"]),
    ]
    for label, seconds in lines:
        print(f"{label:44}{seconds:9.3f}{n / seconds:10.0f}{seconds / figures['floor']:9.1f}")


if __name__ == "__main__":
    main()
