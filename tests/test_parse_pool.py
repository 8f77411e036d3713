"""The parse pool under failure: a parse that outlives its time limit, a worker killed in the
middle of a poll, a hung worker at shutdown. Everything runs in the real forkserver worker
processes; the "hung" tasks are `time.sleep` submitted through `ParsePool.run`, the same path
`parse` takes, and the slow parse is feedparser on a large feed served to the real poller."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.app import App, open_app, poll_once
from jobs.feed_parse import ParsedFeed
from jobs.parse_pool import ParseFailed, ParsePool
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import TEST_FEEDS, make_settings
from tests.fakes.feed_server import FeedServer, Response

BIG_ITEMS = 3000  # feedparser needs about 0.6 s for this feed here: far beyond the limits below
SMALL = (TEST_FEEDS / "rss2_ja.xml").read_bytes()


def big_feed(items: int = BIG_ITEMS) -> bytes:
    """An RSS 2.0 feed of `items` ordinary entries (1.2 MB at 3,000): slow only by its size."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    parts = [
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>'
        "<link>https://big.example/</link><description>A large feed</description>"
    ]
    for i in range(items):
        body = f"&lt;p&gt;Item {i} reports on model {i} and its benchmark results. " * 6
        parts.append(
            f"<item><title>Big item {i}: finding {i * 7919 % 10007}</title>"
            f"<link>https://big.example/{i}</link><guid>big-{i}</guid>"
            f"<pubDate>{format_datetime(when - timedelta(minutes=i))}</pubDate>"
            f"<description>{body}&lt;/p&gt;</description></item>"
        )
    parts.append("</channel></rss>")
    return "".join(parts).encode()


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait for `condition()` to hold, polling (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
async def pool() -> AsyncIterator[ParsePool]:
    async with ParsePool(1, timeout=5.0, shutdown_timeout=0.5) as pool:
        yield pool


async def test_a_hung_task_times_out_its_worker_is_replaced_and_the_pool_still_works(
    pool: ParsePool,
) -> None:
    first = await pool.run(os.getpid, time_limit=5)

    with pytest.raises(ParseFailed, match=r"^parse timed out after 0\.3 s$"):
        await pool.run(time.sleep, 3600, time_limit=0.3)

    await until(lambda: gone(first))
    replacement = await pool.run(os.getpid, time_limit=5)
    assert replacement != first and pool.worker_pids() == [replacement]
    parsed = await pool.parse(SMALL, "https://ja.example.jp/feed", None)
    assert parsed.error is None and len(parsed.entries) == 3


async def test_a_parse_beyond_its_limit_fails_alone_with_a_clear_error() -> None:
    async with ParsePool(1, timeout=0.05) as pool:
        slow = await pool.parse(big_feed(), "https://big.example/feed", None)
        fine = await pool.parse(SMALL, "https://ja.example.jp/feed", None)

    assert slow == ParsedFeed(error="parse timed out after 0.05 s")
    assert fine.error is None and len(fine.entries) == 3


async def test_a_worker_killed_mid_task_fails_that_task_and_the_next_one_succeeds(
    pool: ParsePool,
) -> None:
    task = asyncio.create_task(pool.run(time.sleep, 3600, time_limit=None))
    await until(lambda: pool.running())
    ((pid, name),) = pool.running().items()
    assert name == "sleep"

    os.kill(pid, signal.SIGKILL)

    with pytest.raises(ParseFailed, match=r"^parse worker died \(killed by SIGKILL\)$"):
        await task
    parsed = await pool.parse(SMALL, "https://ja.example.jp/feed", None)
    assert parsed.error is None and len(parsed.entries) == 3
    assert pid not in pool.worker_pids() and len(pool.worker_pids()) == 1


async def test_a_worker_that_died_while_idle_is_replaced_before_the_next_task(
    pool: ParsePool,
) -> None:
    first = await pool.run(os.getpid, time_limit=5)
    os.kill(first, signal.SIGKILL)
    await until(lambda: gone(first))

    assert await pool.run(os.getpid, time_limit=5) not in (first, None)


async def test_what_the_task_raises_reaches_the_caller_and_the_worker_stays(
    pool: ParsePool,
) -> None:
    before = await pool.run(os.getpid, time_limit=5)
    with pytest.raises(ValueError, match="invalid literal"):
        await pool.run(int, "not a number", time_limit=5)
    assert await pool.run(os.getpid, time_limit=5) == before


async def test_a_cancelled_caller_does_not_free_its_worker_before_the_task_ends(
    pool: ParsePool,
) -> None:
    """Were the worker handed out again while it still runs the cancelled task, the next
    caller would receive that task's reply (None) instead of its own."""
    pid = await pool.run(os.getpid, time_limit=5)
    task = asyncio.create_task(pool.run(time.sleep, 0.3, time_limit=5))
    await until(lambda: pool.running())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await pool.run(os.getpid, time_limit=5) == pid


async def test_close_with_a_hung_worker_returns_within_its_bound() -> None:
    pool = ParsePool(2, shutdown_timeout=0.5)
    await pool.__aenter__()
    hung = asyncio.create_task(pool.run(time.sleep, 3600, time_limit=None))
    await until(lambda: pool.running())
    pids = pool.worker_pids()
    assert len(pids) == 2

    # The sleep would hold the pool for an hour; close gives it half a second.
    await asyncio.wait_for(pool.close(), timeout=10)

    with pytest.raises(ParseFailed, match=r"^parse pool closed while the task ran$"):
        await asyncio.wait_for(hung, 1)
    for pid in pids:  # the hung worker was killed, the idle one asked to exit
        await until(lambda pid=pid: gone(pid))
    assert pool.worker_pids() == []
    closed = await pool.parse(SMALL, "https://x.example/", None)
    assert closed == ParsedFeed(error="parse pool closed")


# -- through the real poller ---------------------------------------------------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with open_app(make_settings(tmp_path, AINEWS_FETCH_TIMEOUT=5.0), fetching=True) as app:
        yield app


async def add_feeds(app: App, server: FeedServer, *paths: str) -> None:
    specs = [SourceSpec(url=server.url(p), name=p.strip("/"), category="research") for p in paths]
    await app.db.run(add_missing_sources, specs=specs)


async def test_a_worker_killed_mid_poll_fails_that_source_alone_and_the_next_poll_succeeds(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/big.xml", big_feed())
    # The small feed arrives later, so the one worker is parsing the big one when it is killed.
    feed_server.sequence("/ja.xml", [Response(body=SMALL, delay=0.5), Response(body=SMALL)])
    await add_feeds(app, feed_server, "/big.xml", "/ja.xml")
    assert app.parser is not None
    parser = app.parser

    poll = asyncio.create_task(poll_once(app))
    await until(lambda: parser.running())
    ((pid, name),) = parser.running().items()
    assert name == "parse_feed"
    os.kill(pid, signal.SIGKILL)
    first = await poll

    assert (first.failed, first.new) == (1, 3)
    assert first.errors == [
        {
            "source": "big.xml",
            "url": feed_server.url("/big.xml"),
            "error": "parse worker died (killed by SIGKILL)",
        }
    ]

    second = await poll_once(app, force=True)

    assert (second.failed, second.new) == (0, BIG_ITEMS)
    assert pid not in parser.worker_pids()


async def test_a_parse_beyond_its_limit_fails_its_source_alone_in_a_poll(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/big.xml", big_feed())
    feed_server.add("/ja.xml", SMALL)
    await add_feeds(app, feed_server, "/big.xml", "/ja.xml")
    async with ParsePool(1, timeout=0.05) as strict:
        app.parser = strict
        report = await poll_once(app)

    assert (report.failed, report.new) == (1, 3)
    assert [e["error"] for e in report.errors] == ["parse timed out after 0.05 s"]
    assert report.errors[0]["source"] == "big.xml"
