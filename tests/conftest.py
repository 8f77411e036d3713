"""Shared fixtures: a clean environment, per-test settings and database, the stand-in servers,
and a network guard that makes any attempt to reach beyond loopback fail loudly."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import PROJECT_ROOT, Settings
from tests.fakes.feed_server import FeedServer
from tests.fakes.openai_server import OpenAIServer

if TYPE_CHECKING:
    from jobs.briefing import BriefingConfig
    from tests.fakes.discord_server import DiscordServer

DEMO_FEEDS = PROJECT_ROOT / "bot" / "demo" / "feeds"
# The demo feeds' newest briefing day, and a moment after its briefing was due: tests over demo
# data pass this clock in, so they mean the same on any date they run.
DEMO_DAY = date(2026, 11, 23)
DEMO_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def demo_clock() -> datetime:
    return DEMO_NOW


TEST_FEEDS = Path(__file__).parent / "data" / "feeds"
_ENV_PREFIXES = ("AINEWS_", "OPENAI_", "SLACK_", "DISCORD_", "DATABASE_URL", "TIKTOKEN_")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None, ""}
# Read before the environment is cleared for each test.
POSTGRES_URL = os.environ.get("AINEWS_TEST_POSTGRES_URL", "")
UNDER_CI = os.environ.get("CI") == "true"


# Real publishers' feeds, byte-exact, kept beside the project (never copied into it).
REALFEEDS = PROJECT_ROOT.parent / "shared" / "realfeeds"


def realfeeds_dir() -> Path:
    """The real-feed corpus. Without it a test skips and says why, except under CI, where its
    absence is a failure: there it must be tested, not silently passed over."""
    if not (REALFEEDS / "manifest.json").is_file():
        reason = f"the real-feeds corpus is not at {REALFEEDS} (../shared/realfeeds/)"
        if UNDER_CI:
            pytest.fail(f"{reason}; under CI it must be there")
        pytest.skip(reason)
    return REALFEEDS


class NetworkBlocked(RuntimeError):
    pass


def _guard_connect(original: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not (host.startswith("127.") or host == "::1"):
                raise NetworkBlocked(f"test tried to reach {address!r}: tests stay on loopback")
        return original(self, address)

    return connect


def _guard_getaddrinfo(original: Any) -> Any:
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOCAL_HOSTS and not str(name).startswith("127."):
            raise NetworkBlocked(f"test tried to resolve {name!r}: tests stay on loopback")
        return original(host, *args, **kwargs)

    return getaddrinfo


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guard_connect(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard_connect(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", _guard_getaddrinfo(socket.getaddrinfo))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see none of the developer's configuration (no .env, no exported keys)."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ainews.sqlite3'}",
        "AINEWS_VAR_DIR": tmp_path / "var",
        "AINEWS_SOURCES_FILE": tmp_path / "no-sources.toml",
        "AINEWS_PARSE_WORKERS": 1,
        "AINEWS_FETCH_TIMEOUT": 2.0,
        "TIKTOKEN_CACHE_DIR": tmp_path.parent / "tiktoken-cache",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def demo_database(tmp_path: Path) -> Path:
    """The offline demo's database: every demo feed polled and summarised (DEMO_DAY's data)."""
    from bot.demo.run import run_demo

    return (await run_demo(make_settings(tmp_path))).database


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


@pytest.fixture
async def openai_server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as server:
        yield server


@pytest.fixture
async def discord_server() -> AsyncIterator[DiscordServer]:
    """The Discord stand-in. The adapter points discord.py's process-wide endpoints
    (`Route.BASE`, the gateway URL) at it; they are given back afterwards. discord.py is
    imported here, not at the top: most test files never start Discord."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    from tests.fakes.discord_server import DiscordServer

    saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with DiscordServer() as server:
        try:
            yield server
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


def demo_llm_settings(
    tmp_path: Path, database: Path, openai_server: OpenAIServer, **overrides: Any
) -> Settings:
    """Settings over a demo database with the model at the OpenAI stand-in, no retries (a
    test's scripted answer is the only one)."""
    return make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
        AINEWS_LLM_MAX_RETRIES=0,
        **overrides,
    )


def _unreachable(reason: str) -> None:
    if UNDER_CI:
        pytest.fail(f"PostgreSQL unreachable under CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test run's own (`ainews_test_<random>`) on the server that
    AINEWS_TEST_POSTGRES_URL names, dropped at the end: the tests never touch a database they
    did not create, and two runs on one server (two checkouts, two CI jobs) cannot collide."""
    if not POSTGRES_URL:
        if UNDER_CI:
            pytest.fail("AINEWS_TEST_POSTGRES_URL is not set under CI")
        pytest.skip("AINEWS_TEST_POSTGRES_URL not set")
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from storage.db import normalise_database_url

    server = make_url(normalise_database_url(POSTGRES_URL))
    name = f"ainews_test_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unreachable(str(exc).splitlines()[0])
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """This run's PostgreSQL database with an empty schema, for one test."""
    from sqlalchemy import text

    from storage.db import create_db_engine

    engine = create_db_engine(postgres_database)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except Exception as exc:
        _unreachable(str(exc).splitlines()[0])
    finally:
        engine.dispose()
    yield postgres_database


def redate_articles(database_url: str, *, days: int = 0, by: timedelta = timedelta(0)) -> None:
    """Shift every article's dates by `days` whole days plus `by`: fixed sample data made
    relative to the clock of the run, for a test whose process reads the real clock
    (`DEMO_DAY`'s briefing becomes that of `DEMO_DAY + days`, item for item)."""
    from sqlmodel import Session, select

    from storage.clock import ensure_utc
    from storage.db import create_db_engine
    from storage.models import Article

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            articles = session.exec(select(Article)).all()
            assert articles, "no articles to redate"
            shift = timedelta(days=days) + by
            for article in articles:
                if article.published_at is not None:
                    article.published_at = ensure_utc(article.published_at) + shift
                article.first_seen_at = ensure_utc(article.first_seen_at) + shift
                session.add(article)
            session.commit()
    finally:
        engine.dispose()


def redate_for_a_live_run(
    database_url: str, *, config: BriefingConfig, now: datetime
) -> tuple[date, time]:
    """For a test of the real `ainews run` process, which reads the real clock: a briefing time
    twelve hours away from `now`, and the demo data moved so that `DEMO_DAY`'s briefing (under
    `config`) becomes, item for item, the newest complete one at `now` under that time. Returns
    that day and the time to give the process as AINEWS_BRIEFING_TIME. With the default 08:30 a
    run started between 08:30 and 11:30 would first catch up on the day's briefing by itself,
    and one near 08:30 could see the day change between this call and its own."""
    from jobs.briefing import briefing_window
    from jobs.daily import latest_complete_day

    away = (now.astimezone(config.tz) + timedelta(hours=12)).time()
    live = replace(config, briefing_time=time(away.hour, away.minute))
    day = latest_complete_day(now, live)
    shift = briefing_window(day, live)[1] - briefing_window(DEMO_DAY, config)[1]
    redate_articles(database_url, by=shift)
    return day, live.briefing_time


async def matching_urls(tmp_path: Path, database: Path, text: str) -> list[str]:
    """Every stored article that `search <text>` must find, straight from the search index:
    what an answer in chat is compared with."""
    from bot.app import handler_context, open_app
    from handlers.filters import SearchRequest
    from handlers.search import find

    settings = make_settings(tmp_path, DATABASE_URL=f"sqlite:///{database}")
    async with open_app(settings) as app:
        page = await find(handler_context(app), SearchRequest(text=text, limit=1000))
    return sorted(hit.url for hit in page.hits)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scale_out: several real `ainews run` processes on one PostgreSQL database "
        "(tests/test_scale_out.py)",
    )
