"""The embedded search backend: SQLite FTS5, or PostgreSQL full-text search, on the
application's own database.

Documents live in ``search_documents`` (with ``search_audience`` and ``search_facets``); the
full-text structures are made by migration 0009:

* SQLite: ``search_fts``, an FTS5 external-content table over ``search_documents`` (columns
  title, body, keywords; tokenizer ``unicode61 remove_diacritics 2``; prefix indexes of 2 and
  3 characters), kept in step by this module (no triggers: a rebuild then fills the documents
  and runs FTS5's ``rebuild`` once); ranked by ``bm25`` with column weights, snippets by
  ``snippet()``;
* PostgreSQL: an expression GIN index on ``to_tsvector('simple', title || body || keywords)``,
  ranked by ``ts_rank``, snippets by ``ts_headline``; ``pg_trgm`` indexes names for infix
  autocomplete. The ``simple`` configuration (lower-casing, no stemming, no stop words) because
  the organisation writes in several languages and one stemmer would mangle the others, and
  because it matches what FTS5's unicode61 does, so both databases find the same things.

SQL text is assembled from fixed fragments of this module only (hence the ``noqa: S608``);
every value, the user's words included, is a bound parameter.

The viewer's audience tokens filter inside the SQL (an ``EXISTS`` on ``search_audience``), so
totals and facet counts count only what the viewer may see. User text never reaches the
FTS5 or tsquery syntax: it is cut into words, each quoted (``safe_terms``).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from esn.database import write_intent
from esn.extensions import db
from esn.search.backend import (
    DOC_TYPES,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Audience,
    DocType,
    Document,
    Hit,
    SearchQuery,
    SearchResult,
)
from esn.search.models import SearchAudience, SearchDocument, SearchFacet

CONTENT_TYPES = ("post", "article", "comment", "photo")
FACETS = ("department", "location", "skill")
MAX_TERMS = 12
MAX_TERM_CHARS = 64
MAX_INPUT_CHARS = 2000
# A month: content of this age ranks at 1.5 times its text score, brand new at twice.
RECENCY_SECONDS = 30 * 24 * 3600
_WORD = re.compile(r"[^\W_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Counting stops after COUNT_CAP visible matches: past it, totals and facet counts are lower
# bounds (``exact_counts`` false) and, on SQLite, the newest RANK_WINDOW matches are ranked. A
# word found in most of a million posts would otherwise have every one of them scored (and its
# audience checked) for every page. The API's deepest page (offset 1,000 + 50) is within the
# window.
COUNT_CAP = 10_000
RANK_WINDOW = 2_000
# On SQLite the last word is matched as it is, not also as a prefix, when FTS5's vocabulary has
# it in more documents than this: the count is past the cap with the word alone, and the prefix
# (`with` → within, without …: FTS5 has prefix indexes of 2 and 3 characters only) would make
# FTS5 merge the lists of every longer word before it could walk them newest first.
WHOLE_WORD_DOCUMENTS = 5 * COUNT_CAP
TSV = (
    "to_tsvector('simple'::regconfig, coalesce(d.title, '') || ' ' || coalesce(d.body, '') "
    "|| ' ' || coalesce(d.keywords, ''))"
)


def safe_terms(raw: str) -> list[str]:
    """The words of a user's query: letters and digits only (NFKC, lower case), at most
    ``MAX_TERMS`` of at most ``MAX_TERM_CHARS``, in order, without repeats. Quotes, ``*``,
    ``-``, ``NEAR``, parentheses and the like are separators or plain words, never syntax."""
    cleaned = _CONTROL.sub(" ", unicodedata.normalize("NFKC", raw[:MAX_INPUT_CHARS]))
    seen: list[str] = []
    for word in _WORD.findall(cleaned.lower()):
        word = word[:MAX_TERM_CHARS]
        if word not in seen:
            seen.append(word)
        if len(seen) == MAX_TERMS:
            break
    return seen


def fts5_match(terms: Sequence[str], *, prefix_last: bool = True) -> str:
    """An FTS5 query: every term quoted (so never an operator), all required; the last one as
    a prefix (as-you-type) when it has two characters or more."""
    parts = [f'"{t}"' for t in terms]
    if prefix_last and terms and len(terms[-1]) >= 2:
        parts[-1] += "*"
    return " ".join(parts)


def tsquery(terms: Sequence[str], *, prefix_last: bool = True) -> str:
    """A ``to_tsquery`` text: every term a quoted lexeme, all required, the last a prefix."""
    parts = [f"'{t}'" for t in terms]
    if prefix_last and terms and len(terms[-1]) >= 2:
        parts[-1] += ":*"
    return " & ".join(parts)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keywords(doc: Document) -> str:
    parts = [doc.handle or "", doc.job_title or "", *doc.skills, doc.department or ""]
    parts.append(doc.location or "")
    return " ".join(p for p in parts if p)


def _facet_rows(doc: Document) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if doc.department:
        rows.append(("department", doc.department[:200]))
    if doc.location:
        rows.append(("location", doc.location[:200]))
    rows.extend(("skill", s[:200]) for s in dict.fromkeys(doc.skills) if s)
    return rows


COLUMNS = (
    "doc_type",
    "object_id",
    "version",
    "title",
    "body",
    "keywords",
    "name_key",
    "group_id",
    "author_id",
    "post_id",
    "created_ts",
)


def _values(doc: Document) -> tuple[Any, ...]:
    """The ``search_documents`` row of a document, in the order of ``COLUMNS``."""
    return (
        doc.type,
        doc.id,
        doc.version,
        doc.title,
        doc.body,
        _keywords(doc),
        doc.title.lower()[:200],
        doc.group_id,
        doc.author_id,
        doc.post_id,
        int(doc.created_at.timestamp()) if doc.created_at else None,
    )


def _row(doc: Document) -> dict[str, Any]:
    return dict(zip(COLUMNS, _values(doc), strict=True))


@dataclass(frozen=True)
class _Match:
    """The SQL of what a query matches: its WHERE clause and FROM source; on SQLite with words,
    the FTS5 table that matches them; and the oldest row ranked when only the newest are."""

    where: str
    source: str
    fts: str | None = None
    window: int | None = None

    def within(self, oldest: int) -> _Match:
        return replace(self, window=oldest)

    @property
    def where_in_window(self) -> str:
        if self.window is None or self.fts is None:
            return self.where
        # A rowid range FTS5 itself applies while it walks its index.
        return f"{self.where} AND {self.fts}.rowid >= :window"


class SqlBackend:
    """The SearchBackend of the application's database (see the module's docstring)."""

    name = "sql"

    # --- writing ---------------------------------------------------------------------------

    def _write(self) -> Any:
        return _WriteTransaction()

    def index(self, documents: Sequence[Document]) -> None:
        if not documents:
            return
        with self._write() as conn:
            sqlite = conn.dialect.name == "sqlite"
            for doc in documents:
                old = _stored(conn, doc.type, doc.id)
                if old is not None and old.version > doc.version:
                    continue  # a newer state is indexed already (a late or replayed job)
                row = _row(doc)
                if old is None:
                    rid = conn.execute(
                        insert(SearchDocument).values(**row).returning(SearchDocument.id)
                    ).scalar_one()
                else:
                    rid = old.id
                    if sqlite:
                        _fts_delete(conn, doc.type, old)
                    conn.execute(
                        update(SearchDocument).where(SearchDocument.id == rid).values(**row)
                    )
                    conn.execute(delete(SearchAudience).where(SearchAudience.document_id == rid))
                    conn.execute(delete(SearchFacet).where(SearchFacet.document_id == rid))
                self._children(conn, [(rid, doc)])
                if sqlite:
                    conn.execute(
                        text(
                            "INSERT INTO search_fts(rowid, title, body, keywords) "
                            "VALUES (:id, :title, :body, :keywords)"
                        ),
                        {"id": rid, **row},
                    )
                    if doc.type == "person":
                        conn.execute(
                            text(
                                "INSERT INTO search_people_fts(rowid, title, keywords) "
                                "VALUES (:id, :title, :keywords)"
                            ),
                            {"id": rid, **row},
                        )

    @staticmethod
    def _children(conn: Connection, docs: list[tuple[int, Document]]) -> None:
        tokens = [{"document_id": rid, "token": t} for rid, d in docs for t in sorted(d.audience)]
        facets = [
            {"document_id": rid, "facet": f, "value": v}
            for rid, d in docs
            for f, v in _facet_rows(d)
        ]
        if tokens:
            conn.execute(insert(SearchAudience), tokens)
        if facets:
            conn.execute(insert(SearchFacet), facets)

    def remove(self, refs: Sequence[tuple[DocType, int, int]]) -> None:
        if not refs:
            return
        with self._write() as conn:
            sqlite = conn.dialect.name == "sqlite"
            for doc_type, object_id, version in refs:
                old = _stored(conn, doc_type, object_id)
                if old is None or old.version > version:
                    continue
                if sqlite:
                    _fts_delete(conn, doc_type, old)
                conn.execute(delete(SearchAudience).where(SearchAudience.document_id == old.id))
                conn.execute(delete(SearchFacet).where(SearchFacet.document_id == old.id))
                conn.execute(delete(SearchDocument).where(SearchDocument.id == old.id))

    def rebuild(self, documents: Iterable[Document]) -> int:
        """Empty and refill the tables in one transaction: readers keep the old index (their
        snapshot) until it commits. On SQLite the FTS5 index is built once at the end."""
        count = 0
        with _rebuild_cache() as grow_cache, self._write() as conn:
            grow_cache(conn)
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('delete-all')"))
                conn.execute(
                    text("INSERT INTO search_people_fts(search_people_fts) VALUES ('delete-all')")
                )
            conn.execute(delete(SearchAudience))
            conn.execute(delete(SearchFacet))
            conn.execute(delete(SearchDocument))
            with _indexes_built_after(conn):
                batch: list[tuple[int, Document]] = []
                for doc in documents:
                    count += 1
                    batch.append((count, doc))
                    if len(batch) >= 5000:
                        self._insert_batch(conn, batch)
                        batch = []
                self._insert_batch(conn, batch)
            if sqlite:
                conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))
                # Not 'rebuild': that would read every row of the content table.
                conn.execute(
                    text(
                        "INSERT INTO search_people_fts(rowid, title, keywords) "
                        "SELECT id, title, keywords FROM search_documents "
                        "WHERE doc_type = 'person'"
                    )
                )
            else:
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('search_documents', 'id'), "
                        "GREATEST(:n, 1), :called)"
                    ),
                    {"n": count, "called": count > 0},
                )
        return count

    def _insert_batch(self, conn: Connection, batch: list[tuple[int, Document]]) -> None:
        # The driver's own executemany: a rebuild writes millions of rows, and SQLAlchemy's
        # per-row parameter processing would double its time.
        if not batch:
            return
        marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            f"INSERT INTO search_documents (id, {', '.join(COLUMNS)}) "  # noqa: S608 (fixed)
            f"VALUES ({', '.join([marker] * (len(COLUMNS) + 1))})",
            [(rid, *_values(d)) for rid, d in batch],
        )
        # In (token, document) order: the primary key's index then grows at a few places
        # instead of one per document.
        tokens = sorted(
            ((rid, t) for rid, d in batch for t in d.audience), key=lambda row: (row[1], row[0])
        )
        facets = [(rid, f, v) for rid, d in batch for f, v in _facet_rows(d)]
        if tokens:
            conn.exec_driver_sql(
                "INSERT INTO search_audience (document_id, token) "  # noqa: S608 (fixed)
                f"VALUES ({marker}, {marker})",
                tokens,
            )
        if facets:
            conn.exec_driver_sql(
                "INSERT INTO search_facets (document_id, facet, value) "  # noqa: S608 (fixed)
                f"VALUES ({marker}, {marker}, {marker})",
                facets,
            )

    # --- reading ---------------------------------------------------------------------------

    def stored(self, doc_type: DocType) -> Iterator[tuple[int, int]]:
        rows = db.session.execute(
            select(SearchDocument.object_id, SearchDocument.version)
            .where(SearchDocument.doc_type == doc_type)
            .order_by(SearchDocument.object_id)
        ).tuples()
        yield from rows

    def counts(self) -> dict[str, int]:
        rows = (
            db.session.execute(
                select(SearchDocument.doc_type, func.count()).group_by(SearchDocument.doc_type)
            )
            .tuples()
            .all()
        )
        found = dict(rows)
        return {t: int(found.get(t, 0)) for t in DOC_TYPES}

    def search(self, query: SearchQuery, audience: Audience) -> SearchResult:
        terms = safe_terms(query.text)
        if not audience.tokens or not query.types or (not terms and not query.filters):
            return SearchResult(hits=[], total=0, facets={f: {} for f in query.facets})
        conn = db.session.connection()
        dialect = conn.dialect.name
        params: dict[str, Any] = {}
        # (People-only queries keep the prefix: their own index is small.)
        whole = (
            dialect == "sqlite"
            and query.types != frozenset({"person"})
            and _in_many_documents(conn, terms[-1] if terms else "")
        )
        match = self._conditions(dialect, terms, query, audience, params, whole_words=whole)
        # The newest visible matches, at most COUNT_CAP + 1 of them: counting stops there.
        any_type: list[tuple[int, str]] | None = None
        wanted: list[tuple[int, str]] | None = None
        if "type" in query.facets:
            # The type facet ignores the type filter, so that a client can offer the others;
            # when it holds every match, the wanted types' count is taken from it.
            facet_params: dict[str, Any] = {}
            every = self._conditions(
                dialect, terms, query, audience, facet_params, with_types=False, whole_words=whole
            )
            any_type = self._newest(conn, every, facet_params)
            if len(any_type) <= COUNT_CAP or query.types >= frozenset(DOC_TYPES):
                wanted = [row for row in any_type if row[1] in query.types]
        if wanted is None:
            wanted = self._newest(conn, match, params)
        exact = len(wanted) <= COUNT_CAP and (any_type is None or len(any_type) <= COUNT_CAP)
        total = min(len(wanted), COUNT_CAP)
        if len(wanted) > COUNT_CAP and match.fts is not None:
            # Too many to rank them all for every page: the newest RANK_WINDOW are ranked.
            match = match.within(wanted[RANK_WINDOW - 1][0])
        hits = self._page(conn, terms, query, match, params) if total else []
        facets: dict[str, dict[str, int]] = {}
        for facet in query.facets:
            if not total:
                facets[facet] = {}
            elif facet == "type" and any_type is not None:
                # The wanted types from their own count when it is whole (it is whenever
                # the total is exact), the others from the newest matches of any type.
                wanted_in_full = len(wanted) <= COUNT_CAP
                counted = Counter(
                    t for _, t in any_type[:COUNT_CAP] if not (wanted_in_full and t in query.types)
                )
                if wanted_in_full:
                    counted.update(t for _, t in wanted)
                facets[facet] = {t: counted[t] for t in sorted(counted, key=lambda t: -counted[t])}
            else:
                facets[facet] = self._facet(conn, dialect, terms, query, audience, facet)
        return SearchResult(hits=hits, total=total, facets=facets, exact_counts=exact)

    def _conditions(
        self,
        dialect: str,
        terms: list[str],
        query: SearchQuery,
        audience: Audience,
        params: dict[str, Any],
        *,
        with_types: bool = True,
        people: bool = False,
        whole_words: bool = False,
    ) -> _Match:
        """The WHERE clause and the FROM source of a query. ``people``: people only (as is a
        query whose only type is person), matched in their own full-text index."""
        clauses: list[str] = []
        people = people or (with_types and query.types == frozenset({"person"}))
        fts: str | None = None
        if terms and dialect == "sqlite":
            fts = "search_people_fts" if people else "search_fts"
            # CROSS JOIN keeps the FTS5 index the outer loop: without it SQLite may prefer to
            # read every document of a type (or every keyword value) and ask FTS5 about each.
            source = f"{fts} CROSS JOIN search_documents d ON d.id = {fts}.rowid"
            clauses.append(f"{fts} MATCH :match")
            params["match"] = fts5_match(terms, prefix_last=people or not whole_words)
        else:
            source = "search_documents d"
            if terms:
                clauses.append(f"{TSV} @@ to_tsquery('simple'::regconfig, :tsq)")
                params["tsq"] = tsquery(terms)
        if people:
            # A literal, so that PostgreSQL may use its index of people alone (migration 0010).
            clauses.append("d.doc_type = 'person'")
        if with_types:
            types = sorted(query.types)
            names = [f"t{i}" for i in range(len(types))]
            clauses.append(f"d.doc_type IN ({', '.join(':' + n for n in names)})")
            params.update(zip(names, types, strict=True))
        tokens = sorted(audience.tokens)
        names = [f"a{i}" for i in range(len(tokens))]
        params.update(zip(names, tokens, strict=True))
        clauses.append(
            "EXISTS (SELECT 1 FROM search_audience a WHERE a.document_id = d.id AND a.token IN "  # noqa: S608 (fixed fragments; values are bound)
            f"({', '.join(':' + n for n in names)}))"
        )
        for i, (facet, values) in enumerate(sorted(query.filters.items())):
            if facet not in FACETS or not values:
                continue
            vnames = [f"f{i}v{j}" for j in range(len(values))]
            params[f"f{i}"] = facet
            params.update(zip(vnames, values, strict=True))
            clauses.append(
                "EXISTS (SELECT 1 FROM search_facets f WHERE f.document_id = d.id "  # noqa: S608 (fixed fragments; values are bound)
                f"AND f.facet = :f{i} AND f.value IN ({', '.join(':' + n for n in vnames)}))"
            )
        return _Match(" AND ".join(clauses), source, fts)

    @staticmethod
    def _newest(conn: Connection, match: _Match, params: dict[str, Any]) -> list[tuple[int, str]]:
        """(id, type) of the visible matches, newest first on SQLite (FTS5 walks its index
        backwards and stops at the limit), at most ``COUNT_CAP + 1``."""
        order = f"ORDER BY {match.fts}.rowid DESC " if match.fts else ""
        sql = (
            f"SELECT d.id, d.doc_type FROM {match.source} WHERE {match.where} "  # noqa: S608 (fixed fragments; values are bound)
            f"{order}LIMIT {COUNT_CAP + 1}"
        )
        return [(int(r[0]), str(r[1])) for r in conn.execute(text(sql), params)]

    def _page(
        self,
        conn: Connection,
        terms: list[str],
        query: SearchQuery,
        match: _Match,
        params: dict[str, Any],
    ) -> list[Hit]:
        dialect = conn.dialect.name
        phrase = " ".join(terms)
        params = {
            **params,
            "phrase": phrase,
            "phrase_prefix": _like_escape(phrase) + "%",
            "phrase_word": "% " + _like_escape(phrase) + " %",
            "now": int(time.time()),
            "limit": query.limit,
            "offset": query.offset,
            "hs": HIGHLIGHT_START,
            "he": HIGHLIGHT_END,
        }
        if match.window is not None:
            params["window"] = match.window
        content = ", ".join(f"'{t}'" for t in CONTENT_TYPES)
        boosts = (
            "(CASE WHEN d.name_key = :phrase THEN 1000.0 "
            "WHEN d.name_key LIKE :phrase_prefix ESCAPE '\\' THEN 50.0 "
            "WHEN (' ' || d.name_key || ' ') LIKE :phrase_word ESCAPE '\\' THEN 20.0 "
            "ELSE 0.0 END)"
            " + (CASE WHEN EXISTS (SELECT 1 FROM search_facets s WHERE s.document_id = d.id "
            "AND s.facet = 'skill' AND lower(s.value) = :phrase) THEN 100.0 ELSE 0.0 END)"
        )
        recency = (
            f"(CASE WHEN d.doc_type IN ({content}) AND d.created_ts IS NOT NULL THEN "
            f"1.0 / (1.0 + (CAST(:now - d.created_ts AS FLOAT) / {RECENCY_SECONDS}.0)) "
            "ELSE 0.0 END)"
        )
        if not terms:
            text_score = "0.0"
        elif match.fts is not None:
            # bm25() is negative, better when lower; weights: title, (body,) keywords.
            weights = "10.0, 5.0" if match.fts == "search_people_fts" else "10.0, 1.0, 5.0"
            text_score = f"(-bm25({match.fts}, {weights}))"
        else:
            text_score = f"ts_rank({TSV}, to_tsquery('simple'::regconfig, :tsq))"
        score = f"({text_score} * (1.0 + {recency}) + {boosts})"
        if dialect == "sqlite":
            sql = (
                f"SELECT d.id, d.doc_type, d.object_id, {score} AS score, d.title AS snip "  # noqa: S608 (fixed fragments; values are bound)
                f"FROM {match.source} WHERE {match.where_in_window} "
                "ORDER BY score DESC, d.id DESC LIMIT :limit OFFSET :offset"
            )
            rows = conn.execute(text(sql), params).all()
            snippets = self._snippets(conn, match, params, [int(r.id) for r in rows])
            return [
                Hit(
                    type=r.doc_type,
                    id=int(r.object_id),
                    score=float(r.score),
                    snippet=snippets.get(int(r.id), r.snip or ""),
                )
                for r in rows
            ]
        headline = (
            "ts_headline('simple'::regconfig, concat_ws(' … ', nullif(p.title, ''), "
            "nullif(p.body, ''), nullif(p.keywords, '')), to_tsquery('simple'::regconfig, "
            ":tsq), :hl_options)"
            if terms
            else "p.title"
        )
        params["hl_options"] = (
            f"StartSel={HIGHLIGHT_START}, StopSel={HIGHLIGHT_END}, MaxWords=24, MinWords=8, "
            "ShortWord=1, MaxFragments=1, FragmentDelimiter=…"
        )
        # The headline of the page's rows only (the inner query ranks; the outer one quotes).
        sql = (
            f"SELECT p.doc_type, p.object_id, p.score, {headline} AS snip FROM ("  # noqa: S608 (fixed fragments; values are bound)
            f"SELECT d.doc_type, d.object_id, d.title, d.body, d.keywords, d.id, "
            f"{score} AS score FROM {match.source} WHERE {match.where} "
            "ORDER BY score DESC, d.id DESC LIMIT :limit OFFSET :offset) p "
            "ORDER BY p.score DESC, p.id DESC"
        )
        return [
            Hit(type=r.doc_type, id=int(r.object_id), score=float(r.score), snippet=r.snip or "")
            for r in conn.execute(text(sql), params)
        ]

    @staticmethod
    def _snippets(
        conn: Connection, match: _Match, params: dict[str, Any], ids: list[int]
    ) -> dict[int, str]:
        """FTS5 snippets of the page's rows only: ``snippet()`` reads and tokenizes a row's
        text again, too dear for every match a query ranks."""
        if match.fts is None or not ids:
            return {}
        names = [f"r{i}" for i in range(len(ids))]
        sql = (
            f"SELECT rowid, snippet({match.fts}, -1, :hs, :he, '…', 16) FROM {match.fts} "  # noqa: S608 (fixed fragments; values are bound)
            f"WHERE {match.fts} MATCH :match AND rowid IN ({', '.join(':' + n for n in names)})"
        )
        values = {"match": params["match"], "hs": params["hs"], "he": params["he"]}
        values.update(zip(names, ids, strict=True))
        return {int(r[0]): str(r[1] or "") for r in conn.execute(text(sql), values)}

    def _facet(
        self,
        conn: Connection,
        dialect: str,
        terms: list[str],
        query: SearchQuery,
        audience: Audience,
        facet: str,
    ) -> dict[str, int]:
        """Counts of a keyword facet (department, location, skill) over the people who match."""
        params: dict[str, Any] = {"facet_name": facet}
        match = self._conditions(dialect, terms, query, audience, params, people=True)
        join = "CROSS JOIN" if dialect == "sqlite" else "JOIN"
        sql = (
            f"SELECT g.value AS v, count(*) AS n FROM {match.source} {join} search_facets g "  # noqa: S608 (fixed fragments; values are bound)
            f"ON g.document_id = d.id AND g.facet = :facet_name WHERE {match.where} "
            "GROUP BY g.value ORDER BY n DESC, g.value LIMIT 50"
        )
        rows = conn.execute(text(sql), params).all()
        return {str(r.v): int(r.n) for r in sorted(rows, key=lambda r: (-r.n, r.v))}

    def suggest(
        self, kind: Literal["person", "hashtag"], prefix: str, audience: Audience, limit: int
    ) -> list[Hit]:
        terms = safe_terms(prefix)
        if not terms or not audience.tokens:
            return []
        if kind == "person":
            result = self.search(
                SearchQuery(text=" ".join(terms), types=frozenset({"person"}), limit=limit),
                audience,
            )
            return result.hits
        # Hashtags: by the start of the tag (name_key is the lower-cased label).
        tokens = sorted(audience.tokens)
        stmt = (
            select(SearchDocument.object_id, SearchDocument.title)
            .where(
                SearchDocument.doc_type == "hashtag",
                SearchDocument.name_key.like(_like_escape("".join(terms)) + "%", escape="\\"),
                select(SearchAudience.document_id)
                .where(
                    SearchAudience.document_id == SearchDocument.id,
                    SearchAudience.token.in_(bindparam("tokens", tokens, expanding=True)),
                )
                .exists(),
            )
            .order_by(func.length(SearchDocument.name_key), SearchDocument.name_key)
            .limit(limit)
        )
        return [
            Hit(type="hashtag", id=int(r.object_id), score=1.0, snippet=r.title)
            for r in db.session.execute(stmt)
        ]


REBUILD_CACHE_KIB = 256 * 1024


@contextmanager
def _rebuild_cache() -> Iterator[Callable[[Connection], None]]:
    """On SQLite, a page cache of ``REBUILD_CACHE_KIB`` for the connection given to the
    callable, while it rebuilds (the default 2 MB makes a rebuild of millions of rows spill
    pages to the WAL over and over while it fills the tokens' index); the connection's own
    setting again once the block (and so the transaction) has ended."""
    grown: list[tuple[Any, int]] = []

    def grow(conn: Connection) -> None:
        if conn.dialect.name == "sqlite":
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            before = int(dbapi.execute("PRAGMA cache_size").fetchone()[0])
            dbapi.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
            grown.append((dbapi, before))

    try:
        yield grow
    finally:
        for dbapi, before in grown:
            with suppress(Exception):  # a connection closed meanwhile has lost it anyway
                dbapi.execute(f"PRAGMA cache_size = {before}")


@contextmanager
def _indexes_built_after(conn: Connection) -> Iterator[None]:
    """On SQLite, the search tables' secondary indexes dropped while the block fills the
    (emptied) tables and created again after it, in the same transaction: one sort per index
    instead of a B-tree insertion per row. The indexes are created from the SQL the schema
    holds, so they come back exactly as the migrations made them; a failure rolls back the
    drop with everything else."""
    if conn.dialect.name != "sqlite":
        yield
        return
    indexes = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        "AND tbl_name IN ('search_documents', 'search_audience', 'search_facets')"
    ).all()
    for name, _ in indexes:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _, sql in indexes:
        conn.exec_driver_sql(sql)


def _in_many_documents(conn: Connection, term: str) -> bool:
    """Whether FTS5's vocabulary has ``term`` in more than ``WHOLE_WORD_DOCUMENTS`` documents
    (any audience: a property of the word, not of the viewer)."""
    if not term:
        return False
    found = conn.exec_driver_sql(
        "SELECT doc FROM search_fts_vocab WHERE term = ?", (term,)
    ).scalar()
    return found is not None and int(found) > WHOLE_WORD_DOCUMENTS


def _stored(conn: Connection, doc_type: DocType, object_id: int) -> Any:
    """The indexed row of a document (what an update or removal replaces), or ``None``."""
    return conn.execute(
        select(
            SearchDocument.id,
            SearchDocument.version,
            SearchDocument.title,
            SearchDocument.body,
            SearchDocument.keywords,
        ).where(SearchDocument.doc_type == doc_type, SearchDocument.object_id == object_id)
    ).first()


def _fts_delete(conn: Connection, doc_type: DocType, old: Any) -> None:
    # An external-content FTS5 table is told what it indexed, to take it out.
    values = {"id": old.id, "title": old.title, "body": old.body, "keywords": old.keywords}
    conn.execute(
        text(
            "INSERT INTO search_fts(search_fts, rowid, title, body, keywords) "
            "VALUES ('delete', :id, :title, :body, :keywords)"
        ),
        values,
    )
    if doc_type == "person":
        conn.execute(
            text(
                "INSERT INTO search_people_fts(search_people_fts, rowid, title, keywords) "
                "VALUES ('delete', :id, :title, :keywords)"
            ),
            values,
        )


class _WriteTransaction:
    """The backend's writes, in the application session's own transaction, committed on
    success. What the session had open is ended first (the documents are built already; a
    rebuild reads its documents inside this transaction): on SQLite the transaction then
    begins IMMEDIATE instead of upgrading a read snapshot, which another writer may have made
    stale."""

    def __enter__(self) -> Connection:
        db.session.rollback()
        self._stack = ExitStack()
        self._stack.enter_context(write_intent())
        return db.session.connection()

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                db.session.commit()
            else:
                db.session.rollback()
        finally:
            self._stack.close()
