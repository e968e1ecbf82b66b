"""The Elasticsearch backend against a real server: Documents in, queries out, no database.

The server is the cluster named by ``ESN_TEST_ELASTICSEARCH_URL`` when set, otherwise osmem-server
(an in-memory OpenSearch-compatible server from PyPI) started on a free loopback port for this
module; see ``tests/search/elastic_server.py``. Each test works under its own index prefix.

osmem 0.1.6 implements everything these tests use: explicit mappings and custom analyzers
(standard / keyword tokenizers, lowercase, asciifolding, edge_ngram, normalizers), aliases and
atomic ``_aliases`` actions, ``require_alias``, external versions (``external`` and
``external_gte``, delete tombstones), bulk, ``function_score`` with ``gauss`` decay,
``cross_fields`` multi_match, highlighting with custom tags, terms aggregations,
``track_total_hits``, ``search_after`` and ``version: true``. It does not implement the point in
time API (``POST /<index>/_pit``: "no handler found"), which the backend does not use. Should a
later osmem lose one of the features above, :func:`features` notices it once per module and the
tests that need it skip, against osmem only, naming the feature; against a real cluster
(``ESN_TEST_ELASTICSEARCH_URL``) they always run.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from esn.search.backend import (
    DOC_TYPES,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    INTERNAL,
    Audience,
    DocType,
    Document,
    Hit,
    SearchQuery,
    SearchResult,
    SearchUnavailable,
    group_token,
    user_token,
)

pytest.importorskip("elasticsearch", reason="the 'elasticsearch' extra is not installed")

from elasticsearch import ApiError, ConflictError

from esn.search.elastic import ElasticsearchBackend, RebuildRunning
from tests.search.elastic_server import (
    ElasticServer,
    elastic_server,
    free_port,
    start_osmem,
)

NOW = datetime.now(UTC).replace(microsecond=0)
MEMBER = Audience(1, frozenset({INTERNAL, user_token(1), group_token(5)}))
OUTSIDER = Audience(2, frozenset({INTERNAL, user_token(2)}))
EXTERNAL = Audience(3, frozenset({user_token(3)}))  # not even "internal"


def doc(
    doc_type: DocType, doc_id: int, version: int = 1, audience: set[str] | None = None, **kw: Any
) -> Document:
    return Document(
        type=doc_type,
        id=doc_id,
        version=version,
        audience=frozenset(audience if audience is not None else {INTERNAL}),
        **kw,
    )


def ids(result: SearchResult | list[Hit]) -> list[tuple[str, int]]:
    hits = result.hits if isinstance(result, SearchResult) else result
    return [(h.type, h.id) for h in hits]


# --- the server, its features, a backend per test -----------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ElasticServer]:
    try:
        with elastic_server() as running:
            yield running
    except ImportError as exc:  # pragma: no cover - depends on the installation
        pytest.skip(f"osmem-server is not installed ({exc}): install the 'test' extra")


@pytest.fixture
def backend(server: ElasticServer) -> Iterator[ElasticsearchBackend]:
    with server.backend() as made:
        yield made


@pytest.fixture(scope="module")
def features(server: ElasticServer) -> dict[str, bool]:
    """Which of the features the assertions lean on the server implements, probed once."""
    with server.backend() as probe:
        es = probe.client
        index = probe.alias("post")
        found: dict[str, bool] = {}

        def check(name: str, fn: Callable[[], bool]) -> None:
            try:
                found[name] = bool(fn())
            except Exception:
                found[name] = False

        def external_versions() -> bool:
            es.index(index=index, id="1", version=5, version_type="external", document=_raw(1))
            try:
                es.index(index=index, id="1", version=4, version_type="external", document=_raw(1))
            except ConflictError:
                return True
            return False

        def function_score() -> bool:
            es.index(index=index, id="2", document=_raw(2, created_at=NOW.isoformat()))
            old = (NOW - timedelta(days=365)).isoformat()
            es.index(index=index, id="3", document=_raw(3, created_at=old), refresh=True)
            hits = es.search(
                index=index,
                query={
                    "function_score": {
                        "query": {"terms": {"id": [2, 3]}},
                        "functions": [{"gauss": {"created_at": {"origin": "now", "scale": "30d"}}}],
                    }
                },
            )["hits"]["hits"]
            return [h["_id"] for h in hits] == ["2", "3"] and hits[0]["_score"] > hits[1]["_score"]

        def atomic_aliases() -> bool:
            concrete = next(iter(es.indices.get_alias(name=index)))
            with contextlib.suppress(ApiError):  # the second action fails: so must the first
                es.indices.update_aliases(
                    actions=[
                        {"add": {"index": concrete, "alias": f"{probe.prefix}-atomic"}},
                        {"remove": {"index": f"{probe.prefix}-missing", "alias": "nope"}},
                    ]
                )
            return not es.indices.exists_alias(name=f"{probe.prefix}-atomic")

        def highlight() -> bool:
            es.index(index=index, id="4", document=_raw(4, body="a marked word"), refresh=True)
            hits = es.search(
                index=index,
                query={"match": {"body": "marked"}},
                highlight={"pre_tags": ["["], "post_tags": ["]"], "fields": {"body": {}}},
            )["hits"]["hits"]
            return hits[0]["highlight"]["body"] == ["a [marked] word"]

        check("external versions", external_versions)
        check("function_score decay", function_score)
        check("atomic alias actions", atomic_aliases)
        check("highlight tags", highlight)
        return found


def _raw(doc_id: int, **fields: Any) -> dict[str, Any]:
    return {"type": "post", "id": doc_id, "version": 1, "audience": [INTERNAL], **fields}


@pytest.fixture
def needs(server: ElasticServer, features: dict[str, bool]) -> Callable[[str], None]:
    """``needs("feature")``: skips against osmem when it lacks the feature (never against a real
    cluster, where a missing feature is a failure)."""

    def require(name: str) -> None:
        if features.get(name):
            return
        if server.osmem:
            pytest.skip(f"osmem-server does not implement {name}; run with a real cluster")
        pytest.fail(f"the cluster does not implement {name}")

    return require


# --- mappings ------------------------------------------------------------------------------------


def test_each_type_has_a_versioned_index_behind_its_alias_with_explicit_mappings(
    backend: ElasticsearchBackend,
) -> None:
    es = backend.client
    for doc_type in DOC_TYPES:
        alias = backend.alias(doc_type)
        concrete = list(es.indices.get_alias(name=alias))
        assert len(concrete) == 1
        assert re.fullmatch(rf"{re.escape(alias)}-\d{{20}}", concrete[0])

        mapping = es.indices.get_mapping(index=alias)[concrete[0]]["mappings"]
        assert mapping["dynamic"] == "strict"
        props = mapping["properties"]
        for keyword in ("type", "audience", "skills", "department", "location"):
            assert props[keyword]["type"] == "keyword", keyword
        assert props["created_at"]["type"] == "date"
        assert props["title"]["type"] == "text"
        assert props["title"]["analyzer"] == "esn_text"
        assert props["title"]["fields"]["exact"]["type"] == "keyword"
        assert props["title"]["fields"]["prefix"]["analyzer"] == "esn_prefix"
        assert props["handle"]["fields"]["prefix"]["analyzer"] == "esn_handle_prefix"
        assert props["body"]["analyzer"] == "esn_text"

        settings = es.indices.get_settings(index=alias)[concrete[0]]["settings"]["index"]
        analysis = settings["analysis"]
        assert analysis["analyzer"]["esn_text"]["tokenizer"] == "standard"
        assert "asciifolding" in analysis["analyzer"]["esn_text"]["filter"]
        assert analysis["filter"]["esn_edge"]["type"] == "edge_ngram"


def test_a_strict_mapping_refuses_unknown_fields(backend: ElasticsearchBackend) -> None:
    with pytest.raises(Exception, match=r"strict|not allowed|dynamic"):
        backend.client.index(index=backend.alias("post"), id="1", document={"surprise": 1})


# --- visibility ----------------------------------------------------------------------------------


def test_hits_totals_and_facets_only_count_what_the_audience_may_see(
    backend: ElasticsearchBackend,
) -> None:
    backend.index(
        [
            doc("post", 1, audience={group_token(5)}, body="quarterly roadmap for the secret team"),
            doc("post", 2, body="quarterly roadmap for everyone"),
            doc("post", 3, audience={user_token(1)}, body="my quarterly roadmap draft"),
            doc(
                "person",
                10,
                title="Sam Sales",
                department="Sales",
                location="Lyon",
                skills=("Negotiation",),
                job_title="Account manager",
            ),
            doc(
                "person",
                11,
                audience={group_token(5)},
                title="Quinn Quarterly",
                department="Sales",
                location="Oslo",
                skills=("Negotiation", "Roadmaps"),
            ),
            doc("group", 20, audience={group_token(5)}, title="Secret quarterly group"),
        ]
    )
    facets = ("type", "department", "location", "skill")

    outsider = backend.search(SearchQuery("quarterly", facets=facets), OUTSIDER)
    assert ids(outsider) == [("post", 2)]
    assert outsider.total == 1
    assert outsider.facets["type"] == {"post": 1}
    assert outsider.facets["department"] == {}

    member = backend.search(SearchQuery("quarterly", facets=facets), MEMBER)
    assert sorted(ids(member)) == [
        ("group", 20),
        ("person", 11),
        ("post", 1),
        ("post", 2),
        ("post", 3),
    ]
    assert member.total == 5
    assert member.facets["type"] == {"post": 3, "person": 1, "group": 1}
    assert member.facets["location"] == {"Oslo": 1}

    # Browsing the directory (no text): facets count the visible people only.
    everyone = SearchQuery("", types=frozenset({"person"}), facets=facets)
    seen = backend.search(everyone, OUTSIDER)
    assert ids(seen) == [("person", 10)] and seen.total == 1
    assert seen.facets["department"] == {"Sales": 1}
    assert seen.facets["skill"] == {"Negotiation": 1}
    seen = backend.search(everyone, MEMBER)
    assert seen.total == 2
    assert seen.facets["department"] == {"Sales": 2}
    assert seen.facets["skill"] == {"Negotiation": 2, "Roadmaps": 1}

    # An external account holds no "internal" token: nothing here is theirs.
    nothing = backend.search(SearchQuery("quarterly", facets=facets), EXTERNAL)
    assert nothing.hits == [] and nothing.total == 0 and nothing.facets["type"] == {}
    empty = backend.search(SearchQuery("quarterly"), Audience(4, frozenset()))
    assert empty.hits == [] and empty.total == 0


def test_filters_types_and_pages(backend: ElasticsearchBackend) -> None:
    backend.index(
        [
            doc(
                "person",
                i,
                title=f"Dev {i}",
                department="R&D" if i % 2 else "Ops",
                location="Paris",
                skills=("Python",),
            )
            for i in range(1, 8)
        ]
        + [doc("post", 1, body="dev notes")]
    )
    people = backend.search(
        SearchQuery("dev", types=frozenset({"person"}), filters={"department": ("R&D",)}), OUTSIDER
    )
    assert people.total == 4 and {t for t, _ in ids(people)} == {"person"}
    both = backend.search(SearchQuery("dev", filters={"department": ("R&D", "Ops")}), OUTSIDER)
    assert both.total == 7
    assert backend.search(SearchQuery("dev", types=frozenset({"post"})), OUTSIDER).total == 1

    query = SearchQuery("dev", types=frozenset({"person"}), limit=3)
    pages = [
        ids(backend.search(SearchQuery(query.text, query.types, limit=3, offset=o), OUTSIDER))
        for o in (0, 3, 6)
    ]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({h for p in pages for h in p}) == 7
    far = backend.search(SearchQuery("dev", limit=50, offset=1_000_000), OUTSIDER)
    assert far.hits == [] and far.total == 8


# --- snippets ------------------------------------------------------------------------------------


def test_snippets_carry_the_markers_and_never_html(
    backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    needs("highlight tags")
    backend.index(
        [
            doc("post", 1, body="<script>alert(1)</script> the budget is <b>approved</b>"),
            doc("post", 2, body=f"forged {HIGHLIGHT_START}marks{HIGHLIGHT_END} and a budget"),
            doc("article", 3, title="Budget & plans", body="long text " * 50 + "budget"),
        ]
    )
    result = backend.search(SearchQuery("budget"), OUTSIDER)
    snippets = {(h.type, h.id): h.snippet for h in result.hits}
    assert set(snippets) == {("post", 1), ("post", 2), ("article", 3)}
    for snippet in snippets.values():
        assert f"{HIGHLIGHT_START}budget{HIGHLIGHT_END}".lower() in snippet.lower()
        assert "<em>" not in snippet and "</em>" not in snippet
        assert "&lt;" not in snippet and "&amp;" not in snippet  # not HTML-encoded either
        assert snippet.count(HIGHLIGHT_START) == snippet.count(HIGHLIGHT_END)
    # The text is returned as it was written (the API escapes it)…
    assert "<script>alert(1)</script>" in snippets[("post", 1)]
    # …except for marker characters, which only the highlighter may place.
    assert snippets[("post", 2)].count(HIGHLIGHT_START) == 1
    assert len(snippets[("article", 3)]) < 400


# --- versions ------------------------------------------------------------------------------------


def test_an_older_version_never_overwrites_a_newer_one(
    backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    needs("external versions")
    backend.index([doc("post", 1, version=2, body="second edit")])
    backend.index([doc("post", 1, version=1, body="first draft")])  # a late replay: ignored
    assert list(backend.stored("post")) == [(1, 2)]
    assert ids(backend.search(SearchQuery("second edit"), OUTSIDER)) == [("post", 1)]
    assert backend.search(SearchQuery("draft"), OUTSIDER).total == 0
    # The same version is applied: changes with no time of their own (a profile field, a
    # group's visibility) keep the version and must still reach the index.
    backend.index([doc("post", 1, version=2, body="second edit, same moment")])
    assert list(backend.stored("post")) == [(1, 2)]
    assert ids(backend.search(SearchQuery("moment"), OUTSIDER)) == [("post", 1)]

    # One batch with both versions, in either order, keeps the newer.
    backend.index([doc("post", 2, version=3, body="newer"), doc("post", 2, version=2, body="old")])
    assert (2, 3) in list(backend.stored("post"))


def test_remove_with_an_older_version_keeps_the_newer_document(
    backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    needs("external versions")
    backend.index([doc("post", 1, version=3, body="kept")])
    backend.remove([("post", 1, 2)])
    assert list(backend.stored("post")) == [(1, 3)]

    backend.remove([("post", 1, 3)])  # "unless the index holds a version above": deletes
    assert list(backend.stored("post")) == []
    # A replay of an older version after the delete stays deleted (the delete's tombstone)…
    backend.index([doc("post", 1, version=2, body="kept")])
    assert list(backend.stored("post")) == []
    # …while a newer version comes back.
    backend.index([doc("post", 1, version=4, body="restored")])
    assert list(backend.stored("post")) == [(1, 4)]

    # Removing what is not there, twice, is fine.
    backend.remove([("post", 99, 1), ("post", 99, 1), ("comment", 5, 1)])
    backend.remove([])
    backend.index([])


# --- rebuild -------------------------------------------------------------------------------------


def _posts(n: int, version: int = 1, word: str = "alpha", start: int = 1) -> list[Document]:
    return [doc("post", i, version=version, body=f"{word} post {i}") for i in range(start, n + 1)]


def test_rebuild_swaps_the_aliases_with_no_moment_without_results(
    server: ElasticServer, backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    needs("atomic alias actions")
    backend.index(_posts(200))
    before = {t: list(backend.client.indices.get_alias(name=backend.alias(t))) for t in DOC_TYPES}

    totals: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()
    reader = server.make_backend(prefix=backend.prefix)  # another process, as it were

    def search_all_along() -> None:
        while not stop.is_set():
            try:
                totals.append(reader.search(SearchQuery("alpha", limit=1), OUTSIDER).total)
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)
                return

    def slow_documents() -> Iterator[Document]:
        for i, document in enumerate(_posts(600)):
            if i % 100 == 0:
                time.sleep(0.05)
            yield document

    thread = threading.Thread(target=search_all_along)
    thread.start()
    try:
        time.sleep(0.1)
        assert backend.rebuild(slow_documents()) == 600
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
        reader.close()
    assert not failures, failures
    assert len(totals) > 10
    assert 0 not in totals
    assert set(totals) <= {200, 600}, sorted(set(totals))
    assert totals[-1] == 600

    es = backend.client
    for doc_type in DOC_TYPES:
        now_behind = list(es.indices.get_alias(name=backend.alias(doc_type)))
        assert len(now_behind) == 1 and now_behind != before[doc_type]
        assert not es.indices.exists(index=before[doc_type][0])  # the old index is gone
        assert not es.indices.exists_alias(name=backend.building_alias(doc_type))
    assert backend.counts()["post"] == 600


def test_writes_during_a_rebuild_reach_the_new_index(
    backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    needs("external versions")
    backend.index(_posts(10))

    def documents() -> Iterator[Document]:
        yield from _posts(5)  # 1..5 at version 1
        # Meanwhile the outbox writes: post 2 (already streamed) and post 8 (not yet) change,
        # post 3 (streamed) is deleted.
        backend.index(
            [
                doc("post", 2, version=2, body="edited during rebuild"),
                doc("post", 8, version=2, body="also edited during rebuild"),
            ]
        )
        backend.remove([("post", 3, 2)])
        yield from _posts(10, start=6)  # 6..10 at version 1: post 8's is now stale

    assert backend.rebuild(documents()) == 10
    assert sorted(backend.stored("post")) == [
        (1, 1),
        (2, 2),
        (4, 1),
        (5, 1),
        (6, 1),
        (7, 1),
        (8, 2),
        (9, 1),
        (10, 1),
    ]
    edited = backend.search(SearchQuery("edited during rebuild"), OUTSIDER)
    assert sorted(ids(edited)) == [("post", 2), ("post", 8)]


def test_a_second_rebuild_waits_for_the_first_and_a_dead_one_is_cleared(
    backend: ElasticsearchBackend,
) -> None:
    es = backend.client
    running = f"{backend.alias('post')}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"
    es.indices.create(index=running, aliases={backend.building_alias("post"): {}})
    with pytest.raises(RebuildRunning):
        backend.rebuild(_posts(3))
    es.indices.delete(index=running)

    dead = f"{backend.alias('post')}-20000101000000000000"
    es.indices.create(index=dead, aliases={backend.building_alias("post"): {}})
    assert backend.rebuild(_posts(3)) == 3
    assert not es.indices.exists(index=dead)
    assert backend.counts()["post"] == 3

    # A rebuild that swapped but could not drop its building alias: the alias goes, the index
    # (live) stays until the next swap replaces it.
    (live,) = es.indices.get_alias(name=backend.alias("post"))
    es.indices.put_alias(index=live, name=backend.building_alias("post"))
    backend.index([doc("post", 4, body="still written")])
    assert backend.rebuild(_posts(4)) == 4
    assert backend.counts()["post"] == 4
    assert not es.indices.exists_alias(name=backend.building_alias("post"))


def test_an_index_deleted_behind_its_back_is_created_again(backend: ElasticsearchBackend) -> None:
    backend.index(_posts(2))
    (live,) = backend.client.indices.get_alias(name=backend.alias("post"))
    backend.client.indices.delete(index=live)
    with pytest.raises(RuntimeError):
        backend.index(_posts(2))  # the outbox retries…
    backend.index(_posts(2))  # …and the retry finds a fresh index
    assert backend.counts()["post"] == 2


def test_a_rebuild_that_fails_leaves_the_live_index_alone(backend: ElasticsearchBackend) -> None:
    backend.index(_posts(5))
    before = list(backend.client.indices.get_alias(name=backend.alias("post")))

    def broken() -> Iterator[Document]:
        yield from _posts(3)
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        backend.rebuild(broken())
    assert list(backend.client.indices.get_alias(name=backend.alias("post"))) == before
    assert backend.counts()["post"] == 5
    assert not backend.client.indices.exists_alias(name=backend.building_alias("post"))
    backend.index(_posts(6))  # and writes carry on
    assert backend.counts()["post"] == 6


# --- stored, counts ------------------------------------------------------------------------------


def test_stored_pages_through_every_document_and_counts_per_type(
    backend: ElasticsearchBackend,
) -> None:
    documents = [doc("post", i, version=i % 7 + 1, body="x") for i in range(1, 2_345)]
    documents += [doc("person", i, title=f"P{i}") for i in range(1, 4)]
    backend.index(documents)
    assert list(backend.stored("post")) == [(d.id, d.version) for d in documents[:2_344]]
    assert list(backend.stored("person")) == [(1, 1), (2, 1), (3, 1)]
    assert list(backend.stored("photo")) == []
    counts = backend.counts()
    assert counts == {t: 0 for t in DOC_TYPES} | {"post": 2_344, "person": 3}


# --- suggest and relevance -----------------------------------------------------------------------


def test_suggest_completes_names_handles_and_hashtags_within_the_audience(
    backend: ElasticsearchBackend,
) -> None:
    backend.index(
        [
            doc("person", 1, title="Jolene Smith", handle="jolene.s"),
            doc("person", 2, title="John Doe", handle="jdoe"),
            doc("person", 3, title="Joanna Hidden", handle="joanna", audience={group_token(7)}),
            doc("person", 4, title="Zoë Martin", handle="zoe"),
            doc("person", 5, title="John", handle="john"),
            doc("hashtag", 1, title="python"),
            doc("hashtag", 2, title="pytest"),
            doc("hashtag", 3, title="pyramid", audience={group_token(7)}),
            doc("post", 1, body="jo python"),
        ]
    )
    people = ids(backend.suggest("person", "jo", OUTSIDER, 10))
    assert sorted(people) == [("person", 1), ("person", 2), ("person", 5)]
    assert ids(backend.suggest("person", "john", OUTSIDER, 10))[0] == ("person", 5)  # exact
    assert ids(backend.suggest("person", "@jd", OUTSIDER, 10)) == [("person", 2)]
    assert ids(backend.suggest("person", "smi", OUTSIDER, 10)) == [("person", 1)]
    assert ids(backend.suggest("person", "jolene sm", OUTSIDER, 10)) == [("person", 1)]
    assert ids(backend.suggest("person", "zoe", OUTSIDER, 10)) == [("person", 4)]  # folded
    assert len(backend.suggest("person", "jo", OUTSIDER, 2)) == 2
    assert ids(backend.suggest("person", "joa", OUTSIDER, 10)) == []
    assert ids(backend.suggest("person", "joa", Audience(9, frozenset({group_token(7)})), 5)) == [
        ("person", 3)
    ]
    tags = ids(backend.suggest("hashtag", "#py", OUTSIDER, 10))
    assert sorted(tags) == [("hashtag", 1), ("hashtag", 2)]
    assert backend.suggest("hashtag", "", OUTSIDER, 10) == []
    assert backend.suggest("person", "jo", EXTERNAL, 10) == []


def test_exact_names_first_then_skills_and_recent_content_above_old(
    backend: ElasticsearchBackend, needs: Callable[[str], None]
) -> None:
    backend.index(
        [
            doc("person", 1, title="Ann Lee Ann", job_title="Ann's assistant"),
            doc("person", 2, title="Ann"),
            doc("person", 3, title="Kim Rust", job_title="Engineer", skills=("Kubernetes",)),
            doc("person", 4, title="Lou Ops", job_title="Kubernetes curious"),
        ]
    )
    assert ids(backend.search(SearchQuery("ann", types=frozenset({"person"})), OUTSIDER))[0] == (
        "person",
        2,
    )
    assert ids(backend.search(SearchQuery("kubernetes"), OUTSIDER))[0] == ("person", 3)
    assert ids(backend.search(SearchQuery("jol"), OUTSIDER)) == []  # no such name prefix
    assert ids(backend.search(SearchQuery("lo"), OUTSIDER)) == [("person", 4)]  # name prefix

    needs("function_score decay")
    backend.index(
        [
            # The old posts match best on their words alone (the shorter text); the new one wins.
            doc("post", 1, body="launch checklist", created_at=NOW - timedelta(days=400)),
            doc("post", 2, body="launch checklist, v2", created_at=NOW - timedelta(hours=1)),
            doc("post", 3, body="launch checklist", created_at=NOW - timedelta(days=40)),
        ]
    )
    assert ids(backend.search(SearchQuery("launch checklist"), OUTSIDER)) == [
        ("post", 2),
        ("post", 3),
        ("post", 1),
    ]


# --- bad input -----------------------------------------------------------------------------------

BAD_TEXT = [
    "",
    "   ",
    '"unbalanced quote',
    '"quoted phrase"',
    "*",
    "wild*card?",
    "-minus +plus",
    "a AND b OR NOT c",
    "(((",
    ")]}",
    "path/with/slashes\\and\\backslashes",
    "title:foo body:[a TO z]",
    "~fuzzy^3 boost",
    "a" * 10_000,
    " ".join(["word"] * 5_000),
    "🚀🔥 emoji 👩‍💻",
    "nul\x00byte",
    "\x00",
    "control\x07\x1b[31mchars",
    "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c \ufb01 \uff26\uff35\uff2c\uff2c",
    "\u202eright-to-left\u202c",
    "\ud7ff\ue000\ue001",
    "lone \ud800 surrogate",
    "\udfff",
    "\ufeff\u200b\u00ad",
    "ǅ İ ß ﬀ",
    '{"query": {"match_all": {}}}',
    "<script>alert(1)</script>",
    "@",
    "#",
    "%",
]


@pytest.mark.parametrize("text", BAD_TEXT, ids=lambda t: repr(t[:20]))
def test_bad_query_text_never_raises_nor_leaks(backend: ElasticsearchBackend, text: str) -> None:
    backend.index(
        [
            doc("post", 1, body="visible words"),
            doc("post", 2, audience={group_token(5)}, body="hidden words"),
            doc("person", 1, title="Visible Person"),
        ]
    )
    query = SearchQuery(text, facets=("type", "skill"), filters={"skill": (text,)})
    for q in (SearchQuery(text), query, SearchQuery(text, limit=10_000, offset=-5)):
        result = backend.search(q, OUTSIDER)
        assert ("post", 2) not in ids(result)
        assert result.total <= 2
    kinds: tuple[Literal["person", "hashtag"], ...] = ("person", "hashtag")
    for kind in kinds:
        assert ("post", 2) not in ids(backend.suggest(kind, text, OUTSIDER, 5))


# --- the cluster going away ----------------------------------------------------------------------


def _every_call(backend: ElasticsearchBackend) -> list[tuple[str, Callable[[], object]]]:
    return [
        ("index", lambda: backend.index([doc("post", 1)])),
        ("remove", lambda: backend.remove([("post", 1, 1)])),
        ("search", lambda: backend.search(SearchQuery("x"), OUTSIDER)),
        ("suggest", lambda: backend.suggest("person", "x", OUTSIDER, 5)),
        ("stored", lambda: list(backend.stored("post"))),
        ("counts", backend.counts),
        ("rebuild", lambda: backend.rebuild([doc("post", 1)])),
    ]


def test_a_closed_port_is_search_unavailable(server: ElasticServer) -> None:
    backend = ElasticsearchBackend(
        f"http://127.0.0.1:{free_port()}",
        prefix="esn-down",
        request_timeout=2,
        max_retries=0,
        **server.client_options(),
    )
    for name, call in _every_call(backend):
        with pytest.raises(SearchUnavailable):
            call()
        assert name


def test_a_server_that_does_not_answer_is_search_unavailable(server: ElasticServer) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        backend = ElasticsearchBackend(
            f"http://127.0.0.1:{listener.getsockname()[1]}",
            prefix="esn-silent",
            request_timeout=0.3,
            max_retries=0,
            **server.client_options(),
        )
        started = time.monotonic()
        with pytest.raises(SearchUnavailable):
            backend.search(SearchQuery("x"), OUTSIDER)
        with pytest.raises(SearchUnavailable):
            backend.index([doc("post", 1)])
        assert time.monotonic() - started < 10
    finally:
        listener.close()


def test_a_stopped_server_is_search_unavailable(server: ElasticServer) -> None:
    if not server.osmem:
        pytest.skip("stops a server of its own: osmem only (a closed port covers a real cluster)")
    own = start_osmem()
    try:
        with own.backend(request_timeout=2, max_retries=0) as backend:
            backend.index([doc("post", 1, body="before the outage")])
            assert backend.search(SearchQuery("outage"), OUTSIDER).total == 1
            own.stop()
            for _name, call in _every_call(backend):
                with pytest.raises(SearchUnavailable):
                    call()
    finally:
        own.stop()


def test_drop_deletes_every_index_of_the_prefix_and_no_other(server: ElasticServer) -> None:
    with server.backend() as other, server.backend() as backend:
        other.index(_posts(1))
        backend.index(_posts(3))
        backend.rebuild(_posts(2))
        backend.drop()
        es = backend.client
        assert es.indices.get_alias(index=f"{backend.prefix}-*", allow_no_indices=True) == {}
        assert other.counts()["post"] == 1
        backend.index(_posts(1))  # and it starts again from nothing
        assert backend.counts()["post"] == 1
