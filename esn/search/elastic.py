"""The Elasticsearch backend: one index per document type, behind aliases.

Layout, for a prefix ``esn`` and the type ``post``:

- ``esn-post`` is the alias every read and write goes through; it names exactly one concrete
  index, ``esn-post-<UTC timestamp>`` (``esn-post-00000000000000000000`` when the index was
  created on first use rather than by a rebuild).
- ``esn-building-post`` names the index a running :meth:`ElasticsearchBackend.rebuild` is
  filling. Writes (:meth:`index`, :meth:`remove`) go to both aliases while it exists, so an edit
  made during a rebuild reaches the new index too; documents carry external versions, so the
  rebuild's older copy of that document is then rejected rather than written over it.

A rebuild creates new indices, bulk-loads them, swaps every ``esn-<type>`` alias in one atomic
``_aliases`` call (search never sees a moment without an index, nor two indices at once), then
deletes the old indices.

Visibility: every document carries its audience tokens in the keyword field ``audience``, and
every query is a ``bool`` whose filter clause holds ``terms: {audience: <the viewer's tokens>}``,
so hits, ``total`` and the aggregation-based facets only ever count what the viewer may see.

Versions: writes use ``version_type=external_gte`` with :attr:`Document.version` (a lower
version than the stored one is refused with a 409, which is the point and not an error; an
equal one is applied, since changes without a time of their own, such as a group's visibility,
keep the version); deletes use ``external_gte`` (delete unless the index holds a higher
version), and leave a tombstone for ``index.gc_deletes`` so a late replay of an older version
is refused too.

Failures: connection errors, timeouts, 429s and 5xx become :class:`SearchUnavailable`, so the
outbox keeps the change and retries, and queries fall back to the SQL backend.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from esn.search.backend import (
    DOC_TYPES,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Audience,
    DocType,
    Document,
    FacetName,
    Hit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
)

if TYPE_CHECKING:  # pragma: no cover
    from elasticsearch import Elasticsearch

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTENT_TYPES: frozenset[DocType] = frozenset({"post", "article", "comment", "photo"})
# The generation of an index created on first use: sorts before every rebuild's timestamp, and
# is the same name in every process, so two workers starting at once cannot create two.
INITIAL_GENERATION = "0" * 20
MAX_QUERY_CHARS = 500  # longer text adds nothing to relevance and only costs clauses
MAX_QUERY_TERMS = 32
MAX_RESULT_WINDOW = 10_000  # Elasticsearch's default index.max_result_window
SNIPPET_CHARS = 160
KEYWORD_LENGTH = 256  # ignore_above of the keyword fields: longer values are not indexed
FACET_FIELDS: dict[FacetName, str] = {
    "type": "type",
    "department": "department",
    "location": "location",
    "skill": "skills",
}
FILTER_FIELDS = {"department": "department", "location": "location", "skill": "skills"}
_MARKERS = str.maketrans({HIGHLIGHT_START: None, HIGHLIGHT_END: None})
_SPLIT = re.compile(r"\s+")

# --- index definition --------------------------------------------------------------------------

ANALYSIS: dict[str, Any] = {
    "filter": {
        "esn_edge": {"type": "edge_ngram", "min_gram": 1, "max_gram": 20},
    },
    "normalizer": {
        "esn_lower": {"type": "custom", "filter": ["lowercase", "asciifolding"]},
    },
    "analyzer": {
        # Words, case- and accent-insensitive: "Zoë" matches "zoe".
        "esn_text": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        # Every prefix of every word, for the pickers ("jo" finds "Jolene Smith").
        "esn_prefix": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "esn_edge"],
        },
        # Every prefix of a whole handle ("ja.d" finds "jane.doe").
        "esn_handle_prefix": {
            "type": "custom",
            "tokenizer": "keyword",
            "filter": ["lowercase", "asciifolding", "esn_edge"],
        },
        "esn_handle": {
            "type": "custom",
            "tokenizer": "keyword",
            "filter": ["lowercase", "asciifolding"],
        },
    },
}

_TEXT = {"type": "text", "analyzer": "esn_text"}
_KEYWORD = {"type": "keyword"}
_NAME = {
    "type": "text",
    "analyzer": "esn_text",
    "fields": {
        # Exact-name boost: the whole name, lowercased and folded.
        "exact": {"type": "keyword", "normalizer": "esn_lower", "ignore_above": KEYWORD_LENGTH},
        "prefix": {"type": "text", "analyzer": "esn_prefix", "search_analyzer": "esn_text"},
    },
}

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "type": _KEYWORD,
        "id": {"type": "long"},
        "version": {"type": "long"},
        "audience": _KEYWORD,
        "title": _NAME,
        "body": _TEXT,
        "handle": {
            "type": "keyword",
            "normalizer": "esn_lower",
            "ignore_above": KEYWORD_LENGTH,
            "fields": {
                "text": {"type": "text", "analyzer": "esn_handle"},
                "prefix": {
                    "type": "text",
                    "analyzer": "esn_handle_prefix",
                    "search_analyzer": "esn_handle",
                },
            },
        },
        "job_title": _TEXT,
        # Keywords for filters and facets (shown as written), text for matching words.
        "skills": {
            "type": "keyword",
            "ignore_above": KEYWORD_LENGTH,
            "fields": {
                "text": _TEXT,
                "exact": {
                    "type": "keyword",
                    "normalizer": "esn_lower",
                    "ignore_above": KEYWORD_LENGTH,
                },
            },
        },
        "department": {
            "type": "keyword",
            "ignore_above": KEYWORD_LENGTH,
            "fields": {"text": _TEXT},
        },
        "location": {"type": "keyword", "ignore_above": KEYWORD_LENGTH, "fields": {"text": _TEXT}},
        "group_id": {"type": "long"},
        "author_id": {"type": "long"},
        "post_id": {"type": "long"},
        "created_at": {"type": "date"},
    },
}

SEARCH_FIELDS = [
    "title^3",
    "handle.text^3",
    "job_title^2",
    "skills.text^2",
    "body",
    "department.text",
    "location.text",
]
HIGHLIGHT_FIELDS = ("body", "title", "job_title")


def _text(value: str) -> str:
    """Text as the index may hold it: no highlight markers (ours alone: text that carried them
    would open or close a <mark> the API did not mean), no lone surrogates (not UTF-8)."""
    return value.translate(_MARKERS).encode("utf-8", "replace").decode("utf-8")


def _keyword(value: str | None) -> str | None:
    return None if value is None else value.encode("utf-8", "replace").decode("utf-8")


def _source(document: Document) -> dict[str, Any]:
    created = document.created_at
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return {
        "type": document.type,
        "id": document.id,
        "version": document.version,
        "audience": sorted(document.audience),
        "title": _text(document.title),
        "body": _text(document.body),
        "handle": _keyword(document.handle),
        "job_title": _text(document.job_title) if document.job_title else None,
        "skills": [_keyword(skill) for skill in document.skills],
        "department": _keyword(document.department),
        "location": _keyword(document.location),
        "group_id": document.group_id,
        "author_id": document.author_id,
        "post_id": document.post_id,
        "created_at": created.isoformat() if created is not None else None,
    }


def _filterable(value: str) -> bool:
    if not value or len(value) > KEYWORD_LENGTH:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _clean_text(text: str) -> str:
    """The query text as words: bounded, without NULs, control characters or lone surrogates
    (none of them printable). Query syntax needs no escaping: the text only ever goes to
    match queries, which analyze it as words, never to query_string."""
    text = "".join(ch if ch.isprintable() else " " for ch in text[: MAX_QUERY_CHARS * 2])
    words = [w for w in _SPLIT.split(text) if w][:MAX_QUERY_TERMS]
    return " ".join(words)[:MAX_QUERY_CHARS]


class RebuildRunning(RuntimeError):
    """Another process is rebuilding the indices of this prefix."""


# --- the backend -------------------------------------------------------------------------------


class ElasticsearchBackend:
    """A :class:`~esn.search.backend.SearchBackend` on an Elasticsearch cluster (8.x or 9.x).

    ``url`` is the cluster (``http://host:9200``; a comma-separated list for several nodes);
    ``prefix`` starts every index and alias name, so several installations (or test runs) can
    share a cluster. ``request_timeout`` bounds queries and small writes, ``bulk_timeout`` each
    bulk chunk of a rebuild. ``refresh=True`` makes every write visible to search before it
    returns (tests; otherwise the index refresh interval, 1 s by default, bounds the lag).
    ``shards``/``replicas`` size new indices; ``chunk_size`` is the bulk chunk. A rebuild deletes
    the old indices ``delete_grace`` seconds after the swap, and clears the indices of a rebuild
    that died if they are older than ``stale_rebuild_after`` seconds (a younger one means a
    rebuild is running: :class:`RebuildRunning`).
    ``node_class`` is handed to the client's transport (an ``elastic_transport`` node class or
    its name: "urllib3", "requests"); other keyword arguments go to the client as they are
    (``api_key``, ``basic_auth``, ``ca_certs``…); ``client`` replaces the client altogether.
    """

    name = "elasticsearch"

    def __init__(
        self,
        url: str = "http://127.0.0.1:9200",
        *,
        prefix: str = "esn",
        request_timeout: float = 5.0,
        bulk_timeout: float = 60.0,
        max_retries: int = 1,
        refresh: bool = False,
        shards: int = 1,
        replicas: int | None = None,
        chunk_size: int = 500,
        stale_rebuild_after: float = 6 * 3600,
        delete_grace: float = 2.0,
        node_class: Any = None,
        client: Elasticsearch | None = None,
        **client_options: Any,
    ) -> None:
        prefix = prefix.strip().lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", prefix):
            raise ValueError(f"invalid index prefix {prefix!r}: lowercase letters, digits, _ . -")
        if client is None:
            try:
                from elasticsearch import Elasticsearch
            except ImportError:  # pragma: no cover - depends on the installation
                raise RuntimeError(
                    "the Elasticsearch search backend needs its client: install the service with "
                    "the 'elasticsearch' extra"
                ) from None
            if node_class is not None:
                client_options["node_class"] = node_class
            client = Elasticsearch(
                [u.strip() for u in url.split(",") if u.strip()],
                request_timeout=request_timeout,
                max_retries=max_retries,
                retry_on_timeout=False,
                **client_options,
            )
        self.client = client
        self.prefix = prefix
        self.request_timeout = request_timeout
        self.bulk_timeout = bulk_timeout
        self.refresh = refresh
        self.shards = shards
        self.replicas = replicas
        self.chunk_size = chunk_size
        self.stale_rebuild_after = stale_rebuild_after
        self.delete_grace = delete_grace
        self._ready: set[DocType] = set()
        self._ready_lock = threading.Lock()

    # --- names --------------------------------------------------------------------------------

    def alias(self, doc_type: DocType) -> str:
        return f"{self.prefix}-{doc_type}"

    def building_alias(self, doc_type: DocType) -> str:
        return f"{self.prefix}-building-{doc_type}"

    def _new_index_name(self, doc_type: DocType, generation: str | None = None) -> str:
        stamp = generation or datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        return f"{self.alias(doc_type)}-{stamp}"

    def _settings(self, *, building: bool = False) -> dict[str, Any]:
        index: dict[str, Any] = {
            "number_of_shards": self.shards,
            # Deletes' tombstones outlive a slow replay or a rebuild's stale copy.
            "gc_deletes": "1h",
            "max_ngram_diff": 19,
        }
        if self.replicas is not None:
            index["number_of_replicas"] = self.replicas
        if building:
            index["refresh_interval"] = "-1"
        return {"index": index, "analysis": ANALYSIS}

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Runs a client call; the cluster being out of reach becomes SearchUnavailable."""
        from elastic_transport import ConnectionError as TransportConnectionError
        from elastic_transport import ConnectionTimeout, TransportError
        from elasticsearch import ApiError

        try:
            return fn(*args, **kwargs)
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise SearchUnavailable(f"elasticsearch {what}: {exc}") from exc
        except ApiError as exc:
            if exc.meta.status in (429, 502, 503, 504):
                raise SearchUnavailable(
                    f"elasticsearch {what}: HTTP {exc.meta.status} {exc.message}"
                ) from exc
            raise
        except TransportError as exc:  # pragma: no cover - other transport faults
            raise SearchUnavailable(f"elasticsearch {what}: {exc}") from exc

    def _es(self, timeout: float | None = None, ignore: tuple[int, ...] = ()) -> Elasticsearch:
        options: dict[str, Any] = {"request_timeout": timeout or self.request_timeout}
        if ignore:
            options["ignore_status"] = list(ignore)
        return self.client.options(**options)

    def ensure_indices(self, types: Iterable[DocType] = DOC_TYPES) -> None:
        """Creates the index and alias of every type that has none (idempotent)."""
        missing = [t for t in types if t not in self._ready]
        if not missing:
            return
        with self._ready_lock:
            for doc_type in missing:
                if doc_type in self._ready:
                    continue
                alias = self.alias(doc_type)
                if not self._call("alias check", self._es().indices.exists_alias, name=alias):
                    name = self._new_index_name(doc_type, INITIAL_GENERATION)
                    created = self._call(
                        "create index",
                        self._es(ignore=(400,)).indices.create,
                        index=name,
                        settings=self._settings(),
                        mappings=MAPPINGS,
                        aliases={alias: {}},
                    )
                    error = dict(created.body).get("error") or {}
                    kind = error.get("type") if isinstance(error, dict) else error
                    # Another process creating the same index a moment ago is fine.
                    if error and kind != "resource_already_exists_exception":
                        raise RuntimeError(f"could not create the search index {name}: {error}")
                    if not self._call("alias check", self._es().indices.exists_alias, name=alias):
                        raise RuntimeError(f"the search index {name} is not behind {alias}")
                self._ready.add(doc_type)

    def _write_targets(self, types: set[DocType]) -> dict[DocType, list[str]]:
        """The aliases a write of each type goes to: the live one, and the one a rebuild is
        filling, if any."""
        self.ensure_indices(types)
        present = self._aliases([self.building_alias(t) for t in types])
        return {
            t: [self.alias(t)]
            + ([self.building_alias(t)] if self.building_alias(t) in present else [])
            for t in types
        }

    def _bulk(
        self,
        actions: Iterable[dict[str, Any]],
        *,
        what: str,
        timeout: float | None = None,
        refresh: bool | None = None,
    ) -> Iterator[tuple[bool, dict[str, Any]]]:
        from elasticsearch import helpers

        client = self._es(timeout or self.request_timeout)
        kwargs: dict[str, Any] = {"require_alias": True}
        if self.refresh if refresh is None else refresh:
            # A forced refresh, not wait_for: a rebuild's new index has refresh_interval -1, and
            # a wait_for write to it would wait for the end of the rebuild.
            kwargs["refresh"] = "true"
        stream = helpers.streaming_bulk(
            client,
            actions,
            chunk_size=self.chunk_size,
            raise_on_error=False,
            raise_on_exception=True,
            max_retries=3,
            initial_backoff=0.5,
            **kwargs,
        )
        iterator = iter(stream)
        while True:
            item = self._call(what, next, iterator, None)
            if item is None:
                return
            yield item

    @staticmethod
    def _outcome(ok: bool, item: dict[str, Any]) -> str:
        """'ok', 'stale' (a version conflict: the index holds a newer version), 'missing'
        (the alias is gone: a rebuild finished meanwhile) or 'error'."""
        if ok:
            return "ok"
        ((_, info),) = item.items()
        status = info.get("status")
        error = info.get("error") or {}
        kind = error.get("type", "") if isinstance(error, dict) else str(error)
        if status == 409 or "version_conflict" in kind:
            return "stale"
        if status == 404 and kind in ("index_not_found_exception", ""):
            return "missing"
        return "error"

    def _finish(self, what: str, results: Iterable[tuple[bool, dict[str, Any]]]) -> int:
        """Consumes a bulk stream; returns how many items are stored (written, or held at a
        newer version); raises on any other failure."""
        stored = 0
        errors: list[Any] = []
        for ok, item in results:
            outcome = self._outcome(ok, item)
            if outcome in ("ok", "stale"):
                stored += 1
            elif outcome == "missing":
                ((_, info),) = item.items()
                if not str(info.get("_index", "")).startswith(f"{self.prefix}-building-"):
                    # The live alias is gone (someone deleted the index): the next try
                    # creates it again.
                    self._ready.clear()
                    errors.append(item)
            elif outcome == "error":
                ((_, info),) = item.items()
                if info.get("status") in (429, 503):
                    raise SearchUnavailable(f"elasticsearch {what}: {info.get('error')}")
                errors.append(item)
        if errors:
            raise RuntimeError(f"elasticsearch {what}: {len(errors)} failed, e.g. {errors[0]}")
        return stored

    # --- the protocol -------------------------------------------------------------------------

    def index(self, documents: Sequence[Document]) -> None:
        if not documents:
            return
        targets = self._write_targets({d.type for d in documents})
        actions = (
            {
                "_op_type": "index",
                "_index": target,
                "_id": str(document.id),
                "version": document.version,
                "version_type": "external_gte",
                "_source": _source(document),
            }
            for document in documents
            for target in targets[document.type]
        )
        self._finish("index", self._bulk(actions, what="index"))

    def remove(self, refs: Sequence[tuple[DocType, int, int]]) -> None:
        if not refs:
            return
        targets = self._write_targets({t for t, _, _ in refs})
        actions = (
            {
                "_op_type": "delete",
                "_index": target,
                "_id": str(doc_id),
                "version": version,
                "version_type": "external_gte",
            }
            for doc_type, doc_id, version in refs
            for target in targets[doc_type]
        )
        results = self._bulk(actions, what="remove")
        # A delete of a document that is not there is done already.
        self._finish(
            "remove",
            (
                (True, item)
                if not ok and next(iter(item.values())).get("result") == "not_found"
                else (ok, item)
                for ok, item in results
            ),
        )

    def search(self, query: SearchQuery, audience: Audience) -> SearchResult:
        types = [t for t in DOC_TYPES if t in query.types]
        if not types or not audience.tokens:
            return SearchResult(hits=[], total=0, facets={f: {} for f in query.facets})
        self.ensure_indices(types)
        text = _clean_text(query.text)
        filters: list[dict[str, Any]] = [
            {"terms": {"audience": sorted(audience.tokens)}},
            {"terms": {"type": types}},
        ]
        for key, values in sorted(query.filters.items()):
            field = FILTER_FIELDS.get(key)
            if field is None or not values:
                continue  # not a filter this backend knows, or not set
            # Values a keyword field cannot hold (too long, not UTF-8) match nothing.
            wanted = sorted({v for v in values if _filterable(v)})
            filters.append({"terms": {field: wanted}} if wanted else {"match_none": {}})
        bool_query: dict[str, Any] = {"filter": filters}
        if text:
            lowered = text.lower()
            bool_query["must"] = [
                {
                    "bool": {
                        "should": [
                            # Every word, in any of the fields.
                            {
                                "multi_match": {
                                    "query": text,
                                    "fields": SEARCH_FIELDS,
                                    "type": "cross_fields",
                                    "operator": "and",
                                }
                            },
                            # Or the start of a name or handle ("jol" finds Jolene), ranked
                            # below whole words.
                            {
                                "match": {
                                    "title.prefix": {"query": text, "operator": "and", "boost": 0.5}
                                }
                            },
                            {"match": {"handle.prefix": {"query": text.lstrip("@"), "boost": 0.5}}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            ]
            bool_query["should"] = [
                # Exact names first: the whole query is someone's (or a group's) name.
                {"term": {"title.exact": {"value": lowered, "boost": 20}}},
                {"term": {"handle": {"value": lowered.lstrip("@"), "boost": 20}}},
                # Skill matches: a person who has the skill as written.
                {"term": {"skills.exact": {"value": lowered, "boost": 5}}},
                {"match": {"skills.text": {"query": text, "boost": 2}}},
                {"match_phrase": {"title": {"query": text, "boost": 2}}},
            ]
        else:
            bool_query["must"] = [{"match_all": {}}]
        scored: dict[str, Any] = {
            "function_score": {
                "query": {"bool": bool_query},
                "functions": [
                    # Recency for content: a factor between 1 (old) and 2 (now), so an exact
                    # old match still beats a vague new one.
                    {"weight": 1},
                    {
                        "filter": {"terms": {"type": sorted(CONTENT_TYPES)}},
                        "gauss": {
                            "created_at": {
                                "origin": "now",
                                "scale": "30d",
                                "offset": "1d",
                                "decay": 0.5,
                            }
                        },
                        "weight": 1,
                    },
                ],
                "score_mode": "sum",
                "boost_mode": "multiply",
            }
        }
        size = max(0, min(query.limit, MAX_RESULT_WINDOW))
        start = max(0, min(query.offset, MAX_RESULT_WINDOW - size))
        body: dict[str, Any] = {
            "query": scored,
            "from": start,
            "size": size,
            "track_total_hits": True,
            "_source": ["type", "id", "title", "body", "job_title"],
            "sort": [
                "_score",
                {"created_at": {"order": "desc", "missing": "_last"}},
                {"id": "asc"},
            ],
            "highlight": {
                "pre_tags": [HIGHLIGHT_START],
                "post_tags": [HIGHLIGHT_END],
                "encoder": "default",
                "require_field_match": False,
                "fields": {
                    name: {"number_of_fragments": 1, "fragment_size": SNIPPET_CHARS}
                    for name in HIGHLIGHT_FIELDS
                },
            },
        }
        aggs = {
            facet: {"terms": {"field": FACET_FIELDS[facet], "size": 50}}
            for facet in query.facets
            if facet in FACET_FIELDS
        }
        if aggs:
            body["aggs"] = aggs
        indices = ",".join(self.alias(t) for t in types)
        response = self._call(
            "search",
            self._es().search,
            index=indices,
            ignore_unavailable=True,
            allow_no_indices=True,
            **body,
        )
        self._check_shards("search", response)
        hits = [self._hit(h, snippet=True) for h in response["hits"]["hits"]]
        total_info = response["hits"]["total"]
        total = total_info["value"] if isinstance(total_info, dict) else int(total_info)
        exact = not isinstance(total_info, dict) or total_info.get("relation", "eq") == "eq"
        facets: dict[str, dict[str, int]] = {}
        for facet in query.facets:
            buckets = response.get("aggregations", {}).get(facet, {}).get("buckets", [])
            facets[facet] = {str(b["key"]): int(b["doc_count"]) for b in buckets}
        return SearchResult(hits=hits, total=total, facets=facets, exact_counts=exact)

    @staticmethod
    def _check_shards(what: str, response: Any) -> None:
        """No shard answered: that is an outage, not an empty result."""
        shards = response.get("_shards") or {}
        if shards.get("failed") and not shards.get("successful"):
            raise SearchUnavailable(f"elasticsearch {what}: every shard failed")

    @staticmethod
    def _hit(raw: dict[str, Any], *, snippet: bool) -> Hit:
        source = raw.get("_source") or {}
        text = ""
        if snippet:
            highlight = raw.get("highlight") or {}
            for name in HIGHLIGHT_FIELDS:
                if highlight.get(name):
                    text = highlight[name][0]
                    break
            else:
                text = (source.get("body") or source.get("job_title") or "")[:SNIPPET_CHARS]
        return Hit(
            type=source["type"],
            id=int(source["id"]),
            score=float(raw.get("_score") or 0.0),
            snippet=text,
        )

    def suggest(
        self, kind: Literal["person", "hashtag"], prefix: str, audience: Audience, limit: int
    ) -> list[Hit]:
        text = _clean_text(prefix).lstrip("@#").strip()
        if kind not in ("person", "hashtag") or not text or not audience.tokens or limit <= 0:
            return []
        self.ensure_indices([kind])
        lowered = text.lower()
        should: list[dict[str, Any]] = [
            {"match": {"title.prefix": {"query": text, "operator": "and"}}},
            {"term": {"title.exact": {"value": lowered, "boost": 10}}},
        ]
        if kind == "person":
            should += [
                {"match": {"handle.prefix": {"query": text, "boost": 2}}},
                {"term": {"handle": {"value": lowered, "boost": 10}}},
            ]
        body: dict[str, Any] = {
            "query": {
                "bool": {
                    "filter": [
                        {"terms": {"audience": sorted(audience.tokens)}},
                        {"term": {"type": kind}},
                    ],
                    "should": should,
                    "minimum_should_match": 1,
                }
            },
            "size": min(limit, 100),
            "_source": ["type", "id"],
            "sort": ["_score", {"title.exact": "asc"}, {"id": "asc"}],
        }
        response = self._call(
            "suggest",
            self._es().search,
            index=self.alias(kind),
            ignore_unavailable=True,
            allow_no_indices=True,
            **body,
        )
        self._check_shards("suggest", response)
        return [self._hit(h, snippet=False) for h in response["hits"]["hits"]]

    def stored(self, doc_type: DocType) -> Iterator[tuple[int, int]]:
        self.ensure_indices([doc_type])
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": {"match_all": {}},
                "size": 1000,
                "_source": ["id", "version"],
                "sort": [{"id": "asc"}],
                "version": True,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            response = self._call(
                "stored",
                self._es().search,
                index=self.alias(doc_type),
                ignore_unavailable=True,
                **body,
            )
            self._check_shards("stored", response)
            page = response["hits"]["hits"]
            for raw in page:
                source = raw.get("_source") or {}
                version = raw.get("_version", source.get("version"))
                yield int(source["id"]), int(version)
            if len(page) < 1000:
                return
            after = page[-1]["sort"]

    def counts(self) -> dict[str, int]:
        self.ensure_indices()
        result: dict[str, int] = {}
        for doc_type in DOC_TYPES:
            response = self._call(
                "count",
                self._es(ignore=(404,)).count,
                index=self.alias(doc_type),
                ignore_unavailable=True,
            )
            result[doc_type] = int(response.get("count", 0))
        return result

    def rebuild(self, documents: Iterable[Document]) -> int:
        """New indices, bulk-loaded, swapped in with one atomic alias change, old ones deleted.

        While it runs, writes go to the new indices too (``<prefix>-building-<type>``)."""
        self.ensure_indices()
        self._clear_unfinished_rebuild()
        generation = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        new = {t: self._new_index_name(t, generation) for t in DOC_TYPES}
        created: list[str] = []
        try:
            for doc_type, name in new.items():
                self._call(
                    "create index",
                    self._es().indices.create,
                    index=name,
                    settings=self._settings(building=True),
                    mappings=MAPPINGS,
                    aliases={self.building_alias(doc_type): {}},
                )
                created.append(name)
            actions = (
                {
                    "_op_type": "index",
                    "_index": self.building_alias(document.type),
                    "_id": str(document.id),
                    "version": document.version,
                    "version_type": "external",
                    "_source": _source(document),
                }
                for document in documents
            )
            # No refresh per chunk: the new indices are refreshed once, at the end.
            count = self._finish(
                "rebuild",
                self._bulk(actions, what="rebuild", timeout=self.bulk_timeout, refresh=False),
            )
            self._call(
                "settings",
                self._es(self.bulk_timeout).indices.put_settings,
                index=",".join(created),
                settings={"index": {"refresh_interval": None}},
            )
            self._call(
                "refresh", self._es(self.bulk_timeout).indices.refresh, index=",".join(created)
            )
            old = self._live_indices()
            swap: list[dict[str, Any]] = []
            for doc_type, name in new.items():
                for old_name in old.get(doc_type, []):
                    swap.append({"remove": {"index": old_name, "alias": self.alias(doc_type)}})
                swap.append({"add": {"index": name, "alias": self.alias(doc_type)}})
            self._call(
                "swap aliases", self._es(self.bulk_timeout).indices.update_aliases, actions=swap
            )
        except BaseException:
            if created:
                try:
                    self._es(self.bulk_timeout, ignore=(404,)).indices.delete(
                        index=",".join(created)
                    )
                except Exception:  # pragma: no cover - best effort; the names say what they are
                    log.warning("could not delete the unfinished search indices %s", created)
            raise
        # Late writes that looked the building alias up before the swap still reach the new
        # index through it; once they are done, it goes.
        self._call(
            "drop building aliases",
            self._es(self.bulk_timeout).indices.update_aliases,
            actions=[
                {"remove": {"index": name, "alias": self.building_alias(t)}}
                for t, name in new.items()
            ],
        )
        stale = sorted({n for names in old.values() for n in names} - set(new.values()))
        if stale:
            # Searches that resolved the alias just before the swap are still reading the old
            # indices: give them a moment before the shards close under them.
            time.sleep(self.delete_grace)
            self._call(
                "delete old indices",
                self._es(self.bulk_timeout, ignore=(404,)).indices.delete,
                index=",".join(stale),
            )
        return count

    def _aliases(self, names: Iterable[str]) -> dict[str, list[str]]:
        """The concrete indices behind each of the named aliases that exist."""
        wanted = set(names)
        found = self._call(
            "alias lookup", self._es(ignore=(404,)).indices.get_alias, name=",".join(sorted(wanted))
        )
        result: dict[str, list[str]] = {}
        for index_name, entry in dict(found.body).items():
            if not isinstance(entry, dict):
                continue
            for alias in entry.get("aliases", {}):
                if alias in wanted:
                    result.setdefault(alias, []).append(index_name)
        return result

    def _live_indices(self) -> dict[DocType, list[str]]:
        """The concrete indices behind each type's alias."""
        found = self._aliases(self.alias(t) for t in DOC_TYPES)
        return {t: sorted(found[self.alias(t)]) for t in DOC_TYPES if self.alias(t) in found}

    def _clear_unfinished_rebuild(self) -> None:
        """Refuses to start while another rebuild is filling indices (:class:`RebuildRunning`).

        What an earlier rebuild left behind is cleared: a building alias still on an index that
        is live already (the rebuild finished but could not drop it) loses the alias; the
        indices of a rebuild that died (older than ``stale_rebuild_after`` seconds, by the
        timestamp in their name) are deleted. A live index is never deleted here."""
        building = self._aliases(self.building_alias(t) for t in DOC_TYPES)
        if not building:
            return
        live = {n for names in self._live_indices().values() for n in names}
        now = datetime.now(UTC)
        unalias: list[dict[str, Any]] = []
        dead: list[str] = []
        for alias, names in sorted(building.items()):
            for name in names:
                try:
                    started = datetime.strptime(name.rsplit("-", 1)[1], "%Y%m%d%H%M%S%f")
                except (IndexError, ValueError):
                    started = None  # not a name of ours: only the alias goes
                if name in live or started is None:
                    unalias.append({"remove": {"index": name, "alias": alias}})
                elif (now - started.replace(tzinfo=UTC)).total_seconds() < self.stale_rebuild_after:
                    raise RebuildRunning(f"a search index rebuild is running (filling {name})")
                else:
                    dead.append(name)
        if unalias:
            self._call(
                "drop stale building aliases",
                self._es(self.bulk_timeout).indices.update_aliases,
                actions=unalias,
            )
        if dead:
            log.warning("dropping the indices of an unfinished search rebuild: %s", dead)
            self._call(
                "drop unfinished rebuild",
                self._es(self.bulk_timeout, ignore=(404,)).indices.delete,
                index=",".join(sorted(set(dead))),
            )

    def drop(self) -> None:
        """Deletes every index of this prefix (tests; an installation leaving Elasticsearch).

        By name: Elasticsearch 8 refuses wildcard deletes (``action.destructive_requires_name``)."""
        patterns = ",".join(f"{self.alias(t)}-*" for t in DOC_TYPES)
        found = self._call(
            "drop",
            self._es(ignore=(404,)).indices.get_alias,
            index=patterns,
            allow_no_indices=True,
            ignore_unavailable=True,
        )
        ours = re.compile("|".join(rf"{re.escape(self.alias(t))}-\d{{20}}" for t in DOC_TYPES))
        names = sorted(n for n in dict(found.body) if ours.fullmatch(n))
        if names:
            self._call(
                "drop",
                self._es(self.bulk_timeout, ignore=(404,)).indices.delete,
                index=",".join(names),
            )
        self._ready.clear()

    def close(self) -> None:
        self.client.close()
