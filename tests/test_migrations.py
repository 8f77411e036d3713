"""Alembic migrations build the same schema on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables the migrations must create)
from storage.db import Database
from storage.migrate import upgrade_to_head

EXPECTED_TABLES = set(SQLModel.metadata.tables) | {"alembic_version"}
# The search index is raw DDL (FTS5 / tsvector), outside the SQLModel metadata.
SEARCH_TABLES = {"sqlite": "article_fts", "postgresql": "article_search"}


def _check_schema(db: Database) -> None:
    upgrade_to_head(db.engine)
    upgrade_to_head(db.engine)  # a second start-up is a no-op
    inspector = inspect(db.engine)
    tables = {t for t in inspector.get_table_names() if not t.startswith("article_fts_")}
    assert tables == EXPECTED_TABLES | {SEARCH_TABLES[db.backend]}
    for name, table in SQLModel.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert columns == set(table.columns.keys()), name
    uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("articles")}
    assert ("source_id", "guid") in uniques
    indexes = {i["name"] for i in inspector.get_indexes("articles")}
    assert {"ix_articles_published_at", "ix_articles_story_id"} <= indexes


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        _check_schema(db)
    finally:
        db.dispose()


def test_migrations_on_postgresql(postgres_url: str) -> None:
    db = Database(postgres_url)
    try:
        assert db.backend == "postgresql"
        _check_schema(db)
    finally:
        db.dispose()


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    """Autogenerate finds nothing to do: no model change is missing a migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        upgrade_to_head(db.engine)
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "include_name": lambda name, kind, _: kind != "table" or name in EXPECTED_TABLES
                },
            )
            diff = compare_metadata(context, SQLModel.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_head_revision_constant_is_alembics_head() -> None:
    """`upgrade_to_head` skips Alembic when the database is at HEAD_REVISION: the constant must
    name the newest migration, or a new one would never be applied."""
    from alembic.script import ScriptDirectory

    from storage.migrate import HEAD_REVISION, MIGRATIONS_DIR

    assert ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() == HEAD_REVISION


def test_a_database_behind_head_is_upgraded_and_one_at_head_is_left_alone(tmp_path: Path) -> None:
    from alembic import command

    from storage.migrate import HEAD_REVISION, alembic_config, current_revision

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        assert current_revision(db.engine) is None
        command.upgrade(alembic_config(db.engine), "0004")
        assert current_revision(db.engine) == "0004"
        upgrade_to_head(db.engine)
        assert current_revision(db.engine) == HEAD_REVISION
        upgrade_to_head(db.engine)
        assert current_revision(db.engine) == HEAD_REVISION
    finally:
        db.dispose()
