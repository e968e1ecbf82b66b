"""The ``esn`` command line: ``flask`` with this application, plus the project's commands."""

from __future__ import annotations

import json
import logging
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from esn.database import write_intent
from esn.extensions import db


def _create_app() -> Flask:
    from esn import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Enterprise social network: serve, migrate, import and run background work."""


def register(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(worker)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(init_instance)
    app.cli.add_command(api_spec)

    from esn.governance.commands import telemetry_cli

    app.cli.add_command(telemetry_cli)

    from esn.demo.commands import demo_cli

    app.cli.add_command(demo_cli)

    from esn.photos.commands import photos_cli

    app.cli.add_command(photos_cli)

    from esn.realtime.commands import notifications_cli

    app.cli.add_command(notifications_cli)

    from esn.search.commands import search_cli

    app.cli.add_command(search_cli)


# --- users ---------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Manage people."""


@users.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option(
    "--skip-invalid", is_flag=True, help="Import the valid rows even if some are invalid."
)
@click.option(
    "--deactivate-missing",
    is_flag=True,
    help="Deactivate people whose employee number is not in the file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@with_appcontext
def import_users(
    file: Any, dry_run: bool, skip_invalid: bool, deactivate_missing: bool, as_json: bool
) -> None:
    """Import departments and people from the HR system's CSV FILE (columns: docs/operations.md)."""
    from esn.accounts.importer import import_people

    try:
        text = file.read()
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not UTF-8 text") from None
    started = time.perf_counter()
    with write_intent():
        report = import_people(
            text,
            actor=None,
            dry_run=dry_run,
            skip_invalid=skip_invalid,
            deactivate_missing=deactivate_missing,
        )
        if report.applied:
            db.session.commit()
        else:
            db.session.rollback()
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(report.model_dump(mode="json"), indent=1))
    else:
        for err in report.errors[:50]:
            where = f" [{err.field}]" if err.field else ""
            click.echo(f"line {err.line}{where}: {err.message}", err=True)
        if len(report.errors) > 50:
            click.echo(f"... and {len(report.errors) - 50} more errors", err=True)
        changed = (
            report.users_created
            + report.users_updated
            + report.users_deactivated
            + report.departments_created
            + report.departments_updated
        )
        verdict = "applied" if report.applied else ("dry run" if dry_run else "NOT applied")
        click.echo(
            f"{verdict}: {report.rows} rows in {elapsed:.2f}s; departments created "
            f"{report.departments_created}, updated {report.departments_updated}; people created "
            f"{report.users_created}, updated {report.users_updated}, unchanged "
            f"{report.users_unchanged}, deactivated {report.users_deactivated}; invalid rows "
            f"{len({e.line for e in report.errors})}" + ("" if changed else " — no changes")
        )
    if report.errors and not report.applied and not dry_run:
        sys.exit(1)


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", "display_name", required=True)
@click.option("--role", "roles", multiple=True, help="employee, moderator, …, admin (repeatable)")
@click.option("--password", default=None, help="Omit to generate one (printed once).")
@with_appcontext
def create_user(
    email: str, display_name: str, roles: tuple[str, ...], password: str | None
) -> None:
    """Create a person, e.g. the first administrator."""
    from pydantic import ValidationError

    from esn.accounts.actions import check_create_user
    from esn.accounts.schemas import UserCreate
    from esn.api.problems import Problem

    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        body = UserCreate.model_validate(
            {
                "email": email,
                "display_name": display_name,
                "roles": list(roles) or ["employee"],
                "password": password,
            }
        )
        with write_intent():
            user = check_create_user(None, body.model_dump())
            db.session.commit()
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None
    except Problem as exc:
        raise click.ClickException(exc.detail or exc.title) from None
    click.echo(f"created {user.email} (id {user.id})")
    if generated:
        click.echo(f"password: {password}")


@click.command("init")
@click.option("--admin-email", default="admin@example.org", show_default=True)
@with_appcontext
def init_instance(admin_email: str) -> None:
    """Bring the database to the current schema and make sure an administrator exists.

    Idempotent. The first run creates the administrator with a random password, stored in the
    instance directory (mode 0600) so that the sign-in can be printed on later starts too."""
    from flask_migrate import upgrade

    from esn.accounts.actions import do_create_user
    from esn.accounts.models import Role, User, UserRole

    upgrade()
    secret_file = instance_file("initial-admin.txt")
    with write_intent():
        has_admin = db.session.scalar(
            select(UserRole.user_id).where(UserRole.role == Role.admin).limit(1)
        )
        if has_admin is None:
            password = secrets.token_urlsafe(12)
            existing = db.session.scalar(select(User).where(User.email == admin_email))
            if existing is not None:
                raise click.ClickException(f"{admin_email} exists but is not an administrator")
            do_create_user(
                None,
                {
                    "email": admin_email,
                    "display_name": "Administrator",
                    "roles": [Role.admin, Role.employee],
                    "password": password,
                },
            )
            db.session.commit()
            secret_file.touch(mode=0o600)
            secret_file.write_text(f"{admin_email}\n{password}\n")
    if secret_file.exists():
        email, password = secret_file.read_text().split("\n")[:2]
        click.echo(f"Administrator sign-in: {email} / {password}  (change it; {secret_file})")


# --- background work ----------------------------------------------------------------------------


@click.command()
@click.option("--once", is_flag=True, help="Drain what is due, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--batch", default=100, show_default=True)
@with_appcontext
def worker(once: bool, interval: float, batch: int) -> None:
    """Run outbox jobs (search indexing, realtime delivery, notifications).

    Any number of workers may run at once, in any number of processes: each job is claimed with
    a lease before it runs, so no job runs twice concurrently."""
    dispatcher = current_app.extensions["esn.outbox"]
    stopping = False

    def _stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    total = 0
    next_telemetry = 0.0
    while not stopping:
        if time.monotonic() >= next_telemetry:
            # Rollups and the scheduled reading, photo housekeeping and the notification
            # digests: a few seconds at most, every ten minutes.
            next_telemetry = time.monotonic() + TELEMETRY_EVERY_S
            _telemetry_pass()
            _photo_pass()
            _digest_pass()
        ran = dispatcher.run_jobs(limit=batch)
        total += ran
        if once and ran == 0:
            break
        if ran == 0:
            time.sleep(interval)
    click.echo(f"worker {dispatcher.worker_id} ran {total} jobs")


TELEMETRY_EVERY_S = 600.0


def _telemetry_pass() -> None:
    from esn.governance.telemetry_service import run_schedule

    try:
        outcome = run_schedule()
    except Exception:  # a failing pass must not stop the outbox; it is retried next time
        db.session.rollback()
        logging.getLogger("esn.telemetry").exception("telemetry pass failed")
        return
    logging.getLogger("esn.telemetry").info("telemetry pass: %s", outcome)


def _photo_pass() -> None:
    from esn.photos.commands import housekeeping

    try:
        forgotten, removed = housekeeping()
    except Exception:  # like the telemetry pass: logged, retried next time
        db.session.rollback()
        logging.getLogger("esn.photos").exception("photo housekeeping failed")
        return
    if forgotten or removed:
        logging.getLogger("esn.photos").info(
            "photo housekeeping: %d unplaced photos, %d orphan files removed", forgotten, removed
        )


def _digest_pass() -> None:
    from esn.realtime.digests import run_digests

    try:
        run = run_digests()
    except Exception:  # like the telemetry pass: logged, retried next time
        db.session.rollback()
        logging.getLogger("esn.realtime").exception("digest pass failed")
        return
    if run.digests or run.emailed or run.email_failed or run.errors:
        logging.getLogger("esn.realtime").info("digest pass: %s", run)


@click.group("outbox")
def outbox_cli() -> None:
    """Inspect the outbox."""


@outbox_cli.command("status")
@with_appcontext
def outbox_status() -> None:
    from esn.outbox.dispatch import status

    click.echo(json.dumps(status(db.session())))


@click.command("api-spec")
@with_appcontext
def api_spec() -> None:
    """Print the OpenAPI 3.1 document."""
    from esn.api.routes import openapi_document

    click.echo(json.dumps(openapi_document(), indent=1))


def instance_file(name: str) -> Path:
    return Path(current_app.instance_path) / name
