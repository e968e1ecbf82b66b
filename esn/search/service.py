"""Which backend answers, and the third layer of visibility.

``backend_for(app)`` gives the configured backend (``SEARCH_BACKEND``: ``sql``, the default, or
``elasticsearch``, imported lazily from ``esn.search.elastic``). ``search(viewer, query)`` asks
it with the viewer's tokens and then asks the access policy again for every hit: a hit refused
there is dropped and logged at ERROR, because it means the tokens are wrong. When Elasticsearch
is configured and unavailable, the SQL backend answers and the result says ``degraded``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Flask
from sqlalchemy import select

from esn import access
from esn.accounts.models import User
from esn.extensions import db
from esn.groups.models import Group
from esn.photos.models import Photo
from esn.search.backend import (
    Audience,
    DocType,
    Hit,
    SearchBackend,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
)
from esn.search.documents import viewer_audience
from esn.search.sql import SqlBackend
from esn.social.models import Comment, Hashtag, Post, PostHashtag

log = logging.getLogger("esn.search")
EXTENSION = "esn.search"


def sql_backend(app: Flask) -> SqlBackend:
    backend = app.extensions.get("esn.search.sql")
    if backend is None:
        backend = app.extensions["esn.search.sql"] = SqlBackend()
    return backend


def backend_for(app: Flask) -> SearchBackend:
    """The configured backend (one per application). Raises ``RuntimeError`` when
    Elasticsearch is configured but its backend is not installed."""
    backend: SearchBackend | None = app.extensions.get(EXTENSION)
    if backend is not None:
        return backend
    if app.config["SEARCH_BACKEND"] == "elasticsearch":
        try:
            from esn.search import elastic
        except ImportError as exc:  # pragma: no cover (depends on the installation)
            raise RuntimeError("SEARCH_BACKEND=elasticsearch, but it is not installed") from exc
        factory = getattr(elastic, "backend_for_app", None)
        if factory is not None:
            backend = factory(app)
        else:
            backend = elastic.ElasticsearchBackend(app.config["ELASTICSEARCH_URL"])
    else:
        backend = sql_backend(app)
    app.extensions[EXTENSION] = backend
    return backend


def use_backend(app: Flask, backend: SearchBackend) -> None:
    """Replace the application's backend (tests, and the Elasticsearch backend's installer)."""
    app.extensions[EXTENSION] = backend


@dataclass
class Found:
    hit: Hit
    obj: Any  # the User, Post, Comment, Group, Photo or Hashtag, already checked


@dataclass
class Answer:
    items: list[Found]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    degraded: bool = False
    exact_counts: bool = True


def _ask(app: Flask, call: Any) -> tuple[Any, bool]:
    backend = backend_for(app)
    try:
        return call(backend), False
    except SearchUnavailable:
        if isinstance(backend, SqlBackend):
            raise
        log.warning("search backend unavailable; answering from SQL", exc_info=True)
        return call(sql_backend(app)), True


def search(app: Flask, viewer: User, query: SearchQuery) -> Answer:
    audience = viewer_audience(viewer)
    result: SearchResult
    result, degraded = _ask(app, lambda b: b.search(query, audience))
    items = checked(viewer, result.hits)
    dropped = len(result.hits) - len(items)
    return Answer(
        items=items,
        total=result.total - dropped,
        facets=result.facets,
        degraded=degraded,
        exact_counts=result.exact_counts,
    )


def suggest(
    app: Flask, viewer: User, kind: Literal["person", "hashtag"], prefix: str, limit: int
) -> tuple[list[Found], bool]:
    audience: Audience = viewer_audience(viewer)
    hits, degraded = _ask(app, lambda b: b.suggest(kind, prefix, audience, limit))
    return checked(viewer, hits), degraded


def checked(viewer: User, hits: list[Hit]) -> list[Found]:
    """The third layer: each hit is loaded and asked about again."""
    out: list[Found] = []
    for hit in hits:
        obj = _allowed(viewer, hit.type, hit.id)
        if obj is None:
            log.error(
                "search filter let through %s %s for user %s",
                hit.type,
                hit.id,
                viewer.id,
                extra={"doc_type": hit.type, "object_id": hit.id, "viewer_id": viewer.id},
            )
            continue
        out.append(Found(hit, obj))
    return out


def _allowed(viewer: User, doc_type: DocType, object_id: int) -> Any:
    match doc_type:
        case "person":
            person = db.session.get(User, object_id)
            ok = person is not None and person.is_active
            return person if ok and access.can(viewer, "profile:read", person) else None
        case "post" | "article":
            post = db.session.get(Post, object_id)
            return post if post is not None and access.can(viewer, "post:read", post) else None
        case "comment":
            comment = db.session.get(Comment, object_id)
            post = db.session.get(Post, comment.post_id) if comment is not None else None
            if comment is None or post is None:
                return None
            return comment if access.can(viewer, "comment:read", (comment, post)) else None
        case "group":
            group = db.session.get(Group, object_id)
            return group if group is not None and access.can(viewer, "group:see", group) else None
        case "photo":
            photo = db.session.get(Photo, object_id)
            return photo if photo is not None and access.can(viewer, "photo:read", photo) else None
        case "hashtag":
            tag = db.session.get(Hashtag, object_id)
            if tag is None:
                return None
            visible = db.session.scalar(
                select(Post.id)
                .join(PostHashtag, PostHashtag.post_id == Post.id)
                .where(PostHashtag.hashtag_id == tag.id, access.visible_posts(viewer))
                .limit(1)
            )
            return tag if visible is not None else None
    return None
