"""The OpenAPI document and a browsable page of it."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, json, render_template

from esn.api.spec import build_openapi

bp = Blueprint("api", __name__, url_prefix="/api/v1")

API_TITLE = "Enterprise social network API"
API_VERSION = "1"


def openapi_document() -> dict[str, object]:
    cached = current_app.extensions.get("esn.openapi")
    if cached is None:
        cached = build_openapi(current_app, API_TITLE, API_VERSION)
        current_app.extensions["esn.openapi"] = cached
    return cached


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(openapi_document()), mimetype="application/json")


@bp.get("/docs")
def docs() -> str:
    """A server-rendered reference: no script, works offline."""
    return render_template("api_docs.html", spec=openapi_document())
