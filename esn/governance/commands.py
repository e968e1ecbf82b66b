"""``esn telemetry …``: the rollup job, readings, retention (cron or ``esn worker`` run them)."""

from __future__ import annotations

import json
from datetime import date

import click
from flask.cli import with_appcontext

from esn.extensions import db


@click.group("telemetry")
def telemetry_cli() -> None:
    """Rollups, readings and retention of the usage telemetry."""


@telemetry_cli.command("rollup")
@click.option("--rebuild", is_flag=True, help="Empty the rollups and build them from scratch.")
@click.option(
    "--through", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day to build."
)
@with_appcontext
def rollup(rebuild: bool, through: object) -> None:
    """Build the rollups up to yesterday (or --through), one day per transaction."""
    from esn.usage.rollup_job import rebuild_rollups, run_rollups

    day = through.date() if through is not None else None  # type: ignore[attr-defined]
    run = (rebuild_rollups if rebuild else run_rollups)(db.engine, day)
    click.echo(f"built {run.days} days ({run.events} events); done through {run.done_through}")


@telemetry_cli.command("reading")
@click.option("--at", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last day measured.")
@click.option("--json", "as_json", is_flag=True, help="Print the reading as JSON.")
@with_appcontext
def reading(at: object, as_json: bool) -> None:
    """Take a reading: freeze every indicator and every process's level."""
    from esn.governance import telemetry_service as service
    from esn.governance.dashboard import reading_out

    refusal = service.telemetry_refusal()
    if refusal is not None:
        raise click.ClickException(refusal)
    day: date = at.date() if at is not None else service.last_complete_day()  # type: ignore[attr-defined]
    if day > service.last_complete_day():
        raise click.ClickException("--at must be a complete day (yesterday or earlier).")
    service.bring_rollups_up_to(day)
    taken = service.do_take_reading(None, day, trigger="manual")
    db.session.commit()
    out = reading_out(taken)
    if as_json:
        click.echo(json.dumps(out.model_dump(mode="json"), indent=2))
        return
    click.echo(f"reading {out.id} measured through {out.measured_through}:")
    for p in out.processes:
        ambition = f", ambition {p.ambition}" if p.ambition is not None else ""
        click.echo(
            f"  {p.process:12} level {p.level} (measured {p.measured_level}, "
            f"declared {p.declared_level}{ambition})"
        )


@telemetry_cli.command("retention")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@with_appcontext
def retention(dry_run: bool) -> None:
    """Delete raw usage events older than 13 months (and person-level rollup rows as old)."""
    from esn.usage.retention import RetentionRefused, apply_retention

    try:
        result = apply_retention(db.engine, dry_run=dry_run)
    except RetentionRefused as exc:
        raise click.ClickException(str(exc)) from None
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {result.events} events before {result.cutoff}, {result.person_days} person "
        f"days, {result.ties} ties, {result.threads} threads; coarsened "
        f"{result.first_contributions} first contributions"
    )
