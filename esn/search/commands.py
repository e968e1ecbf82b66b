"""``esn search …``: full rebuild, status and the consistency check."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from esn.clock import system_now
from esn.extensions import db
from esn.outbox.models import OutboxJob
from esn.search.backend import DOC_TYPES, Document, SearchUnavailable
from esn.search.documents import all_documents, document_counts_in_database
from esn.search.indexing import TOPIC
from esn.search.service import backend_for


@click.group("search")
def search_cli() -> None:
    """The search index."""


def _app() -> Any:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@search_cli.command("reindex")
@with_appcontext
def reindex() -> None:
    """Build the whole index afresh from the database and swap it in (searches keep being
    answered from the old index until it is done)."""
    backend = backend_for(_app())
    db.session.rollback()

    def counted() -> Iterator[Document]:
        with click.progressbar(
            all_documents(), label="Indexing", show_pos=True, file=sys.stderr
        ) as bar:
            yield from bar

    started = system_now()
    total = backend.rebuild(counted())
    seconds = (system_now() - started).total_seconds()
    click.echo(f"indexed {total} documents with {backend.name} in {seconds:.1f} s")


def search_status() -> dict[str, Any]:
    backend = backend_for(_app())
    pending = (OutboxJob.topic == TOPIC, OutboxJob.dead_at.is_(None))
    try:
        documents: dict[str, int] | str = backend.counts()
    except SearchUnavailable as exc:
        documents = f"unavailable: {exc}"
    oldest = db.session.scalar(select(func.min(OutboxJob.created_at)).where(*pending))
    return {
        "backend": backend.name,
        "documents": documents,
        "pending_jobs": db.session.scalar(
            select(func.count()).select_from(OutboxJob).where(*pending)
        ),
        "failing_jobs": db.session.scalar(
            select(func.count()).select_from(OutboxJob).where(*pending, OutboxJob.attempts > 0)
        ),
        "dead_jobs": db.session.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.topic == TOPIC, OutboxJob.dead_at.is_not(None))
        ),
        "lag_seconds": round((system_now() - oldest).total_seconds(), 3) if oldest else 0.0,
    }


@search_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@with_appcontext
def status(as_json: bool) -> None:
    """Backend, documents per type, and the outbox lag and failures of indexing jobs."""
    report = search_status()
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"backend: {report['backend']}")
    if isinstance(report["documents"], str):
        click.echo(f"  documents: {report['documents']}")
    else:
        for doc_type, count in report["documents"].items():
            click.echo(f"  {doc_type}: {count}")
    click.echo(
        f"index jobs pending: {report['pending_jobs']} (failing: {report['failing_jobs']}, "
        f"dead: {report['dead_jobs']}); oldest waiting {report['lag_seconds']} s"
    )


def differences() -> list[tuple[str, int, str]]:
    """(type, id, what) for every document the index holds wrongly: missing, left over after
    a delete, or at another version than the database's."""
    backend = backend_for(_app())
    truth = document_counts_in_database()
    out: list[tuple[str, int, str]] = []
    for doc_type in DOC_TYPES:
        expected = truth.get(doc_type, {})
        stored = dict(backend.stored(doc_type))
        for object_id in sorted(expected.keys() - stored.keys()):
            out.append((doc_type, object_id, "missing"))
        for object_id in sorted(stored.keys() - expected.keys()):
            out.append((doc_type, object_id, "not in the database (or not to be found)"))
        for object_id in sorted(expected.keys() & stored.keys()):
            if expected[object_id] != stored[object_id]:
                out.append(
                    (
                        doc_type,
                        object_id,
                        f"version {stored[object_id]} indexed, {expected[object_id]} in the "
                        "database",
                    )
                )
    return out


@search_cli.command("check")
@with_appcontext
def check() -> None:
    """Compare (id, version) of every document in the database and in the index; print the
    differences and exit 1 when there are any."""
    found = differences()
    for doc_type, object_id, what in found:
        click.echo(f"{doc_type} {object_id}: {what}")
    click.echo(f"{len(found)} differences")
    if found:
        sys.exit(1)
