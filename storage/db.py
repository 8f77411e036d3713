"""Engine, sessions and the bridge that keeps database work off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session

T = TypeVar("T")


def normalise_database_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the only PostgreSQL driver we ship)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def create_db_engine(url: str) -> Engine:
    """An engine tuned per backend. SQLite gets WAL (readers never block the writer), a busy
    timeout (a second process waits instead of failing) and enforced foreign keys."""
    url = normalise_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No server-side prepared statements: after five runs psycopg would switch a search to a
    # generic plan, chosen without knowing the term, that scans every row for a rare word.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"prepare_threshold": None},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """Owns the engine. `run` executes a unit of work in a worker thread inside one session and
    one transaction: committed when the function returns, rolled back if it raises, so a
    cancelled job never leaves a half-written row."""

    def __init__(self, url: str) -> None:
        self.url = normalise_database_url(url)
        self.engine = create_db_engine(self.url)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def call(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run `fn(session=…, **kwargs)` synchronously in its own transaction."""
        with self.session() as session:
            return fn(session=session, **kwargs)

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """Run `fn(session=…, **kwargs)` in a worker thread in its own transaction."""
        return await asyncio.to_thread(self.call, fn, **kwargs)

    async def run_to_the_end(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`run`, finished even when the caller is being cancelled: the clean-up of a job
        stopped at shutdown (recording what it did, giving its claims back). A cancellation
        that arrives meanwhile is re-raised once the work is done."""
        work = asyncio.ensure_future(self.run(fn, **kwargs))
        cancelled = False
        while True:
            try:
                result = await asyncio.shield(work)
                break
            except asyncio.CancelledError:
                if work.done():
                    raise
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        return result

    def dispose(self) -> None:
        self.engine.dispose()


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend. A row that another job or
    process stored a moment earlier is skipped, not an error — the unique constraint decides,
    which is the only race-free check across processes."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
