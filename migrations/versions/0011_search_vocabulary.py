"""search: the FTS5 vocabulary of ``search_fts`` (SQLite), so that a query can tell a word found
in most documents from the start of a longer one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 02:15:00

"""

from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        # A view of the index FTS5 keeps anyway: nothing is stored.
        op.execute("CREATE VIRTUAL TABLE search_fts_vocab USING fts5vocab(search_fts, 'row')")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts_vocab")
