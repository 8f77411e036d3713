"""The multi-process suite: three real `ainews run` processes on one PostgreSQL database, with
the feed, OpenAI, Slack and Discord stand-ins, all on 127.0.0.1.

What it proves is what the database coordinates between processes: each due source is polled
by one of them, each article stored and summarised once, the day's token budget shared, one
briefing thread per destination, a thread whose poster was killed finished by another without
a reply twice, and processes that survive their database connections being cut. PostgreSQL is
required (the `postgres_url` fixture fails under CI when it is unreachable, skips elsewhere).

The processes read the real clock. Nothing here depends on the time of day it runs: feeds carry
no dates the assertions look at, and the briefing tests pick a time zone in which it is just
after midday, with the demo data moved to end at that zone's briefing time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, func, select

from bot.app import open_app, poll_once, summarize_pending
from jobs.spend import BUDGET_CAUSES
from storage.models import Article, Summary, TokenBudgetDay, TokenUsage
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import DEMO_DAY, make_settings, redate_articles
from tests.fakes.feed_server import FeedServer
from tests.fakes.openai_server import OpenAIServer
from tests.fakes.slack_server import ApiCall, PostedMessage, SlackServer
from tests.fakes.waiting import poll
from tests.test_cli import AINEWS
from tests.test_slack import CHANNEL, SECRET
from tests.test_summarize import fenced, grounded_summary

pytestmark = [pytest.mark.scale_out, pytest.mark.timeout(300)]

PROCESSES = 3
# Generous: three interpreters start on a shared, loaded machine. Waiting polls; it never
# sleeps a fixed time to let something happen.
START_TIMEOUT = 90.0
WORK_TIMEOUT = 120.0
_T = TypeVar("_T")


# -- the processes ---------------------------------------------------------------------------


@dataclass
class Bot:
    """One `ainews run` process; its JSON log lines are read as they come, so that a full
    stderr pipe never blocks it."""

    index: int
    process: asyncio.subprocess.Process
    log: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log += line

    @property
    def running(self) -> bool:
        return b"ainews running" in self.log

    def records(self, message: str | None = None) -> list[dict[str, Any]]:
        records = []
        for line in bytes(self.log).splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (message is None or record.get("message") == message):
                records.append(record)
        return records

    def text(self) -> str:
        return bytes(self.log).decode(errors="replace")


@asynccontextmanager
async def fleet(tmp_path: Path, envs: Sequence[Mapping[str, str]]) -> AsyncIterator[list[Bot]]:
    """Start every process at once and wait until each says it is running; on the way out
    SIGTERM the live ones and wait for them to exit (their return codes stay on the bots)."""
    bots = []
    for index, env in enumerate(envs):
        process = await asyncio.create_subprocess_exec(
            AINEWS, "run", env=dict(env), cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        bot = Bot(index, process)
        bot.reader = asyncio.create_task(bot.read())
        bots.append(bot)
    try:
        await until(
            lambda: all(b.running or b.process.returncode is not None for b in bots),
            "every process running",
            timeout=START_TIMEOUT,
        )
        for bot in bots:
            assert bot.running, f"process {bot.index} did not start:\n{bot.text()[-3000:]}"
        yield bots
    finally:
        for bot in bots:
            if bot.process.returncode is None:
                bot.process.send_signal(signal.SIGTERM)
        for bot in bots:
            try:
                await asyncio.wait_for(bot.process.wait(), timeout=60)
            except TimeoutError:
                bot.process.kill()
                await bot.process.wait()
            if bot.reader is not None:
                await bot.reader


def assert_clean_exit(bots: Sequence[Bot], *, killed: frozenset[int] = frozenset()) -> None:
    """Every process not killed by the test stopped on SIGTERM with 0 and no traceback."""
    for bot in bots:
        if bot.index in killed:
            assert bot.process.returncode == -signal.SIGKILL
            continue
        assert bot.process.returncode == 0, bot.text()[-4000:]
        assert "Traceback" not in bot.text(), bot.text()[-4000:]


async def until(predicate: Callable[[], object], what: str, timeout: float = WORK_TIMEOUT) -> None:
    await poll(lambda: True if predicate() else None, timeout, lambda: what)


def bot_env(tmp_path: Path, database_url: str, index: int, **extra: str) -> dict[str, str]:
    """A process of its own var dir (briefing archive, tiktoken cache) on the shared database.
    Nothing is due by the clock unless a test says so: the briefing twelve hours away, the
    weekly report on another weekday."""
    now = datetime.now(ZoneInfo("Asia/Tokyo"))
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        "AINEWS_VAR_DIR": str(tmp_path / f"var{index}"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "AINEWS_LOG_FORMAT": "json",
        "AINEWS_PARSE_WORKERS": "1",
        "AINEWS_FETCH_TIMEOUT": "30",
        "AINEWS_FULLTEXT_PER_POLL": "0",
        "AINEWS_SHUTDOWN_GRACE": "5",
        "AINEWS_BRIEFING_TIME": (now + timedelta(hours=12)).strftime("%H:%M"),
        "AINEWS_WEEKLY_DAY": weekday_after(now.date()),
    } | extra


def weekday_after(day: date) -> str:
    return ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(day.weekday() + 1) % 7]


# -- the database ----------------------------------------------------------------------------


def query(database_url: str, read: Callable[[Session], _T]) -> _T:
    from storage.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            return read(session)
    finally:
        engine.dispose()


def rows(database_url: str, model: type[Any]) -> int:
    return query(database_url, lambda s: s.exec(select(func.count()).select_from(model)).one())


def distinct(database_url: str, column: Any) -> int:
    return query(database_url, lambda s: s.exec(select(func.count(func.distinct(column)))).one())


# -- feeds -----------------------------------------------------------------------------------

COMPANIES = ("Nimbus Labs", "Zephyra", "Kairos AI", "Orion Works", "Lumen Data", "Tessera")


def item_title(feed: int, item: int) -> str:
    return f"{COMPANIES[(feed + item) % len(COMPANIES)]}、言語モデル M{feed}-{item} を発表"


def item_body(feed: int, item: int) -> str:
    """Sentences only this item has, so that no two articles share a content hash (a cached
    summary would need no model call) and a grounded summary can be built from them."""
    company = COMPANIES[(feed + item) % len(COMPANIES)]
    return (
        f"{company}は新しいAI言語モデルM{feed}-{item}を発表した。"
        f"パラメータ数は{feed * 10 + item + 1}億で、前世代より{item + 11}%高速だという。"
        f"同社によると、日本語の推論精度は{feed + 50}点に向上した。"
        f"モデルは{item % 12 + 1}月{feed % 28 + 1}日からAPIで提供される。"
        f"価格は100万トークンあたり{feed + item + 2}ドルに設定された。"
    )


def rss(base_url: str, feed: int, items: int) -> str:
    published = datetime.now(UTC) - timedelta(hours=1)
    entries = "".join(
        f"<item><title>{escape(item_title(feed, i))}</title>"
        f"<link>{base_url}/articles/{feed}/{i}</link><guid>{base_url}/articles/{feed}/{i}</guid>"
        f"<pubDate>{(published - timedelta(minutes=i)).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        f"</pubDate><description>{escape(item_body(feed, i))}</description></item>"
        for i in range(items)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Feed {feed}</title><link>{base_url}/</link><description>AI</description>"
        f"{entries}</channel></rss>"
    )


def serve_feeds(server: FeedServer, feeds: int, items: int) -> list[str]:
    paths = [f"/feeds/{n}.xml" for n in range(feeds)]
    for n, path in enumerate(paths):
        server.add(path, rss(server.base_url, n, items))
    return paths


async def add_sources(tmp_path: Path, database_url: str, urls: Sequence[str]) -> None:
    """Migrate the database and add the sources, as an operator does before starting the
    processes (`ainews sources add`, here in one go)."""
    specs = [SourceSpec(url=u, name=f"feed {i}", category="research") for i, u in enumerate(urls)]
    async with open_app(make_settings(tmp_path, DATABASE_URL=database_url)) as app:
        await app.db.run(add_missing_sources, specs=specs)


# -- 1. work sharing and one budget ------------------------------------------------------------


async def test_three_processes_poll_each_source_once_and_store_each_article_once(
    tmp_path: Path, postgres_url: str, feed_server: FeedServer
) -> None:
    """Started together, the processes' first polls overlap (the feed host answers slowly and
    four requests at a time): each source is fetched by one of them, each article stored and
    summarised once. The poll interval is the default 30 minutes, so every request the feed
    server saw belongs to the first interval."""
    feeds, items = 30, 2
    paths = serve_feeds(feed_server, feeds, items)
    await add_sources(tmp_path, postgres_url, [feed_server.url(p) for p in paths])
    feed_server.latency = 0.3  # a poll of 30 sources takes seconds: the three starts overlap
    envs = [bot_env(tmp_path, postgres_url, i) for i in range(PROCESSES)]
    async with fleet(tmp_path, envs) as bots:
        await until(
            lambda: all(b.records("poll finished") for b in bots), "every process's first poll"
        )
        await until(lambda: rows(postgres_url, Summary) == feeds * items, "every summary")
        fetched = Counter(c.path for c in feed_server.calls)
        polls = [r for b in bots for r in b.records("poll finished")]
    assert fetched == {p: 1 for p in paths}
    assert sum(r["sources"] for r in polls) == feeds  # ... and each by one process
    assert rows(postgres_url, Article) == feeds * items
    assert distinct(postgres_url, Article.url) == feeds * items
    assert rows(postgres_url, Summary) == feeds * items
    assert distinct(postgres_url, Summary.article_id) == feeds * items
    assert_clean_exit(bots)


def recording_model(titles: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The stand-in model: a grounded summary of the article in the request (as a real model
    answers), noting which article each request was for."""

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        titles.append(fenced(request)[1])
        return grounded_summary(request)

    return respond


def summary_methods(session: Session) -> Counter[str]:
    found = session.exec(select(Summary.method, Summary.fallback)).all()
    return Counter("budget" if fallback in BUDGET_CAUSES else method for method, fallback in found)


async def test_three_processes_summarise_each_article_once_within_one_token_budget(
    tmp_path: Path, postgres_url: str, feed_server: FeedServer, openai_server: OpenAIServer
) -> None:
    """300 pending articles (more than one claim batch of 200, so at least two processes get
    work) and a day's budget that fits only some of their summaries: every article gets one
    summary, the model is asked once per article it summarised, and the tokens recorded by all
    processes together stay within the budget, with no reservation left behind."""
    feeds, items, budget = 30, 10, 40_000
    paths = serve_feeds(feed_server, feeds, items)
    await add_sources(tmp_path, postgres_url, [feed_server.url(p) for p in paths])
    settings = make_settings(tmp_path, DATABASE_URL=postgres_url, AINEWS_FULLTEXT_PER_POLL=0)
    async with open_app(settings, fetching=True) as app:
        report = await poll_once(app)  # stored, not summarised: pending when the bots start
    assert report.new == feeds * items and rows(postgres_url, Summary) == 0
    asked: list[str] = []
    openai_server.responder = recording_model(asked)
    # The model answers slowly until every process runs, so that the first one to claim a
    # batch is still at it when the others claim theirs.
    openai_server.latency = 2.0
    envs = [
        bot_env(
            tmp_path,
            postgres_url,
            i,
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=f"{openai_server.base_url}/v1",
            AINEWS_DAILY_TOKEN_BUDGET=str(budget),
            AINEWS_MAX_OUTPUT_TOKENS="200",
            AINEWS_LLM_MAX_RETRIES="0",
        )
        for i in range(PROCESSES)
    ]
    async with fleet(tmp_path, envs) as bots:
        openai_server.latency = 0.3
        await until(lambda: rows(postgres_url, Summary) == feeds * items, "every summary")
        await until(
            lambda: all(b.records("summarize finished") for b in bots), "every summarize run"
        )
        runs = [(b.index, r) for b in bots for r in b.records("summarize finished")]
    methods = query(postgres_url, summary_methods)
    used = query(postgres_url, lambda s: s.exec(select(TokenUsage)).all())
    committed = query(postgres_url, lambda s: s.exec(select(TokenBudgetDay)).all())
    assert distinct(postgres_url, Summary.article_id) == rows(postgres_url, Summary) == 300
    assert methods["llm"] > 0 and methods["budget"] > 0  # only part of them fitted
    assert max(Counter(asked).values()) == 1  # no article sent to the model twice
    assert methods["llm"] == len(asked) == len(used)  # every call's summary kept, and paid
    spent = sum(u.prompt_tokens + u.completion_tokens for u in used)
    assert spent <= budget
    assert [c.committed for c in committed] == [spent]  # no reservation left behind
    work: Counter[int] = Counter()
    for index, run in runs:
        work[index] += run["llm"] + run["extractive"] + run["cached"]
    assert sum(work.values()) == 300
    assert len([i for i, n in work.items() if n]) >= 2  # the work was shared
    assert_clean_exit(bots)


# -- 2. one briefing thread per destination ----------------------------------------------------

BRIEFING_TIME = time(11, 0)


def zone_just_past_noon(now: datetime) -> str:
    """A fixed-offset zone in which `now` is 12:xx: there, 11:00 has just passed (a catch-up is
    due at start, within the three-hour grace) on whatever hour the test runs, and midnight is
    far (the day cannot change while the test runs)."""
    hours = 12 - now.astimezone(UTC).hour  # local = UTC + hours; Etc/GMT signs are reversed
    return "Etc/GMT" if hours == 0 else f"Etc/GMT{-hours:+d}"


async def demo_data_due_now(tmp_path: Path, database_url: str) -> tuple[str, date]:
    """The offline demo's sources polled and summarised into `database_url`, the articles then
    moved so that DEMO_DAY's briefing becomes, item for item, today's in a zone where the
    11:00 briefing has just passed. Returns that zone and today's date there."""
    from bot.demo.run import DEMO_SOURCES
    from bot.demo.server import BASE_URL_PLACEHOLDER, DemoFeedServer
    from bot.sources_file import load_sources_toml
    from jobs.briefing import briefing_window
    from jobs.daily import latest_complete_day

    settings = make_settings(tmp_path, DATABASE_URL=database_url)
    async with DemoFeedServer() as server, open_app(settings, fetching=True, seed=False) as app:
        specs = [
            replace(s, url=s.url.replace(BASE_URL_PLACEHOLDER, server.base_url))
            for s in load_sources_toml(DEMO_SOURCES, app.taxonomy)
        ]
        await app.db.run(add_missing_sources, specs=specs)
        await poll_once(app)
        await summarize_pending(app)
        demo = app.briefing_config
    now = datetime.now(UTC)
    zone = zone_just_past_noon(now)
    live = replace(demo, tz=ZoneInfo(zone), briefing_time=BRIEFING_TIME)
    day = latest_complete_day(now, live)
    redate_articles(
        database_url, by=briefing_window(day, live)[1] - briefing_window(DEMO_DAY, demo)[1]
    )
    return zone, day


def slack_env(slack: SlackServer, index: int) -> dict[str, str]:
    """Slack in HTTP mode on a free port; each process has a token of its own, so the stand-in
    tells whose call each was."""
    return {
        "SLACK_BOT_TOKEN": f"xoxb-process-{index}",
        "SLACK_SIGNING_SECRET": SECRET,
        "AINEWS_SLACK_CHANNEL": CHANNEL,
        "SLACK_API_URL": slack.api_url,
        "AINEWS_HTTP_HOST": "127.0.0.1",
        "AINEWS_HTTP_PORT": "0",
        "AINEWS_SLACK_POST_INTERVAL": "0",
    }


def briefing_env(zone: str, day: date) -> dict[str, str]:
    return {
        "AINEWS_TIMEZONE": zone,
        "AINEWS_BRIEFING_TIME": BRIEFING_TIME.strftime("%H:%M"),
        "AINEWS_WEEKLY_DAY": weekday_after(day),
    }


def slack_thread(slack: SlackServer) -> tuple[list[PostedMessage], list[int]]:
    """The channel's top-level messages, and the item numbers of the replies under them."""
    messages = slack.messages_in(CHANNEL)
    parents = [m for m in messages if m.thread_ts is None]
    parent_ts = {m.ts for m in parents}
    replies = [m for m in messages if m.thread_ts is not None]
    assert all(r.thread_ts in parent_ts for r in replies)
    return parents, [slack_item_number(r) for r in replies]


def slack_item_number(reply: PostedMessage) -> int:
    return int(str(reply.blocks[0]["text"]["text"]).strip("*").split(".")[0])


def settled(bots: Sequence[Bot], destination: str) -> bool:
    """Every process has published `destination`, found it not its to post (the archive file
    logs its own two lines), or left the briefing to the poster (it does not hold the role)."""
    if destination == "console":
        done = ("briefing published", "briefing already published")
    else:
        done = ("briefing posted", "briefing not ours to post")
    return all(
        any(
            destination == "console" or r.get("destination") == destination
            for message in done
            for r in b.records(message)
        )
        or any(r.get("job") == "daily_briefing" for r in b.records("not the poster: skipped"))
        for b in bots
    )


async def test_three_processes_started_after_the_briefing_time_post_one_thread_per_destination(
    tmp_path: Path, postgres_url: str
) -> None:
    """All three catch up on the day's briefing at start, for the archive file, Slack and
    Discord: each destination gets one thread of the 20 items, each item once."""
    from tests.fakes.discord_server import BOT_TOKEN, GUILD_ID, TEXT_CHANNEL_ID, DiscordServer

    zone, day = await demo_data_due_now(tmp_path, postgres_url)
    async with SlackServer() as slack, DiscordServer() as discord:
        envs = [
            bot_env(tmp_path, postgres_url, i)
            | slack_env(slack, i)
            | briefing_env(zone, day)
            | {
                "DISCORD_TOKEN": BOT_TOKEN,
                "AINEWS_DISCORD_CHANNEL_ID": str(TEXT_CHANNEL_ID),
                "AINEWS_DISCORD_GUILD_ID": str(GUILD_ID),
                "AINEWS_DISCORD_API_URL": discord.api_url,
                "AINEWS_DISCORD_GATEWAY_URL": discord.gateway_url,
            }
            for i in range(PROCESSES)
        ]
        async with fleet(tmp_path, envs) as bots:
            for destination in (f"slack:{CHANNEL}", f"discord:{TEXT_CHANNEL_ID}", "console"):
                await until(lambda d=destination: settled(bots, d), f"{destination} settled")
        parents, numbers = slack_thread(slack)
        discord_parents = [m for m in discord.messages_in(TEXT_CHANNEL_ID) if m.thread_id]
        discord_items = [
            int(m.embeds[0]["title"].split(".")[0])
            for p in discord_parents
            for m in discord.messages_in(p.thread_id or 0)
        ]
        violations = list(discord.violations)
    assert len(parents) == 1 and f"AI News - {day.isoformat()}" in str(parents[0].blocks)
    assert numbers == list(range(1, 21))
    assert len(discord_parents) == 1
    assert sorted(discord_items) == list(range(1, 21)) and violations == []
    archives = [tmp_path / f"var{i}" / "briefings" / f"{day}.md" for i in range(PROCESSES)]
    assert [a.exists() for a in archives].count(True) == 1
    assert_clean_exit(bots)


# -- 3. a poster killed mid-thread ---------------------------------------------------------------


def reply_calls(slack: SlackServer) -> list[ApiCall]:
    """Every chat.postMessage of a reply in the briefing thread, as it arrived (answered or
    not)."""
    return [
        c
        for c in slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") and c.params.get("channel") == CHANNEL
    ]


async def test_a_poster_killed_mid_thread_is_finished_by_another_with_only_the_missing_replies(
    tmp_path: Path, postgres_url: str
) -> None:
    """Slack answers slowly, so the thread takes seconds. The process posting it is SIGKILLed
    while its sixth reply is in flight (Slack has not answered, so it posted nothing). With a
    two-second briefing lease another running process takes the claim over and posts only the
    replies that are missing: one parent, items 1-20 once each."""
    zone, day = await demo_data_due_now(tmp_path, postgres_url)
    async with SlackServer() as slack:
        slack.latency = 0.5
        envs = [
            bot_env(tmp_path, postgres_url, i)
            | slack_env(slack, i)
            | briefing_env(zone, day)
            # The poster role is taken over 3 s after its holder stops renewing it.
            | {
                "AINEWS_BRIEFING_LEASE": "2",
                "AINEWS_PUBLISH_RETRY": "1",
                "AINEWS_POSTER_LEASE": "3",
            }
            for i in range(PROCESSES)
        ]
        async with fleet(tmp_path, envs) as bots:
            await until(lambda: len(reply_calls(slack)) >= 6, "a sixth reply in flight")
            victim_token = reply_calls(slack)[-1].token or ""
            victim = bots[int(victim_token.rsplit("-", 1)[1])]
            victim.process.kill()
            await victim.process.wait()
            await until(lambda: len(slack_thread(slack)[1]) >= 20, "the thread finished")
            survivors = [b for b in bots if b is not victim]
            await until(lambda: settled(survivors, f"slack:{CHANNEL}"), "the survivors settled")
        parents, numbers = slack_thread(slack)
        posters = [c.token for c in reply_calls(slack)]
    assert posters[:6] == [victim_token] * 6  # five posted, the sixth cut off
    assert len(set(posters[6:])) == 1 and victim_token not in posters[6:]  # one taker
    assert len(parents) == 1
    assert sorted(numbers) == list(range(1, 21))  # each item once: none lost, none doubled
    assert len(posters) == 21  # the taker posted the 15 missing ones only
    assert_clean_exit(bots, killed=frozenset({victim.index}))


# -- 4. the database's connections cut -----------------------------------------------------------


def terminate_connections(database_url: str) -> int:
    """What a PostgreSQL restart does to the processes: every other connection to the test's
    database is terminated. Returns how many were."""
    from sqlalchemy import text

    def terminate(session: Session) -> int:
        return len(
            session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        )

    return query(database_url, terminate)


async def test_processes_survive_their_database_connections_being_terminated(
    tmp_path: Path, postgres_url: str, feed_server: FeedServer
) -> None:
    """After the first poll every process's connections are terminated. None exits; at the
    next poll (15 s later) an item added to a feed meanwhile is stored and summarised
    exactly once, and every source is polled again in that second interval."""
    feeds, items = 3, 2
    paths = serve_feeds(feed_server, feeds, items)
    await add_sources(tmp_path, postgres_url, [feed_server.url(p) for p in paths])
    envs = [
        bot_env(tmp_path, postgres_url, i, AINEWS_POLL_INTERVAL="0.25") for i in range(PROCESSES)
    ]
    async with fleet(tmp_path, envs) as bots:
        await until(lambda: all(b.records("summarize finished") for b in bots), "first polls")
        assert rows(postgres_url, Summary) == feeds * items
        assert terminate_connections(postgres_url) >= PROCESSES  # each holds a pooled one
        feed_server.add(paths[0], rss(feed_server.base_url, 0, items + 1))
        await until(lambda: rows(postgres_url, Summary) == feeds * items + 1, "the new item")
        await until(lambda: all(len(b.records("poll finished")) >= 2 for b in bots), "second polls")
        alive = [b.process.returncode for b in bots]
        second_round = [b.records("poll finished")[1] for b in bots]
        new_url = f"{feed_server.base_url}/articles/0/{items}"
        stored = query(
            postgres_url,
            lambda s: s.exec(select(func.count()).where(Article.url == new_url)).one(),
        )
    assert alive == [None] * PROCESSES
    assert stored == 1
    assert sum(p["sources"] for p in second_round) == feeds  # every source, once an interval
    assert rows(postgres_url, Article) == distinct(postgres_url, Article.url) == feeds * items + 1
    assert distinct(postgres_url, Summary.article_id) == feeds * items + 1
    assert_clean_exit(bots)
