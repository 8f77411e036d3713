"""entry identity: `entry_key` unique per source, a nullable unique `canonical_url` for finding
the same article in another source, `url` no longer unique (it keeps the link's fragment),
and `page_status` for article pages fetched over several polls

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

Existing rows keep their id, url and everything else. Their url was normalised and unique,
so it becomes their canonical URL as it is, and their key is their guid, else that url: the
keys a poll computes for the same entries, except for guid-less links with a fragment, which
the poller then repairs in place (`storage.articles.insert_new_articles`).

SQLite cannot drop the unique constraint on `url` without rebuilding the table, and dropping
the old table with foreign keys enforced (as `storage.db` connects) deletes every summary by
cascade; SQLite also drops the table's triggers with it. So the summaries are copied aside and
put back, and the search index's delete trigger is created again.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FTS_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS article_fts_delete AFTER DELETE ON articles BEGIN "
    "DELETE FROM article_fts WHERE rowid = old.id; END"
)
_KEY_OF_ROW = "CASE WHEN guid IS NOT NULL AND guid <> '' THEN 'id:' || guid ELSE 'link:' || url END"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("entry_key", sqlmodel.sql.sqltypes.AutoString(length=2010), nullable=True)
        )
        batch_op.add_column(
            sa.Column("canonical_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True)
        )
        batch_op.add_column(
            sa.Column("page_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    op.execute(f"UPDATE articles SET entry_key = {_KEY_OF_ROW}, canonical_url = url")
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE _summaries_0005 AS SELECT * FROM summaries")
    naming = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
    with op.batch_alter_table(
        "articles", schema=None, recreate="always" if sqlite else "auto", naming_convention=naming
    ) as batch_op:
        batch_op.alter_column(
            "entry_key",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=2010),
            nullable=False,
        )
        # SQLite's is unnamed (named here by the convention); PostgreSQL named it itself.
        batch_op.drop_constraint("uq_articles_url" if sqlite else "articles_url_key", "unique")
        batch_op.create_unique_constraint("uq_articles_source_entry", ["source_id", "entry_key"])
        batch_op.create_unique_constraint("uq_articles_canonical_url", ["canonical_url"])
        batch_op.create_index("ix_articles_page_status", ["page_status", "source_id"])
    if sqlite:
        # Whether the rebuild cascaded (foreign keys on) or not, summaries end as they were.
        op.execute("DELETE FROM summaries")
        op.execute("INSERT INTO summaries SELECT * FROM _summaries_0005")
        op.execute("DROP TABLE _summaries_0005")
        op.execute(_FTS_TRIGGER)


def downgrade() -> None:
    """Back to a unique normalised url: of the entries that now share one (a diary's posts of
    a day), only the first stays."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute(
        "DELETE FROM articles WHERE id NOT IN "
        "(SELECT MIN(id) FROM articles GROUP BY COALESCE(canonical_url, url))"
    )
    op.execute("UPDATE articles SET url = COALESCE(canonical_url, url)")
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE _summaries_0005 AS SELECT * FROM summaries")
    with op.batch_alter_table(
        "articles", schema=None, recreate="always" if sqlite else "auto"
    ) as batch_op:
        batch_op.drop_index("ix_articles_page_status")
        batch_op.drop_constraint("uq_articles_canonical_url", "unique")
        batch_op.drop_constraint("uq_articles_source_entry", "unique")
        batch_op.create_unique_constraint(
            "uq_articles_url" if sqlite else "articles_url_key", ["url"]
        )
        batch_op.drop_column("page_status")
        batch_op.drop_column("canonical_url")
        batch_op.drop_column("entry_key")
    if sqlite:
        op.execute("DELETE FROM summaries")
        op.execute("INSERT INTO summaries SELECT * FROM _summaries_0005")
        op.execute("DROP TABLE _summaries_0005")
        op.execute(_FTS_TRIGGER)
