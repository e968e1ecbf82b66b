"""``esn demo …``: generate the demo organisation, or make sure there is one."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from esn.extensions import db

SIGN_IN_FILE = "demo-sign-ins.json"
SHOWN = (
    ("employee", "an employee"),
    ("innovation_manager", "an innovation manager"),
    ("governance_lead", "a governance lead"),
    ("admin", "an administrator"),
)


@click.group("demo")
def demo_cli() -> None:
    """The demo organisation: a simulated company with a year of activity and readings."""


def instance_file(name: str) -> Path:
    return Path(current_app.instance_path) / name


def _has_content() -> bool:
    from esn.social.models import Post

    return bool(db.session.scalar(select(func.count()).select_from(Post)))


def _generate(employees: int, months: int, seed: int, end: date | None) -> None:
    from esn.demo.company import default_company
    from esn.demo.simulate import Simulation

    passwords = {key: secrets.token_urlsafe(9) for key, _ in SHOWN}
    spec = default_company(employees, months)
    last = end or (datetime.now(UTC).date() - timedelta(days=1))
    click.echo(
        f"Generating {spec.name}: {employees} employees, {months} months of activity "
        f"through {last} (seed {seed}) …"
    )
    result = Simulation(
        spec, seed=seed, end=last, passwords=passwords, progress=lambda m: click.echo(f"  {m}")
    ).run()
    path = instance_file(SIGN_IN_FILE)
    path.touch(mode=0o600)
    path.write_text(
        json.dumps(
            {
                "seed": seed,
                "employees": employees,
                "months": months,
                "generated_in_seconds": round(result.seconds, 1),
                "sign_ins": {
                    k: {"email": e, "password": p} for k, (e, p) in result.sign_ins.items() if p
                },
                "readings": result.reading_ids,
            },
            indent=2,
        )
    )
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items()))
    click.echo(f"Done in {result.seconds:.1f} s: {counts}.")
    _print_readings(result.reading_ids)


def _print_readings(reading_ids: list[int]) -> None:
    from esn.governance.readings import Reading

    for reading_id in reading_ids:
        reading = db.session.get(Reading, reading_id)
        if reading is None:
            continue
        levels = ", ".join(f"{p['process']} L{p['level']}" for p in reading.content["processes"])
        click.echo(f"  reading {reading.id} through {reading.measured_through}: {levels}")


def print_sign_ins() -> None:
    path = instance_file(SIGN_IN_FILE)
    if not path.exists():
        return
    data = json.loads(path.read_text())
    click.echo("Demo organisation sign-ins:")
    for key, label in SHOWN:
        entry = data["sign_ins"].get(key)
        if entry:
            click.echo(f"  {label:24} {entry['email']} / {entry['password']}")
    click.echo(f"  (kept in {path})")


@demo_cli.command("generate")
@click.option("--employees", default=400, show_default=True, type=click.IntRange(40, 200_000))
@click.option("--months", default=12, show_default=True, type=click.IntRange(3, 60))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--end",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Last simulated day (default: yesterday).",
)
@with_appcontext
def generate(employees: int, months: int, seed: int, end: datetime | None) -> None:
    """Create the demo company and act out its months through the product's actions, taking
    readings along the way. Needs a database without posts."""
    if _has_content():
        raise click.ClickException("the database holds content already; use an empty one")
    _generate(employees, months, seed, end.date() if end is not None else None)
    print_sign_ins()


@demo_cli.command("ensure")
@with_appcontext
def ensure() -> None:
    """Create the default demo organisation unless the database holds content already (the
    README's run command calls this); print the demo sign-ins."""
    if not _has_content():
        _generate(400, 12, 7, None)
    print_sign_ins()
