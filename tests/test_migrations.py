"""Alembic migrations build the same schema on SQLite and PostgreSQL, and are idempotent."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
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


# Every character that percent-encoding in a URL, ConfigParser interpolation or URL parsing
# could trip over.
AWKWARD_PASSWORD = "p%41ss@wo!rd#x:y/z%"


@pytest.fixture
def awkward_role(postgres_url: str) -> Iterator[str]:
    """A login role of this test's own whose password has `%`, `@`, `!`, `#`, `:` and `/`,
    allowed to create tables in the test database; returns the database URL logging in as it
    (percent-encoded, as SQLAlchemy renders it). Dropped afterwards with what it owns."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.db import normalise_database_url

    role = f"ainews_role_{secrets.token_hex(4)}"
    admin = create_engine(normalise_database_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # The password is a literal here: CREATE ROLE takes no bind parameters.
        quoted = AWKWARD_PASSWORD.replace("'", "''")
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{quoted}'"))
        connection.execute(text(f"GRANT ALL ON SCHEMA public TO {role}"))
    url = make_url(postgres_url).set(username=role, password=AWKWARD_PASSWORD)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP OWNED BY {role} CASCADE"))
            connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


async def test_a_password_with_special_characters_starts_up_and_migrates(
    tmp_path: Path, awkward_role: str, postgres_url: str
) -> None:
    """ConfigParser interpolation used to see the percent-encoded password and stop start-up
    with a ValueError; the real command now migrates as that role."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.db import normalise_database_url
    from storage.migrate import HEAD_REVISION, current_revision
    from tests.test_cli import ainews

    assert "%25" in awkward_role and "%40" in awkward_role  # the URL really is encoded
    result = await ainews(tmp_path, "sources", "list", "--json", DATABASE_URL=awkward_role)
    assert result.code == 0, result.err
    assert json.loads(result.out) == []
    engine = create_engine(normalise_database_url(postgres_url))
    try:
        assert current_revision(engine) == HEAD_REVISION
        with engine.connect() as connection:
            owner = connection.execute(
                text("SELECT tableowner FROM pg_tables WHERE tablename = 'articles'")
            ).scalar()
    finally:
        engine.dispose()
    assert owner == make_url(awkward_role).username  # migrated by that role, not another


@pytest.fixture(params=["sqlite", "postgresql"])
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'new.sqlite3'}"


def test_processes_starting_together_migrate_a_new_database_once(new_database: str) -> None:
    """Three start-ups at the same moment, each with its own engine (as separate processes
    have): all succeed, one after another under the migration lock (PostgreSQL's advisory
    lock, a lock file beside a SQLite database), and leave one schema at head — without the
    lock, the second CREATE TABLE of the same name fails."""
    from sqlalchemy import text

    from storage.migrate import HEAD_REVISION

    starters = 3
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []
    databases = [Database(new_database) for _ in range(starters)]

    def start(db: Database) -> None:
        try:
            barrier.wait(timeout=30)
            upgrade_to_head(db.engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in databases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        _check_schema(databases[0])
        with databases[0].engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert [v for (v,) in versions] == [HEAD_REVISION]
    finally:
        for db in databases:
            db.dispose()
