"""Process health and metrics over real HTTP: /healthz, /readyz (ready, and not when the
database is unreachable, behind on migrations or shutting down), /metrics moving with real
polls, summaries, posts, commands and claim takeovers; JSON logs of a real `ainews run`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import open_app, poll_once
from bot.config import Settings, SettingsError, load_settings
from bot.health import serve_health
from bot.metrics import Metrics, command_label
from bot.platforms.console import ConsolePublisher
from bot.publishing.chat import Caller, ChatCore
from jobs.briefing_model import Briefing, Trend, to_payload
from storage.briefings import claim_briefing
from storage.db import Database
from storage.migrate import HEAD_REVISION, alembic_config, upgrade_to_head
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import TEST_FEEDS
from tests.fakes.feed_server import FeedServer
from tests.fakes.openai_server import OpenAIServer
from tests.test_cli import AINEWS
from tests.test_summarize import KAIROS, NIMBUS, add_articles, grounded_summary, llm_app

TOKYO = ZoneInfo("Asia/Tokyo")


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus-client's own parser:
    (name, sorted labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


@asynccontextmanager
async def health_of(
    db: Database, metrics: Metrics, stopping: asyncio.Event | None = None
) -> AsyncIterator[str]:
    """A health server on a free loopback port; yields its base URL."""
    async with serve_health(
        db=db, metrics=metrics, host="127.0.0.1", port=0, stopping=stopping
    ) as server:
        assert server is not None and server.port
        yield f"http://127.0.0.1:{server.port}"


async def test_healthz_readyz_and_metrics_move_with_real_polls(
    settings: Settings, feed_server: FeedServer
) -> None:
    feed_server.add("/ja.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    feed_server.status("/gone.xml", 410)
    async with open_app(settings, fetching=True) as app:
        await app.db.run(
            add_missing_sources,
            specs=[
                SourceSpec(url=feed_server.url("/ja.xml"), name="ja", category="japan"),
                SourceSpec(url=feed_server.url("/gone.xml"), name="gone", category="policy"),
            ],
        )
        async with health_of(app.db, app.metrics) as base:
            assert (await get(f"{base}/healthz"))[0] == 200
            status, _, body = await get(f"{base}/readyz")
            assert (status, json.loads(body)) == (200, {"ready": True})
            before = samples((await get(f"{base}/metrics"))[2])
            assert before[("ainews_feed_polls_total", ())] == 0

            await poll_once(app)
            await poll_once(app, force=True)  # the feed is unchanged: 304

            status, content_type, text = await get(f"{base}/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    after = samples(text)
    assert after[("ainews_poll_runs_total", ())] == 2
    assert after[("ainews_poll_duration_seconds_count", ())] == 2
    assert after[("ainews_feed_polls_total", ())] == 4
    assert after[("ainews_feed_not_modified_total", ())] == 1
    assert after[("ainews_feed_poll_failures_total", ())] == 2  # 410, twice
    assert after[("ainews_articles_new_total", ())] == 3
    assert after[("process_resident_memory_bytes", ())] > 0


async def test_readyz_is_503_with_the_reason_when_the_database_is_unreachable() -> None:
    db = Database("postgresql://ainews:s3cret-pw@127.0.0.1:1/ainews")
    try:
        async with health_of(db, Metrics()) as base:
            assert (await get(f"{base}/healthz"))[0] == 200  # alive all the same
            status, _, body = await get(f"{base}/readyz")
    finally:
        db.dispose()
    answer = json.loads(body)
    assert status == 503 and answer["ready"] is False
    assert answer["reason"].startswith("database unreachable: ")
    assert "127.0.0.1" in answer["reason"] and "s3cret-pw" not in answer["reason"]


async def test_readyz_is_503_while_migrations_are_behind_and_ready_after(tmp_path: Path) -> None:
    from alembic import command

    db = Database(f"sqlite:///{tmp_path / 'behind.sqlite3'}")
    try:
        async with health_of(db, Metrics()) as base:
            status, _, body = await get(f"{base}/readyz")
            assert status == 503
            assert json.loads(body)["reason"] == (
                f"schema at revision none, this version needs {HEAD_REVISION}"
            )
            command.upgrade(alembic_config(db.engine), "0004")
            status, _, body = await get(f"{base}/readyz")
            assert status == 503
            assert json.loads(body)["reason"] == (
                f"schema at revision 0004, this version needs {HEAD_REVISION}"
            )
            upgrade_to_head(db.engine)
            assert (await get(f"{base}/readyz"))[0] == 200
    finally:
        db.dispose()


async def test_readyz_is_503_once_shutdown_begins(settings: Settings) -> None:
    stopping = asyncio.Event()
    async with open_app(settings) as app, health_of(app.db, app.metrics, stopping) as base:
        assert (await get(f"{base}/readyz"))[0] == 200
        stopping.set()
        status, _, body = await get(f"{base}/readyz")
        assert (status, json.loads(body)["reason"]) == (503, "shutting down")
        assert (await get(f"{base}/healthz"))[0] == 200


async def test_llm_tokens_are_counted_by_model_and_kind(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    from bot.app import summarize_pending

    openai_server.responder = grounded_summary
    async with llm_app(tmp_path, openai_server) as app:
        await add_articles(app, NIMBUS, KAIROS)
        report = await summarize_pending(app)
        usage = await app.db.run(_usage_totals)
        found = samples(app.metrics.exposition().decode())
    assert report.llm == 2
    model = app.settings.model
    prompt, completion = usage
    assert prompt > 0 and completion > 0
    assert found[("ainews_llm_tokens_total", (("kind", "prompt"), ("model", model)))] == prompt
    assert (
        found[("ainews_llm_tokens_total", (("kind", "completion"), ("model", model)))] == completion
    )
    assert found[("ainews_summaries_total", (("method", "llm"),))] == 2
    # No price known yet for the model: its cost is not made up.
    assert not any(name == "ainews_llm_cost_usd_total" for name, _ in found)


def _usage_totals(*, session: Any) -> tuple[int, int]:
    from sqlmodel import func, select

    from storage.models import TokenUsage

    row = session.exec(
        select(func.sum(TokenUsage.prompt_tokens), func.sum(TokenUsage.completion_tokens))
    ).one()
    return int(row[0]), int(row[1])


def test_cost_is_counted_when_a_price_is_known() -> None:
    metrics = Metrics(price=lambda model, p, c: (p * 0.15 + c * 0.6) / 1e6)
    metrics.record_llm_usage(model="gpt-4o-mini", prompt=1_000_000, completion=1_000_000)
    found = samples(metrics.exposition().decode())
    assert found[("ainews_llm_cost_usd_total", (("model", "gpt-4o-mini"),))] == pytest.approx(0.75)


def _briefing(day: date) -> Briefing:
    return Briefing(
        day=day,
        categories_considered=0,
        articles_considered=0,
        sections=(),
        trend=Trend((), (), "本日の掲載記事はありません。", automatic=True),
        window_start=datetime(2026, 3, 1),
        window_end=datetime(2026, 3, 2),
    )


async def test_posts_and_claim_takeovers_are_counted(settings: Settings) -> None:
    """A claim left by a poster that stopped (lease expired) is taken over and counted; one
    that is fresh is not ours and counts nothing."""
    briefing = _briefing(date(2026, 3, 2))
    async with open_app(settings) as app:
        # A poster that claimed the day and died before writing anything.
        await app.db.run(
            claim_briefing,
            day=briefing.day,
            destination="console",
            payload=to_payload(briefing),
            lease_seconds=60,
        )
        fresh = ConsolePublisher(
            db=app.db, directory=settings.briefings_dir, lease=3600, echo=False, metrics=app.metrics
        )
        assert await fresh.publish(briefing) is False  # its lease has not run out
        survivor = ConsolePublisher(
            db=app.db, directory=settings.briefings_dir, lease=0, echo=False, metrics=app.metrics
        )
        assert await survivor.publish(briefing) is True
        found = samples(app.metrics.exposition().decode())
    assert found[("ainews_claim_takeovers_total", (("claim", "briefing"),))] == 1
    assert found[("ainews_posts_total", (("kind", "file"), ("platform", "console")))] == 1


async def test_command_latency_is_labelled_by_known_command_only(settings: Settings) -> None:
    async with open_app(settings) as app:
        core = ChatCore(app, spawn=lambda coro: coro.close())
        caller = Caller(platform="slack", user_id="U1")
        await core.command(caller, "help")
        await core.command(caller, "sources list")
        await core.command(caller, "<@U999> drop table")  # what a user typed is not a label
        found = samples(app.metrics.exposition().decode())

    def count(command: str) -> float:
        key = (("command", command), ("platform", "slack"))
        return found.get(("ainews_command_duration_seconds_count", key), 0)

    assert (count("help"), count("sources"), count("other")) == (1, 1, 1)
    assert command_label("ASK 何が起きた？") == "ask"
    assert command_label("post-digest") == "post-digest"


def test_the_health_port_may_not_be_slacks_http_port() -> None:
    with pytest.raises(SettingsError, match="AINEWS_HEALTH_PORT: 3000 is AINEWS_HTTP_PORT"):
        load_settings(
            _env_file=None,
            SLACK_BOT_TOKEN="xoxb-1",
            SLACK_SIGNING_SECRET="s",
            AINEWS_SLACK_CHANNEL="C1",
            AINEWS_HEALTH_PORT="3000",
        )
    assert load_settings(_env_file=None, AINEWS_HEALTH_PORT="").health_port is None
    assert load_settings(_env_file=None).health_port is None  # not served unless asked for


async def test_ainews_run_serves_health_and_logs_json_lines_with_its_pid(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.add("/ja.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "AINEWS_HTTP_HOST": "127.0.0.1",
        "AINEWS_HEALTH_PORT": "0",
        "AINEWS_LOG_FORMAT": "json",
        # Twelve hours away: no briefing is due while the test runs, whatever the time.
        "AINEWS_BRIEFING_TIME": (datetime.now(TOKYO) + timedelta(hours=12)).strftime("%H:%M"),
    }
    add = await asyncio.create_subprocess_exec(
        AINEWS, "sources", "add", feed_server.url("/ja.xml"), env=env, cwd=tmp_path
    )
    assert await add.wait() == 0
    process = await asyncio.create_subprocess_exec(
        AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    lines: list[dict[str, Any]] = []

    async def until(message: str) -> dict[str, Any]:
        assert process.stderr is not None
        while True:
            raw = await asyncio.wait_for(process.stderr.readline(), timeout=30)
            assert raw, f"ainews run ended before {message!r}: {lines}"
            lines.append(json.loads(raw))  # every line is one JSON object
            if lines[-1]["message"] == message:
                return lines[-1]

    try:
        listening = await until("health listening")
        base = f"http://127.0.0.1:{listening['port']}"
        await until("poll finished")
        assert (await get(f"{base}/healthz"))[0] == 200
        assert (await get(f"{base}/readyz"))[0] == 200
        found = samples((await get(f"{base}/metrics"))[2])
        assert found[("ainews_articles_new_total", ())] == 3
        assert found[("ainews_feed_polls_total", ())] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
        code = await process.wait()
    lines += [json.loads(line) for line in rest.decode().splitlines()]
    assert code == 0
    assert {line["pid"] for line in lines} == {process.pid}
    poll = next(line for line in lines if line["message"] == "poll finished")
    assert (poll["level"], poll["logger"], poll["new"]) == ("INFO", "jobs.poll", 3)
    assert all({"time", "level", "logger", "message", "pid"} <= set(line) for line in lines)
    assert any(line["message"] == "shutting down" for line in lines)


async def test_a_slack_thread_counts_its_posts_and_a_dead_posters_claim_taken_over(
    tmp_path: Path, demo_database: Path
) -> None:
    """A poster died holding the claim (lease 0: stale at once); the next run takes it over
    (counted) and Slack refuses its parent, so it posts nothing and releases the claim; the run
    after that takes the released claim (not a takeover) and posts the thread."""
    from slack_sdk.errors import SlackApiError

    from bot.app import briefing_for
    from tests.conftest import DEMO_DAY
    from tests.fakes.slack_server import SlackServer
    from tests.test_slack import CHANNEL, slack_running, slack_settings

    async with SlackServer() as slack:
        settings = slack_settings(tmp_path, demo_database, slack)
        async with slack_running(settings) as first:
            briefing = await briefing_for(first.app, DEMO_DAY)
            await first.app.db.run(
                claim_briefing,
                day=briefing.day,
                destination=first.platform.thread.destination,
                payload=to_payload(briefing),
                lease_seconds=0,
            )
            slack.fail("chat.postMessage", error="fatal_error", times=None)
            with pytest.raises(SlackApiError, match="fatal_error"):
                await first.platform.thread.publish(briefing)
            failed = samples(first.app.metrics.exposition().decode())
        slack.clear_faults()
        async with slack_running(settings) as second:
            assert await second.platform.thread.publish(briefing)
            resumed = samples(second.app.metrics.exposition().decode())
        assert len(slack.messages_in(CHANNEL)) == 1 + len(briefing.items)

    def posts(found: dict[Any, float], kind: str) -> float:
        return found.get(("ainews_posts_total", (("kind", kind), ("platform", "slack"))), 0)

    def takeovers(found: dict[Any, float]) -> float:
        return found.get(("ainews_claim_takeovers_total", (("claim", "briefing"),)), 0)

    assert (posts(failed, "parent"), posts(failed, "item"), takeovers(failed)) == (0, 0, 1)
    assert (posts(resumed, "parent"), posts(resumed, "item")) == (1, len(briefing.items))
    assert takeovers(resumed) == 0


async def test_a_health_port_in_use_stops_start_up_with_one_line(tmp_path: Path) -> None:
    import socket

    from tests.test_cli import ainews

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await ainews(
            tmp_path, "run", AINEWS_HTTP_HOST="127.0.0.1", AINEWS_HEALTH_PORT=str(port)
        )
    assert result.code == 1
    assert "Traceback" not in result.err
    assert f"error: AINEWS_HEALTH_PORT: cannot listen on 127.0.0.1:{port}: " in result.err
