"""Process pool for feed parsing and article extraction.

Why processes: feedparser is pure Python and costs several milliseconds per feed; in threads the
GIL would serialise it and starve the event loop. Why forkserver: the pool is created while the
event loop and its threads run, and forking a threaded process can copy held locks; the fork
server is a clean single-threaded parent that imports the parser once (preload), so workers
start in milliseconds.

Why not `ProcessPoolExecutor`: it cannot stop one task. A parse that hangs keeps its worker for
ever, and the only way to get the worker back is to kill it, which breaks the executor: every
task in flight fails with `BrokenProcessPool`, and so does every later submit. One worker killed
by the OOM killer or an operator made every later poll fail. Here each worker is a process with
a pipe of its own, driven by one thread at a time: a task that outlives its timeout, or whose
worker dies, fails alone with a `ParseFailed` that says which; that worker is replaced, and the
other workers and their tasks never notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, TypeVar

from jobs.feed_parse import ParsedFeed, extract_article_text, parse_feed
from jobs.stories import SAME_LANGUAGE, Titled, best_matches, resolve_stories

log = logging.getLogger(__name__)

T = TypeVar("T")

WORKER_NICENESS = 10
# feedparser and html_to_text need about 3 s for a 10 MB feed of 13,000 entries on this
# project's machine; 30 s leaves room for a slow, busy host and still frees a hung worker.
PARSE_TIMEOUT = 30.0
# Story grouping is one call per poll over every recent title: about a second on a large poll.
GROUPING_TIMEOUT = 300.0
# New articles per worker below which story grouping is not split: a share must be worth
# sending every title to one more process.
GROUPING_SHARE_MIN = 200
# How long `close` lets running tasks finish before it kills their workers.
SHUTDOWN_TIMEOUT = 5.0
# How long an idle worker gets to exit after being asked to, before it is killed.
_EXIT_GRACE = 1.0
# A new worker boots (imports, the fork server's set-up) in well under a second.
_START_TIMEOUT = 60.0
_READY = "ready"


class ParseFailed(RuntimeError):
    """A task returned nothing: it outlived its timeout, its worker died, or the pool closed.
    The message is written for a source's stored error ("parse timed out after 30 s")."""


class ParsePool:
    """Async front of the worker processes. `workers=0` means one per CPU; `workers=1` parses
    in a single worker process (still off the loop). `timeout` bounds each feed parse and
    page extraction (seconds); `shutdown_timeout` bounds how long `close` waits for running
    tasks before it kills their workers."""

    def __init__(
        self,
        workers: int = 0,
        *,
        timeout: float = PARSE_TIMEOUT,
        shutdown_timeout: float = SHUTDOWN_TIMEOUT,
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self._state = "new"  # → "open" → "closed"
        self._all: list[_Worker] = []
        self._idle: asyncio.Queue[_Worker] | None = None
        self._returned: asyncio.Event | None = None
        self._threads: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> ParsePool:
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def parse(self, body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        """The parsed feed; a parse that times out or loses its worker fails its source alone,
        like any other bad feed (`ParsedFeed(error=…)`)."""
        try:
            return await self.run(parse_feed, body, url, content_type, time_limit=self.timeout)
        except ParseFailed as exc:
            log.warning("feed parse failed", extra={"url": url, "error": str(exc)})
            return ParsedFeed(error=str(exc))

    async def extract(self, page: bytes, url: str) -> str | None:
        """The page's main text, or None when there is none or extraction failed (the caller
        keeps the teaser it has)."""
        try:
            return await self.run(extract_article_text, page, url, time_limit=self.timeout)
        except ParseFailed as exc:
            log.warning("article extraction failed", extra={"url": url, "error": str(exc)})
            return None

    async def group_stories(self, known: list[Titled], new: list[Titled]) -> dict[int, int]:
        """Story grouping is pure-Python CPU work too; in a thread it would hold the GIL
        against the event loop for a second on a large poll. It runs after the last feed, so
        its search for each article's best match is shared among the workers (each takes
        every n-th new article), and only the cheap story resolution is done here."""
        parts = max(1, min(self.workers, len(new) // GROUPING_SHARE_MIN))
        shares = await asyncio.gather(
            *(
                self.run(
                    best_matches,
                    known,
                    new,
                    SAME_LANGUAGE,
                    part,
                    parts,
                    time_limit=GROUPING_TIMEOUT,
                )
                for part in range(parts)
            )
        )
        return resolve_stories(known, new, {k: v for share in shares for k, v in share.items()})

    async def run(self, fn: Callable[..., T], *args: Any, time_limit: float | None) -> T:
        """`fn(*args)` in a worker process, within `time_limit` seconds (None: no limit) from
        the moment the worker receives it; time spent waiting for a free worker does not
        count. `fn` must be importable by name (a module-level function) and its arguments
        and result picklable. Raises `ParseFailed` on timeout, a dead worker or a closed
        pool, and re-raises what `fn` raised."""
        idle = self._started()
        worker = await idle.get()
        if self._state != "open":
            idle.put_nowait(worker)  # for the next caller waiting, who fails the same way
            raise ParseFailed("parse pool closed")
        assert self._threads is not None
        loop = asyncio.get_running_loop()
        done = self._threads.submit(worker.call, fn, args, time_limit)
        # Back to the idle queue when the thread is done with it, not when this coroutine
        # is: a cancelled caller leaves the task running until it ends or times out.
        done.add_done_callback(_release_later(loop, self._release, worker))
        result: T = await asyncio.wrap_future(done)
        return result

    def warm_up(self) -> None:
        """Start the workers now, for a poll that has due sources: their start-up (the fork
        server importing the parser) then overlaps the first fetches instead of following
        the first answer."""
        self._started()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for diagnostics and tests)."""
        return [pid for worker in self._all if (pid := worker.pid) is not None]

    def running(self) -> dict[int, str]:
        """Worker pid → name of the function it has been sent and not yet answered."""
        return dict(task for worker in self._all if (task := worker.task) is not None)

    async def close(self) -> None:
        """Stop every worker, within about `shutdown_timeout` seconds however stuck they are:
        running tasks get until then to finish (and fail with `ParseFailed` after), then their
        workers are killed. Idle workers are asked to exit and killed if they do not."""
        if self._state == "closed":
            return
        self._state = "closed"
        if self._idle is None or self._threads is None or self._returned is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        while self._idle.qsize() < len(self._all) and (left := deadline - loop.time()) > 0:
            self._returned.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._returned.wait(), left)
        idle: list[_Worker] = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        busy = [w for w in self._all if w not in idle]
        if busy:
            log.warning(
                "parse pool closing with tasks still running; killing their workers",
                extra={"running": self.running(), "waited_s": self.shutdown_timeout},
            )
        await asyncio.to_thread(_stop, idle, busy, self._threads)
        for worker in idle:  # callers still waiting for a worker get one, and fail at once
            self._idle.put_nowait(worker)

    def _started(self) -> asyncio.Queue[_Worker]:
        """The idle queue, with every worker starting on first use: a poll where every feed
        answers 304 never pays for worker processes. All workers start at once, so their
        start-up overlaps the fetches still in flight instead of delaying the parses queued
        behind the first."""
        if self._state == "new":
            raise RuntimeError("ParsePool used outside `async with`")
        if self._state == "closed":
            raise ParseFailed("parse pool closed")
        if self._idle is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["jobs.parse_pool"])
            self._idle = asyncio.Queue()
            self._returned = asyncio.Event()
            self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="ainews-parse")
            loop = asyncio.get_running_loop()
            for _ in range(self.workers):
                worker = _Worker(context)
                self._all.append(worker)
                started = self._threads.submit(worker.start_or_log)
                started.add_done_callback(_release_later(loop, self._release, worker))
        return self._idle

    def _release(self, worker: _Worker) -> None:
        assert self._idle is not None and self._returned is not None
        self._idle.put_nowait(worker)
        self._returned.set()


def _release_later(
    loop: asyncio.AbstractEventLoop, release: Callable[[_Worker], None], worker: _Worker
) -> Callable[[Future[Any]], object]:
    """A done-callback for a thread's future: hands `worker` back on the loop's thread."""
    return lambda _: loop.call_soon_threadsafe(release, worker)


def _stop(idle: list[_Worker], busy: list[_Worker], threads: ThreadPoolExecutor) -> None:
    """Runs in a thread: kill the busy workers (which ends their tasks' threads), ask the
    idle ones to exit, and kill those that have not within `_EXIT_GRACE`."""
    for worker in busy:
        worker.kill(closing=True)
    for worker in idle:
        worker.ask_to_exit()
    deadline = time.monotonic() + _EXIT_GRACE
    for worker in idle:
        worker.join(max(0.0, deadline - time.monotonic()))
    # The busy workers' threads return as soon as they see their worker's pipe close.
    threads.shutdown(wait=True, cancel_futures=True)
    for worker in [*idle, *busy]:
        worker.discard()


class _Worker:
    """One worker process and the parent's end of its pipe. Only the thread the pool handed
    it to sends and receives; the lock guards starting, killing and discarding, which
    `close` may do from another thread."""

    def __init__(self, context: ForkServerContext) -> None:
        self._context = context
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closing = False
        self.pid: int | None = None
        self.task: tuple[int, str] | None = None  # (pid, function name) while one runs

    def start_or_log(self) -> None:
        try:
            self._start()
        except Exception as exc:  # the next call tries again, and fails visibly if it must
            if not self._closing:
                log.warning("parse worker did not start", extra={"error": repr(exc)})

    def _start(self) -> None:
        with self._lock:
            if self._closing:
                raise ParseFailed("parse pool closed")
            parent, child = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=_serve, args=(child,), name="ainews-parse", daemon=True
            )
            try:
                process.start()
            finally:
                child.close()
            self._process, self._conn, self.pid = process, parent, process.pid
        # Outside the lock, so that `close` can kill a worker stuck in start-up. Waiting for
        # the worker to say it is ready keeps its boot out of the first task's time limit.
        try:
            ready = parent.poll(_START_TIMEOUT) and parent.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.discard()
            raise ParseFailed("parse worker did not start")

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> Any:
        if self._conn is None or self._process is None or not self._process.is_alive():
            self.discard()
            self._start()
        conn, pid, name = self._conn, self.pid, getattr(fn, "__name__", repr(fn))
        assert conn is not None and pid is not None
        try:
            conn.send((fn, args))
            self.task = (pid, name)
            answered = conn.poll(timeout)
            reply: tuple[bool, Any] = conn.recv() if answered else (False, None)
        except (EOFError, OSError) as exc:
            raise self._replace(f"parse worker died ({self._death()})", name) from exc
        finally:
            self.task = None
        if not answered:
            raise self._replace(f"parse timed out after {timeout:g} s", name)
        ok, value = reply
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def _replace(self, why: str, task: str) -> ParseFailed:
        """Kill this worker and start its successor (unless the pool is closing); the error
        to raise for the task it was running."""
        old = self.pid
        self.kill(closing=False)
        self.discard()
        if self._closing:
            return ParseFailed("parse pool closed while the task ran")
        self.start_or_log()
        log.warning(
            "parse worker replaced",
            extra={"task": task, "why": why, "old_pid": old, "new_pid": self.pid},
        )
        return ParseFailed(why)

    def _death(self) -> str:
        with self._lock:
            process = self._process
            if process is None:
                return "gone"
            process.join(_EXIT_GRACE)
            code = process.exitcode
        if code is None:
            return "it closed its pipe"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def ask_to_exit(self) -> None:
        with contextlib.suppress(OSError), self._lock:
            if self._conn is not None:
                self._conn.send(None)

    def join(self, timeout: float) -> None:
        with self._lock:
            if self._process is not None:
                self._process.join(timeout)

    def kill(self, *, closing: bool) -> None:
        with self._lock:
            self._closing = self._closing or closing
            if self._process is not None and self._process.exitcode is None:
                self._process.kill()

    def discard(self) -> None:
        """Reap the process and close the pipe (after `kill`, or once it has exited)."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
            self.pid = None
            if process is not None:
                if process.exitcode is None:
                    process.kill()
                process.join()
                process.close()
            if conn is not None:
                conn.close()


def _serve(conn: Connection) -> None:
    """A worker's main loop: one task at a time, until the pool sends None or goes away (the
    pipe closes when the parent exits, however it exits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    os.nice(WORKER_NICENESS)  # parsing is background work: the bot's event loop comes first
    conn.send(_READY)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, args = task
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except (EOFError, OSError):
            return
        except Exception as exc:  # the result or the exception does not pickle
            name = getattr(fn, "__name__", "task")
            conn.send((False, ParseFailed(f"{name}: unpicklable reply: {exc!r}")))
