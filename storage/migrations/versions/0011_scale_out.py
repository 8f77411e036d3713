"""scale-out: claims on sources and articles, named leases, the shared daily token budget

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

The budget row of today starts from what `token_usage` already recorded for it (the day of the
upgrade), so upgrading mid-day does not hand out the day's tokens twice.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("sources", "articles"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
            )
            batch_op.add_column(
                sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
            )
    op.create_table(
        "leases",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "token_budget_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("committed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.execute(
        "INSERT INTO token_budget_days (day, committed) "
        "SELECT day, SUM(prompt_tokens + completion_tokens) FROM token_usage GROUP BY day"
    )


def downgrade() -> None:
    op.drop_table("token_budget_days")
    op.drop_table("leases")
    # Plain ALTER TABLE … DROP COLUMN (SQLite ≥ 3.35): a batch rebuild of `articles` would
    # delete every summary by cascade and drop the search index's trigger (see 0005).
    for table in ("articles", "sources"):
        for column in ("claimed_until", "claimed_by"):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
