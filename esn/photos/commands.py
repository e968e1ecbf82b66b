"""``esn photos``: housekeeping of stored photo files (also run by ``esn worker``)."""

from __future__ import annotations

import logging
from datetime import timedelta

import click
from flask.cli import with_appcontext

from esn.extensions import db
from esn.photos.actions import sweep_orphan_files, sweep_pending

log = logging.getLogger("esn.photos")


def housekeeping(orphan_age: timedelta = timedelta(hours=1)) -> tuple[int, int]:
    """Forget photos never placed within a day, then remove files no row refers to. Returns
    (photos forgotten, files removed)."""
    forgotten = sweep_pending()
    db.session.commit()  # the purge jobs run after this commit
    removed = sweep_orphan_files(orphan_age)
    db.session.commit()
    return forgotten, removed


@click.group("photos")
def photos_cli() -> None:
    """Photo storage."""


@photos_cli.command("sweep")
@click.option(
    "--orphan-age",
    default=60,
    show_default=True,
    help="Minutes a file without a row must have existed before it is removed.",
)
@with_appcontext
def sweep(orphan_age: int) -> None:
    """Remove uploads never placed (after 24 hours) and files left by interrupted uploads."""
    forgotten, removed = housekeeping(timedelta(minutes=orphan_age))
    click.echo(f"{forgotten} unplaced photos removed, {removed} orphan files removed")
