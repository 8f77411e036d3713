"""search index: stemmed English words and prefix queries; the index is rebuilt

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The index now holds English words stemmed (`storage/search/terms.py`): an index written by
the older code has `agents` where queries now look for `agent`, so every article in the index
is indexed again here, in batches, with the current code (about 700 articles a second on two
cores). Articles not in the index (not summarised yet) stay out, as before. Nothing else in
the database changes.

Downgrade keeps the rows as they are: after going back, `ainews reindex` with the older code
rebuilds them unstemmed.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text
from sqlmodel import Session

from storage.search.index import clear_index, index_articles

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BATCH = 500  # what `ainews reindex` uses


def upgrade() -> None:
    # The session joins the migration's transaction: a failure leaves the old index whole.
    session = Session(bind=op.get_bind())
    indexed = (
        "SELECT article_id FROM article_search"
        if session.get_bind().dialect.name == "postgresql"
        else "SELECT rowid FROM article_fts"
    )
    ids = sorted(int(i) for i in session.execute(text(indexed)).scalars())
    clear_index(session=session)
    for start in range(0, len(ids), _BATCH):
        index_articles(session=session, article_ids=ids[start : start + _BATCH])
    session.flush()


def downgrade() -> None:
    pass
