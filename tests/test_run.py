"""`ainews run`: the scheduler polls at start, posts a missed briefing once, stops cleanly."""

from __future__ import annotations

import asyncio
import io
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, func, select

from bot.app import open_app
from bot.config import Settings
from bot.platforms.console import ConsolePublisher
from bot.scheduler import run_bot
from jobs.briefing_model import Briefing, Trend
from storage.models import Article, Summary
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import DEMO_NOW, TEST_FEEDS, demo_clock, make_settings
from tests.fakes.feed_server import FeedServer
from tests.test_cli import AINEWS

TOKYO = ZoneInfo("Asia/Tokyo")


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll a condition instead of sleeping a fixed time."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def count(settings: Settings, model: type[Article] | type[Summary]) -> int:
    from storage.db import create_db_engine

    engine = create_db_engine(settings.database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(func.count()).select_from(model)).one()
    finally:
        engine.dispose()


async def test_run_polls_summarises_and_catches_up_todays_briefing(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the demo clock (12:00 in Tokyo) with the briefing due at 11:00: started within the
    grace period, the bot publishes that day's briefing at once."""
    feed_server.add("/ja.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    now = DEMO_NOW
    settings = make_settings(tmp_path, AINEWS_BRIEFING_TIME="11:00")
    stop = asyncio.Event()
    async with open_app(settings, fetching=True, clock=demo_clock) as app:
        spec = SourceSpec(url=feed_server.url("/ja.xml"), name="ja", category="japan")
        await app.db.run(add_missing_sources, specs=[spec])
        bot = asyncio.create_task(run_bot(app, stop=stop))
        briefing_file = settings.briefings_dir / f"{now.date().isoformat()}.md"
        await wait_for(briefing_file.exists)
        await wait_for(lambda: count(settings, Summary) == 3)
        stop.set()
        await asyncio.wait_for(bot, timeout=30)
    assert count(settings, Article) == 3
    printed = capsys.readouterr().out
    assert printed.startswith(f"# AI News - {now.date().isoformat()}")
    assert briefing_file.read_text(encoding="utf-8") == printed


async def test_console_briefing_is_published_once_per_day(settings: Settings) -> None:
    from datetime import date

    briefing = Briefing(
        day=date(2026, 3, 2),
        categories_considered=0,
        articles_considered=0,
        sections=(),
        trend=Trend((), (), "本日の掲載記事はありません。", automatic=True),
        window_start=datetime(2026, 3, 1),
        window_end=datetime(2026, 3, 2),
    )
    async with open_app(settings) as app:
        first_out, second_out = io.StringIO(), io.StringIO()
        first = ConsolePublisher(db=app.db, directory=tmp_dir(settings), out=first_out)
        second = ConsolePublisher(db=app.db, directory=tmp_dir(settings), out=second_out)
        assert await first.publish(briefing) is True
        assert await second.publish(briefing) is False  # a restart or a second process
    assert first_out.getvalue().startswith("# AI News - 2026-03-02")
    assert second_out.getvalue() == ""
    assert (tmp_dir(settings) / "2026-03-02.md").read_text(encoding="utf-8") == first_out.getvalue()


def tmp_dir(settings: Settings) -> Path:
    return settings.briefings_dir


@pytest.mark.parametrize(
    ("sig", "delay", "grace", "expected"),
    [
        (signal.SIGTERM, 1.5, "10", b"poll finished sources=1 new=3"),  # finishes within grace
        (signal.SIGINT, 30, "0.5", b"job abandoned at shutdown job=poll"),  # too slow: abandoned
    ],
)
async def test_ainews_run_stops_cleanly_on_signal(
    tmp_path: Path,
    feed_server: FeedServer,
    sig: signal.Signals,
    delay: float,
    grace: str,
    expected: bytes,
) -> None:
    feed_server.slow("/slow.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes(), delay=delay)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "AINEWS_FETCH_TIMEOUT": "60",
        "AINEWS_SHUTDOWN_GRACE": grace,
        # Twelve hours away: no briefing is due or caught up while the test runs, whatever
        # the time of day it runs at.
        "AINEWS_BRIEFING_TIME": (datetime.now(TOKYO) + timedelta(hours=12)).strftime("%H:%M"),
    }
    add = await asyncio.create_subprocess_exec(
        AINEWS, "sources", "add", feed_server.url("/slow.xml"), env=env, cwd=tmp_path
    )
    assert await add.wait() == 0
    process = await asyncio.create_subprocess_exec(
        AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log = b""
    while b"ainews running" not in log:
        log += await asyncio.wait_for(process.stderr.readline(), timeout=20)
    await wait_for(lambda: len(feed_server.calls_to("/slow.xml")) == 1)  # a poll is in flight
    process.send_signal(sig)
    rest = await asyncio.wait_for(process.stderr.read(), timeout=40)
    code = await process.wait()
    assert code == 0, (log + rest).decode()
    assert b"shutting down" in rest
    assert expected in rest
    assert b"Traceback" not in rest
