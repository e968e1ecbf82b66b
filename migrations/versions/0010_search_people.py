"""search: a full-text index of people alone (SQLite FTS5; a partial GIN index on PostgreSQL),
so that the @mention picker and the directory's facets never read the posts and articles that
share a name's first letters.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:10:00

"""

from alembic import op


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # External content over the same rows as search_fts; only people are inserted (by the
        # backend, as for search_fts), with their name and keyword columns.
        op.execute(
            "CREATE VIRTUAL TABLE search_people_fts USING fts5("
            "title, keywords, content='search_documents', content_rowid='id', "
            "tokenize='unicode61 remove_diacritics 2', prefix='1 2 3')"
        )
        op.execute(
            "INSERT INTO search_people_fts(rowid, title, keywords) "
            "SELECT id, title, keywords FROM search_documents WHERE doc_type = 'person'"
        )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_search_documents_people_tsv ON search_documents USING gin ("
            "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || coalesce(body, '') "
            "|| ' ' || coalesce(keywords, ''))) WHERE doc_type = 'person'"
        )


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_people_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_documents_people_tsv")
