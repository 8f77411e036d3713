"""feed health: per-source poll counters, failure streak, last success and disabling, and
the notices (disabled / recovered) posted once per destination

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Existing sources start their counters at zero. A source whose last poll succeeded gets that
poll as its last success; one that is failing gets its last poll as the start of its failure
streak (the first failure is not known), so the duration rule counts from there.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("poll_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("not_modified_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("failing_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_success_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("disabled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("disabled_reason", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
    op.execute(
        "UPDATE sources SET last_success_at = last_polled_at "
        "WHERE error_count = 0 AND last_polled_at IS NOT NULL"
    )
    op.execute("UPDATE sources SET failing_since = last_polled_at WHERE error_count > 0")
    op.create_table(
        "source_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("streak_started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "source_id", "kind", "streak_started_at", name="uq_source_notices_streak"
        ),
    )
    with op.batch_alter_table("source_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_notices_source_id"), ["source_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_source_notices_created_at"), ["created_at"], unique=False
        )
    op.create_table(
        "source_notice_posts",
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("destination", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("posted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("message_ref", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["notice_id"], ["source_notices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notice_id", "destination"),
    )


def downgrade() -> None:
    op.drop_table("source_notice_posts")
    op.drop_table("source_notices")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("disabled_reason")
        batch_op.drop_column("disabled_at")
        batch_op.drop_column("last_success_at")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("not_modified_count")
        batch_op.drop_column("poll_count")
