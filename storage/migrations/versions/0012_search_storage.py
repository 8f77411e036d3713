"""search index storage on PostgreSQL: every article's vectors out of line, a small heap

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

`article_search` rows were about 550 bytes in the heap: the document vector (6 KB on average
at 100k articles) was already TOASTed, but the `chars` vector (2 KB) stayed inline,
compressed. Every query plan reads heap rows first (a bitmap of the GIN matches, or a walk of
the newest articles), so 14 rows a page meant reading most of the 54 MB heap for a common
word. With `chars` stored out of line, uncompressed, and rows moved to TOAST from 128 bytes,
the heap is 834 pages instead of 6,860, and bench/search.py's p50 dropped 13% (37.4 → 32.7 ms
in interleaved runs).

Only rows written from now on are stored this way; `ainews reindex` rewrites them all. Nothing
changes on SQLite.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE article_search ALTER COLUMN chars SET STORAGE EXTERNAL,"
        " SET (toast_tuple_target = 128)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE article_search ALTER COLUMN chars SET STORAGE EXTENDED,"
        " RESET (toast_tuple_target)"
    )
