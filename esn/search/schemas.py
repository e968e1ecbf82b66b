"""Shapes of the search API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from esn.api.types import Input, Output

DocTypeName = Literal["person", "post", "article", "comment", "group", "hashtag", "photo"]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class SearchQueryIn(Input):
    q: str = Field("", max_length=200, description="Words to find (syntax characters are ignored).")
    type: list[DocTypeName] = Field(
        default_factory=list, max_length=7, description="Only these types (default: all)."
    )
    department: list[Keyword] = Field(
        default_factory=list, max_length=10, description="People in these departments."
    )
    location: list[Keyword] = Field(default_factory=list, max_length=10)
    skill: list[Keyword] = Field(default_factory=list, max_length=10)
    limit: int = Field(20, ge=1, le=50)
    offset: int = Field(0, ge=0, le=1000)


class SuggestQueryIn(Input):
    prefix: str = Field(min_length=1, max_length=100)
    limit: int = Field(8, ge=1, le=20)


class SearchItem(Output):
    type: DocTypeName
    id: int
    title: str = Field(description="A name, a title, a tag, or the start of the text.")
    snippet_html: str = Field(
        description="Escaped text with the matched words in <mark> (no other markup)."
    )
    url: str = Field(description="The API resource of the item (for a comment: its post).")
    post_id: int | None = None
    group_id: int | None = None


class SearchPage(Output):
    items: list[SearchItem]
    total: int
    exact_counts: bool = Field(
        description="False when more matched than are counted (10,000): total and facet "
        "counts are then lower bounds, and the newest matches are ranked."
    )
    facets: dict[str, dict[str, int]]
    degraded: bool = Field(description="Answered by the SQL fallback: Elasticsearch is down.")


class Suggestion(Output):
    id: int
    label: str = Field(description="A person's name, or a hashtag.")
    handle: str | None = None


class SuggestionList(Output):
    items: list[Suggestion]
    degraded: bool
