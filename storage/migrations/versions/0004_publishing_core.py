"""publishing core: daily briefings built once, stored replies, command rate limits,
publish attempts, closed DMs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("briefings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    with op.batch_alter_table("delivery_cursors", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dm_closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("dm_closed_notice", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "daily_briefings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("built_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day"),
    )
    op.create_table(
        "stored_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stored_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stored_replies_created_at"), ["created_at"], unique=False
        )
    op.create_table(
        "command_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("command", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("command_uses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_command_uses_user", ["platform", "user_id", "command", "used_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("command_uses")
    op.drop_table("stored_replies")
    op.drop_table("daily_briefings")
    with op.batch_alter_table("delivery_cursors", schema=None) as batch_op:
        batch_op.drop_column("dm_closed_notice")
        batch_op.drop_column("dm_closed_at")
    with op.batch_alter_table("briefings", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("attempts")
