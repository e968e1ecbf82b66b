"""``esn notifications …``: the digest pass by hand (``esn worker`` runs it every ten minutes)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import with_appcontext

from esn.clock import now


@click.group("notifications")
def notifications_cli() -> None:
    """Notification digests."""


def _moment(at: str | None) -> datetime:
    if at is None:
        return now()
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(
            f"not an ISO 8601 date and time: {at!r}", param_hint="--at"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > now():
        raise click.BadParameter("must not be in the future", param_hint="--at")
    return moment


@notifications_cli.command("digest")
@click.option(
    "--at",
    default=None,
    help="Build as of this moment (ISO 8601, e.g. 2025-06-11T05:00:00+00:00; without an offset: "
    "UTC; not in the future). Default: now.",
)
@with_appcontext
def digest(at: str | None) -> None:
    """Build the daily and weekly digests whose window has ended, e-mail them (when SMTP_HOST
    is set) and retry the e-mails that failed in the last seven days. Running it again sends
    nothing twice."""
    from esn.realtime.digests import run_digests

    click.echo(str(run_digests(_moment(at))))
