"""What every search backend is given and gives back, and the protocol it implements.

Visibility travels with each document as **audience tokens**: a document may be seen by a viewer
who holds at least one of its tokens. The tokens are derived from the access policy
(``esn.search.documents``) and are the first two layers of the three:

1. the index carries them (``Document.audience``);
2. every query is filtered by the viewer's tokens (``Audience.tokens``), so hits, totals and
   facet counts only ever count what the filter lets through;
3. the search service asks the access policy again for every hit before returning it; a hit
   removed there is logged as an error, because it means the tokens are wrong.

Tokens: ``user:<id>`` (the person themself: drafts, their own posts), ``group:<id>`` (members of
a group), ``internal`` (every active member of the organisation who is not external).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

DocType = Literal["person", "post", "article", "comment", "group", "hashtag", "photo"]
DOC_TYPES: tuple[DocType, ...] = (
    "person",
    "post",
    "article",
    "comment",
    "group",
    "hashtag",
    "photo",
)
INTERNAL = "internal"


def user_token(user_id: int) -> str:
    return f"user:{user_id}"


def group_token(group_id: int) -> str:
    return f"group:{group_id}"


@dataclass(frozen=True, init=False)
class Document:
    """One searchable thing, as the index stores it.

    ``version`` only grows for a given (type, id): an index keeps the highest version it was
    given, so a replayed or late job never overwrites newer content (Elasticsearch's external
    versions; a ``WHERE version < :new`` in SQL)."""

    type: DocType
    id: int
    version: int
    audience: frozenset[str]
    title: str = ""  # a person's name, a group's or an article's title, a hashtag
    body: str = ""  # text: a post's, a comment's, a group's description, a caption
    # People: what the directory shows and filters on (keyword fields).
    handle: str | None = None
    job_title: str | None = None
    skills: tuple[str, ...] = ()
    department: str | None = None
    location: str | None = None
    # Content: where it lives and when (recency boost).
    group_id: int | None = None
    author_id: int | None = None
    post_id: int | None = None  # a comment's or a photo's thread
    created_at: datetime | None = None

    def __init__(
        self,
        type: DocType,
        id: int,
        version: int,
        audience: frozenset[str],
        title: str = "",
        body: str = "",
        handle: str | None = None,
        job_title: str | None = None,
        skills: tuple[str, ...] = (),
        department: str | None = None,
        location: str | None = None,
        group_id: int | None = None,
        author_id: int | None = None,
        post_id: int | None = None,
        created_at: datetime | None = None,
    ) -> None:
        # The fields above, with their defaults, set at once: a rebuild makes millions of
        # documents, and the generated __init__ of a frozen dataclass (one object.__setattr__
        # per field) took three times as long. tests/search/test_document_shape.py keeps the
        # two in step.
        object.__setattr__(
            self,
            "__dict__",
            {
                "type": type,
                "id": id,
                "version": version,
                "audience": audience,
                "title": title,
                "body": body,
                "handle": handle,
                "job_title": job_title,
                "skills": skills,
                "department": department,
                "location": location,
                "group_id": group_id,
                "author_id": author_id,
                "post_id": post_id,
                "created_at": created_at,
            },
        )


@dataclass(frozen=True)
class Audience:
    """Who is searching, as index filters: the tokens they hold."""

    user_id: int
    tokens: frozenset[str]


FacetName = Literal["type", "department", "location", "skill"]


@dataclass(frozen=True)
class SearchQuery:
    text: str
    types: frozenset[DocType] = frozenset(DOC_TYPES)
    # Exact keyword filters on people: department, location, skill (any of the values).
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    facets: tuple[FacetName, ...] = ()
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class Hit:
    type: DocType
    id: int
    score: float
    # Plain text with the matched words between the markers below; the API escapes the text and
    # turns the markers into <mark> (never HTML from the index).
    snippet: str = ""


HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    # False when counting stopped at the backend's cap: ``total`` and the facet counts are then
    # lower bounds.
    exact_counts: bool = True


class SearchUnavailable(RuntimeError):
    """The backend cannot be reached: writes stay in the outbox; queries fall back to SQL."""


class SearchBackend(Protocol):
    name: str

    def index(self, documents: Sequence[Document]) -> None:
        """Add or replace documents (a lower version than the stored one is ignored)."""

    def remove(self, refs: Sequence[tuple[DocType, int, int]]) -> None:
        """Remove (type, id) unless the index holds a version above the given one."""

    def search(self, query: SearchQuery, audience: Audience) -> SearchResult:
        """Ranked hits visible to ``audience``; totals and facets count only those."""

    def suggest(
        self, kind: Literal["person", "hashtag"], prefix: str, audience: Audience, limit: int
    ) -> list[Hit]:
        """Autocomplete (the @mention and # pickers): names or handles / tags by prefix."""

    def stored(self, doc_type: DocType) -> Iterator[tuple[int, int]]:
        """(id, version) of every stored document of a type: the consistency check's input."""

    def counts(self) -> dict[str, int]:
        """Documents per type."""

    def rebuild(self, documents: Iterable[Document]) -> int:
        """Build a fresh index from ``documents`` and swap it in without downtime; returns the
        number indexed."""
