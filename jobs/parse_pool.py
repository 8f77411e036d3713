"""Process pool for feed parsing and article extraction.

Why processes: feedparser is pure Python and costs several milliseconds per feed; in threads the
GIL would serialise it and starve the event loop. Why forkserver: the pool is created while the
event loop and its threads run, and forking a threaded process can copy held locks; the fork
server is a clean single-threaded parent that imports the parser once (preload), so workers
start in milliseconds.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from types import TracebackType

from jobs.feed_parse import ParsedFeed, extract_article_text, parse_feed, warm_up
from jobs.stories import Titled, assign_stories

WORKER_NICENESS = 10


class ParsePool:
    """Async front of the worker pool. `workers=0` means one per CPU; `workers=1` parses in a
    single worker process (still off the loop)."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor: Executor | None = None
        self._open = False

    async def __aenter__(self) -> ParsePool:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _pool(self) -> Executor:
        """The executor, started on first use: a poll where every feed answers 304 never pays
        for worker processes. All workers start at once, so their start-up (imports) overlaps
        the fetches still in flight instead of delaying the parses queued behind the first."""
        if not self._open:
            raise RuntimeError("ParsePool used outside `async with`")
        if self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["jobs.feed_parse"])
            # Lower priority: parsing is background work, and on a small machine the bot's
            # event loop (acknowledging chat commands) must win the CPU over it.
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=os.nice,
                initargs=(WORKER_NICENESS,),
            )
            for _ in range(self.workers):
                self._executor.submit(warm_up)
        return self._executor

    async def parse(self, body: bytes, url: str, content_type: str | None) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), parse_feed, body, url, content_type)

    async def extract(self, page: bytes, url: str) -> str | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), extract_article_text, page, url)

    async def group_stories(self, known: list[Titled], new: list[Titled]) -> dict[int, int]:
        """Story grouping is pure-Python CPU work too; in a thread it would hold the GIL
        against the event loop for a second on a large poll."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), assign_stories, known, new)
