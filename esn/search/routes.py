"""HTTP boundary of search: results with facets, and the @mention and # pickers."""

from __future__ import annotations

from flask import Blueprint, current_app
from markupsafe import escape

from esn.accounts.auth import require_user
from esn.accounts.models import User
from esn.api.spec import operation
from esn.search.backend import DOC_TYPES, HIGHLIGHT_END, HIGHLIGHT_START, SearchQuery
from esn.search.schemas import (
    SearchItem,
    SearchPage,
    SearchQueryIn,
    Suggestion,
    SuggestionList,
    SuggestQueryIn,
)
from esn.search.service import Found, search, suggest

bp = Blueprint("search", __name__, url_prefix="/api/v1")
TAGS = ["search"]
TITLE_CHARS = 120


def snippet_html(snippet: str) -> str:
    """Escape the backend's plain text, then turn its markers into <mark> (and drop stray
    ones), so that nothing from the index is ever served as markup."""
    html = str(escape(snippet))
    html = html.replace(HIGHLIGHT_START, "<mark>").replace(HIGHLIGHT_END, "</mark>")
    if html.count("<mark>") != html.count("</mark>"):
        html = html.replace("<mark>", "").replace("</mark>", "")
    return html


def _item(found: Found) -> SearchItem:
    hit, obj = found.hit, found.obj
    post_id: int | None = None
    group_id: int | None = getattr(obj, "group_id", None)
    match hit.type:
        case "person":
            title, url = obj.display_name, f"/api/v1/people/{obj.id}"
            group_id = None
        case "post" | "article":
            title = obj.title or obj.body[:TITLE_CHARS]
            url, post_id = f"/api/v1/posts/{obj.id}", obj.id
        case "comment":
            title, post_id = obj.body[:TITLE_CHARS], obj.post_id
            url = f"/api/v1/posts/{obj.post_id}"
        case "group":
            title, url, group_id = obj.name, f"/api/v1/groups/{obj.id}", obj.id
        case "photo":
            title, url, post_id = obj.caption[:TITLE_CHARS], f"/api/v1/photos/{obj.id}", obj.post_id
        case _:  # hashtag
            title, url, group_id = f"#{obj.label}", f"/api/v1/hashtags/{obj.name}", None
    return SearchItem(
        type=hit.type,
        id=hit.id,
        title=title,
        snippet_html=snippet_html(hit.snippet or title),
        url=url,
        post_id=post_id,
        group_id=group_id,
    )


@operation(
    bp, "/search", "GET", summary="Search people and content", tags=TAGS,
    query=SearchQueryIn, response=SearchPage,
)  # fmt: skip
def search_all(query: SearchQueryIn) -> SearchPage:
    """Finds only what you may see; ``total`` and ``facets`` count only that. When more than
    10,000 match, counting stops: ``exact_counts`` is false, the counts are lower bounds, and
    the newest matches are the ones ranked. Syntax
    characters in ``q`` are ignored (every word is searched for as written; the last one also
    as a prefix). Without words, people can be listed by ``department``/``location``/``skill``."""
    user = require_user()
    filters = {
        name: tuple(values)
        for name, values in (
            ("department", query.department),
            ("location", query.location),
            ("skill", query.skill),
        )
        if values
    }
    answer = search(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user,
        SearchQuery(
            text=query.q,
            types=frozenset(query.type or DOC_TYPES),
            filters=filters,
            facets=("type", "department", "location", "skill"),
            limit=query.limit,
            offset=query.offset,
        ),
    )
    return SearchPage(
        items=[_item(f) for f in answer.items],
        total=answer.total,
        exact_counts=answer.exact_counts,
        facets=answer.facets,
        degraded=answer.degraded,
    )


def _suggest(kind: str, query: SuggestQueryIn) -> SuggestionList:
    user = require_user()
    found, degraded = suggest(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        user,
        kind,  # type: ignore[arg-type]
        query.prefix,
        query.limit,
    )
    items = []
    for f in found:
        if isinstance(f.obj, User):
            items.append(Suggestion(id=f.obj.id, label=f.obj.display_name, handle=f.obj.handle))
        else:
            items.append(Suggestion(id=f.obj.id, label=f.obj.label))
    return SuggestionList(items=items, degraded=degraded)


@operation(
    bp, "/search/people", "GET", summary="People by name or handle prefix (@mentions)",
    tags=TAGS, query=SuggestQueryIn, response=SuggestionList,
)  # fmt: skip
def suggest_people(query: SuggestQueryIn) -> SuggestionList:
    return _suggest("person", query)


@operation(
    bp, "/search/hashtags", "GET", summary="Hashtags by prefix (#picker)", tags=TAGS,
    query=SuggestQueryIn, response=SuggestionList,
)  # fmt: skip
def suggest_hashtags(query: SuggestQueryIn) -> SuggestionList:
    """Only tags of posts you may read."""
    return _suggest("hashtag", query)
