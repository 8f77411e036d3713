"""spend: why a summary is extractive (`summaries.fallback`), and one row per summarisation
outcome (`summary_outcomes`) for `ainews stats`

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Existing summaries get no fallback reason: the cause of an old extractive summary is unknown,
so none of them is re-summarised (only those recorded as budget fallbacks are).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fallback", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.create_index("ix_summaries_fallback", ["fallback"], unique=False)
    op.create_table(
        "summary_outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("reasks", sa.Integer(), nullable=False),
        sa.Column("resummary", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("summary_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summary_outcomes_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("summary_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summary_outcomes_day"))
    op.drop_table("summary_outcomes")
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.drop_index("ix_summaries_fallback")
        batch_op.drop_column("fallback")
