"""Engine, sessions and the bridge that keeps database work off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlmodel import Session

T = TypeVar("T")

log = logging.getLogger(__name__)

# Writes one group commit takes at most: bounds a transaction's length, and what one failed
# batch retries item by item.
GROUP_COMMIT_MAX = 100


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


SQLITE_MMAP_BYTES = 1 << 32


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Reads straight from the memory-mapped file instead of a read() call per page into
    # SQLite's 2 MB page cache: a search touches a few thousand pages of a 1.5 GB database
    # (100k articles), and took 15% less time (bench/search.py). SQLite caps the size at its
    # build's limit (2 GB by default) and reads any further pages the usual way. The mapped
    # pages a process has read count in its RSS (268 MB rather than 128 MB after a 5,000-feed
    # poll): they are the kernel's page cache, shared and reclaimable, not the process's own.
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
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


class GroupCommit(Generic[T]):
    """Many small writes of one kind (`fn(session=…, **kwargs)`), committed together: while one
    transaction runs, the writes that arrive queue up and go in the next one.

    Why: the poller stores each feed as it is parsed, hundreds at once. As transactions of their
    own, from several threads, they queue on SQLite's single write lock, whose busy handler
    sleeps between retries: the CPUs idle while parsed feeds wait to be stored, and every
    commit writes the WAL. One writer with batches keeps the database busy instead. A batch
    that fails is retried item by item, so a bad item fails alone, and a deadlock between two
    processes' batches on PostgreSQL costs a retry, not their items."""

    def __init__(self, db: Database, fn: Callable[..., T], *, max_batch: int = GROUP_COMMIT_MAX):
        self._db = db
        self._fn = fn
        self._max_batch = max_batch
        self._queue: list[tuple[dict[str, Any], asyncio.Future[T]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, **kwargs: Any) -> T:
        """`fn`'s result for these arguments once their transaction has committed. A caller
        cancelled before its batch starts leaves nothing written."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((kwargs, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        try:
            while self._queue:
                batch = [item for item in self._queue[: self._max_batch] if not item[1].done()]
                del self._queue[: self._max_batch]
                if batch:
                    await self._commit(batch)
        finally:
            self._writer = None

    async def _commit(self, batch: list[tuple[dict[str, Any], asyncio.Future[T]]]) -> None:
        try:
            results = await self._db.run(self._all, batch=[kwargs for kwargs, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            log.warning(
                "group commit failed; retrying its writes one by one",
                extra={"writes": len(batch), "error": repr(exc)},
            )
            for kwargs, future in batch:
                try:
                    _resolve(future, await self._db.run(self._fn, **kwargs))
                except Exception as alone:
                    _fail(future, alone)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)

    def _all(self, *, session: Session, batch: list[dict[str, Any]]) -> list[T]:
        return [self._fn(session=session, **kwargs) for kwargs in batch]


# A future is already done when its caller was cancelled while the write ran.
def _resolve(future: asyncio.Future[T], result: T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)


def insert_or_ignore(session: Session, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the session's backend. A row that another job or
    process stored a moment earlier is skipped, not an error — the unique constraint decides,
    which is the only race-free check across processes."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
