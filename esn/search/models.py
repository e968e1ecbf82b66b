"""The SQL search backend's tables: one row per indexed document, its audience tokens and its
keyword (facet) values. The full-text structures are dialect-specific and live outside the
models (migration 0009): an FTS5 external-content table ``search_fts`` over
``search_documents`` on SQLite, an expression GIN index (``ix_search_documents_tsv``) and a
trigram index on titles on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from esn.database import BigId
from esn.extensions import Base


class SearchDocument(Base):
    __tablename__ = "search_documents"
    __table_args__ = (
        UniqueConstraint("doc_type", "object_id"),
        Index("ix_search_documents_type_created", "doc_type", "created_ts"),
        # Never reuse a rowid: the FTS5 index is external content, keyed by it.
        {"sqlite_autoincrement": True},
    )

    # The FTS5 rowid (content_rowid): an INTEGER PRIMARY KEY on SQLite.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    doc_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # People: handle, job title, skills, department and location, as words to match.
    keywords: Mapped[str] = mapped_column(Text, default="")
    # The lower-cased title for exact-name-first ranking and name prefixes (autocomplete).
    name_key: Mapped[str] = mapped_column(String(200), default="", index=True)
    group_id: Mapped[int | None] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(Integer)
    post_id: Mapped[int | None] = mapped_column(BigInteger)
    # Seconds since the epoch (the recency boost is the same arithmetic on both databases).
    created_ts: Mapped[int | None] = mapped_column(BigInteger)


class SearchAudience(Base):
    """A document may be seen by a viewer who holds at least one of its tokens."""

    __tablename__ = "search_audience"
    __table_args__ = (Index("ix_search_audience_document", "document_id"),)

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("search_documents.id", ondelete="CASCADE"), primary_key=True
    )


class SearchFacet(Base):
    """Keyword values of a document (department, location, skill): filters and facet counts."""

    __tablename__ = "search_facets"
    __table_args__ = (Index("ix_search_facets_value", "facet", "value", "document_id"),)

    document_id: Mapped[int] = mapped_column(
        ForeignKey("search_documents.id", ondelete="CASCADE"), primary_key=True
    )
    facet: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
