"""Alembic, driven from code: `ainews` upgrades the schema to head on every start-up.

A database already at head is recognised with one query and Alembic is not even imported:
importing it (and Mako and Pygments behind it) and reading the migration scripts cost about
0.15 s of every `ainews` command, most of a one-shot `ainews poll` with nothing due.

Alembic is handed a connection, never the URL: its `Config` is a ConfigParser, whose `%`
interpolation turns a percent-encoded password (`p%40ss` for `p@ss`) into a `ValueError` at
start-up. The upgrade runs under a lock, so several processes started together (replicas of one
deployment, or `ainews run` and a cron `ainews poll` on one SQLite file) migrate one after
another: the first applies the migrations, the others find the schema current once they hold
the lock. On PostgreSQL it is an advisory lock; on SQLite, an exclusive `flock` on a file beside
the database (SQLite's own locks last one transaction, and Alembic takes several)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# The newest migration's revision; tests/test_migrations.py checks it against Alembic's head,
# so a new migration without this line updated fails the tests.
HEAD_REVISION = "0012"
# The advisory-lock key of schema migrations (any fixed 64-bit number; "ainews" in ASCII), the
# same in every process of every version.
MIGRATION_LOCK_KEY = 0x61696E657773


def alembic_config(engine: Engine, connection: Connection | None = None) -> Config:
    """Alembic's configuration with the engine (and the connection to migrate on, if given)
    as attributes that `migrations/env.py` picks up; the URL is not put in it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(engine: Engine) -> str | None:
    """The database's Alembic revision, or None when it has none (a new database)."""
    try:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet
        return None
    return str(value) if value is not None else None


def _revision_on(connection: Connection) -> str | None:
    """The revision seen by `connection`, without an error (which would abort a PostgreSQL
    transaction) when the version table does not exist yet."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def upgrade_to_head(engine: Engine) -> None:
    """Apply pending migrations. Idempotent, and safe when several processes start at once:
    on PostgreSQL they queue on an advisory lock, and each checks the revision again once it
    holds the lock (the one before it may have done the work)."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    postgres = engine.dialect.name == "postgresql"
    with _sqlite_file_lock(engine), engine.connect() as connection:
        if postgres:
            # Session-level, so that it spans Alembic's transaction; released below, or by the
            # server when this connection dies.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
        try:
            if _revision_on(connection) != HEAD_REVISION:
                connection.rollback()  # Alembic begins its own transaction
                command.upgrade(alembic_config(engine, connection), "head")
        finally:
            if postgres:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Held while a SQLite file database migrates; nothing for other databases. The lock file
    stays (an empty file): removing it would let a process that opened it before the removal
    lock a file no one else sees."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        yield


def schema_problem(engine: Engine) -> str | None:
    """Why this process cannot serve from the database, in one line — unreachable, or its schema
    not at this code's head (a migration pending, or a newer version's schema) — or None when
    it can. For the readiness check; the password is never part of the reason."""
    try:
        with engine.connect() as connection:
            revision = _revision_on(connection)
    except DBAPIError as exc:
        lines = [ln.strip() for ln in str(exc.orig or exc).splitlines() if ln.strip()]
        reason = lines[0] if lines else type(exc.orig or exc).__name__
        password = engine.url.password
        if password:
            reason = reason.replace(str(password), "***")
        return f"database unreachable: {reason}"
    if revision != HEAD_REVISION:
        return f"schema at revision {revision or 'none'}, this version needs {HEAD_REVISION}"
    return None
