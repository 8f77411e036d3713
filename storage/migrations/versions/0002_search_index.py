"""search index: FTS5 on SQLite, tsvector + GIN on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE article_search ("
            " article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,"
            " document TSVECTOR NOT NULL,"
            " chars TSVECTOR NOT NULL)"
        )
        op.execute("CREATE INDEX ix_article_search_document ON article_search USING GIN (document)")
        op.execute("CREATE INDEX ix_article_search_chars ON article_search USING GIN (chars)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE article_fts USING fts5("
            "title, keywords, summary, body, chars, tokenize='unicode61 remove_diacritics 0')"
        )
        op.execute(
            "CREATE TRIGGER article_fts_delete AFTER DELETE ON articles BEGIN "
            "DELETE FROM article_fts WHERE rowid = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE article_search")
    else:
        op.execute("DROP TRIGGER article_fts_delete")
        op.execute("DROP TABLE article_fts")
