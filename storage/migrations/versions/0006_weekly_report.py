"""weekly report: `kind` (daily or weekly) on the publish claims and the stored documents, so
the weekly report is claimed, resumed and stored by the same rows as the daily briefing

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

The unique keys become (kind, day, destination) and (kind, day): a week's report is keyed by its
Monday, which is also a day with a briefing. Existing rows are daily.

SQLite rebuilds `briefings` to change its unique constraint, and dropping the old table with
foreign keys enforced (as `storage.db` connects) would delete every recorded post by cascade,
so the posts are copied aside and put back (as 0005 does for summaries).
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _kind() -> sa.Column[str]:
    return sa.Column(
        "kind",
        sqlmodel.sql.sqltypes.AutoString(length=16),
        nullable=False,
        server_default="daily",
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    recreate: Literal["always", "auto"] = "always" if sqlite else "auto"
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE _briefing_posts_0006 AS SELECT * FROM briefing_posts")
    with op.batch_alter_table("briefings", schema=None, recreate=recreate) as batch_op:
        batch_op.add_column(_kind())
        batch_op.drop_constraint("uq_briefings_day_destination", "unique")
        batch_op.create_unique_constraint(
            "uq_briefings_kind_day_destination", ["kind", "day", "destination"]
        )
    if sqlite:
        op.execute("DELETE FROM briefing_posts")
        op.execute("INSERT INTO briefing_posts SELECT * FROM _briefing_posts_0006")
        op.execute("DROP TABLE _briefing_posts_0006")
    with op.batch_alter_table(
        "daily_briefings", schema=None, recreate=recreate, naming_convention=_NAMING
    ) as batch_op:
        batch_op.add_column(_kind())
        # SQLite's is unnamed (named here by the convention); PostgreSQL named it itself.
        batch_op.drop_constraint(
            "uq_daily_briefings_day" if sqlite else "daily_briefings_day_key", "unique"
        )
        batch_op.create_unique_constraint("uq_daily_briefings_kind_day", ["kind", "day"])


def downgrade() -> None:
    """Back to daily documents only: weekly claims and reports are deleted."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    recreate: Literal["always", "auto"] = "always" if sqlite else "auto"
    op.execute("DELETE FROM briefings WHERE kind <> 'daily'")
    op.execute("DELETE FROM daily_briefings WHERE kind <> 'daily'")
    with op.batch_alter_table("daily_briefings", schema=None, recreate=recreate) as batch_op:
        batch_op.drop_constraint("uq_daily_briefings_kind_day", "unique")
        batch_op.create_unique_constraint(
            "uq_daily_briefings_day" if sqlite else "daily_briefings_day_key", ["day"]
        )
        batch_op.drop_column("kind")
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE _briefing_posts_0006 AS SELECT * FROM briefing_posts")
    with op.batch_alter_table("briefings", schema=None, recreate=recreate) as batch_op:
        batch_op.drop_constraint("uq_briefings_kind_day_destination", "unique")
        batch_op.create_unique_constraint("uq_briefings_day_destination", ["day", "destination"])
        batch_op.drop_column("kind")
    if sqlite:
        op.execute("DELETE FROM briefing_posts")
        op.execute("INSERT INTO briefing_posts SELECT * FROM _briefing_posts_0006")
        op.execute("DROP TABLE _briefing_posts_0006")
