"""Alembic, driven from code: `ainews` upgrades the schema to head on every start-up.

A database already at head is recognised with one query and Alembic is not even imported:
importing it (and Mako and Pygments behind it) and reading the migration scripts cost about
0.15 s of every `ainews` command, most of a one-shot `ainews poll` with nothing due."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision; tests/test_migrations.py checks it against Alembic's head,
# so a new migration without this line updated fails the tests.
HEAD_REVISION = "0010"


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None when it has none (a new database)."""
    try:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet
        return None
    return str(value) if value is not None else None


def upgrade_to_head(engine: Engine) -> None:
    """Apply pending migrations. Idempotent; safe when several processes start at once on
    PostgreSQL (Alembic's version table update is transactional there)."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), "head")
