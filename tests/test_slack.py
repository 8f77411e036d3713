"""The Slack adapter against the Slack stand-in: real slack-bolt and slack_sdk, real HTTP and
WebSocket on 127.0.0.1, nothing monkeypatched."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session, select

from bot.app import App, briefing_for, open_app
from bot.demo.run import run_demo
from bot.platforms.slack import SlackBot
from bot.render.slack import MAX_BLOCKS, MAX_SECTION
from bot.scheduler import JobRunner
from storage.models import Article
from storage.sources import SourceSpec, add_missing_sources
from storage.subscriptions import subscribe
from tests.conftest import make_settings
from tests.fakes.openai_server import OpenAIServer
from tests.fakes.slack_server import (
    SlackServer,
    events_api_payload,
    sign_request,
    slash_command_body,
    slash_command_payload,
)
from tests.test_cli import AINEWS

SECRET = "test-signing-secret"
CHANNEL = "C0BRIEF"
DAY = "2026-11-23"


@pytest.fixture
async def demo_database(tmp_path: Path) -> Path:
    settings = make_settings(tmp_path)
    await run_demo(settings)
    return settings.var_dir / "demo" / "ainews-demo.sqlite3"


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


@dataclass
class Running:
    app: App
    bot: SlackBot
    runner: JobRunner

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.http_port}/slack/events"


def slack_settings(tmp_path: Path, database: Path, slack: SlackServer, **extra: Any) -> Any:
    return make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        AINEWS_SLACK_CHANNEL=CHANNEL,
        SLACK_API_URL=slack.api_url,
        AINEWS_HTTP_HOST="127.0.0.1",
        AINEWS_HTTP_PORT=0,
        AINEWS_SLACK_POST_INTERVAL=0,
        AINEWS_BRIEFING_LEASE=0,
        AINEWS_ADMIN_USERS="UADMIN",
        **extra,
    )


@pytest.fixture
async def running(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> AsyncIterator[Running]:
    async with open_app(slack_settings(tmp_path, demo_database, slack)) as app:
        runner = JobRunner()
        bot = SlackBot(app, spawn=runner.spawn)
        await bot.start()
        try:
            yield Running(app, bot, runner)
        finally:
            await runner.drain(5)
            await bot.stop()


async def post_command(
    events_url: str,
    slack: SlackServer,
    text: str,
    *,
    user: str = "U123",
    secret: str = SECRET,
    timestamp: int | None = None,
) -> int:
    body = slash_command_body(text, user_id=user, response_url=slack.response_url("cmd"))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        **sign_request(secret, body, timestamp=timestamp),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(events_url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def test_signed_search_command_is_acked_then_answered(
    running: Running, slack: SlackServer
) -> None:
    status = await post_command(running.events_url, slack, "search 規制")
    assert status == 200
    [answer] = await slack.wait_for_response()
    assert answer["response_type"] == "ephemeral"
    texts = str(answer["blocks"])
    assert "規制" in texts and "techinsight.example.jp" in texts
    actions = [b for b in answer["blocks"] if b["type"] == "actions"]
    assert actions and actions[0]["elements"][0]["value"] == "search 規制"  # share button


@pytest.mark.parametrize(
    ("secret", "age"),
    [("wrong-secret", 0), (SECRET, 6 * 60)],
    ids=["bad-signature", "older-than-5-minutes"],
)
async def test_unsigned_or_stale_requests_get_401_and_do_nothing(
    running: Running, slack: SlackServer, secret: str, age: int
) -> None:
    status = await post_command(
        running.events_url, slack, "search 規制", secret=secret, timestamp=int(time.time()) - age
    )
    assert status == 401
    await asyncio.sleep(0.2)  # give a wrongly accepted command time to answer
    assert slack.responses == []


async def test_healthz(running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        url = running.events_url.replace("/slack/events", "/healthz")
        async with http.get(url) as response:
            assert response.status == 200
            assert (await response.json()) == {"ok": True}


async def test_help_unknown_and_bad_arguments_always_answer(
    running: Running, slack: SlackServer
) -> None:
    for text in ("help", "frobnicate", "search category:nope 半導体", "subscribe xyz"):
        await post_command(running.events_url, slack, text)
    answers = await slack.wait_for_response(count=4)
    joined = [str(a["blocks"]) for a in answers]
    assert "/ainews search" in joined[0] and "subscribe" in joined[0]
    assert "frobnicate" in joined[1] and "/ainews search" in joined[1]
    assert "nope" in joined[2] and "research" in joined[2]
    assert "xyz" in joined[3]


async def test_admin_commands_refuse_non_admins(running: Running, slack: SlackServer) -> None:
    await post_command(
        running.events_url, slack, "sources add https://feeds.example.org/rss policy"
    )
    await post_command(running.events_url, slack, "post-digest")
    answers = await slack.wait_for_response(count=2)
    assert all("管理者だけ" in str(a["blocks"]) for a in answers)
    assert slack.messages_in(CHANNEL) == []
    await post_command(
        running.events_url, slack, "sources add https://feeds.example.org/rss policy", user="UADMIN"
    )
    [*_, added] = await slack.wait_for_response(count=3)
    assert "追加しました" in str(added["blocks"])


async def test_chat_cannot_add_a_loopback_source(running: Running, slack: SlackServer) -> None:
    await post_command(
        running.events_url, slack, "sources add http://127.0.0.1:8080/feed.xml", user="UADMIN"
    )
    [answer] = await slack.wait_for_response()
    assert "not a public address" in str(answer["blocks"])


async def test_briefing_thread_parent_then_replies_in_order_within_limits(
    running: Running, slack: SlackServer
) -> None:
    from datetime import date

    briefing = await briefing_for(running.app, date.fromisoformat(DAY))
    assert await running.bot.publish(briefing) is True
    assert await running.bot.publish(briefing) is False  # once per channel and day

    messages = slack.messages_in(CHANNEL)
    parent, replies = messages[0], messages[1:]
    assert parent.thread_ts is None and "AI News - 2026-11-23" in str(parent.blocks)
    assert len(replies) == len(briefing.items) == 20
    assert all(r.thread_ts == parent.ts for r in replies)
    numbers = [int(str(r.blocks[0]["text"]["text"]).strip("*").split(".")[0]) for r in replies]
    assert numbers == list(range(1, 21))
    for message in messages:
        assert len(message.blocks) <= MAX_BLOCKS and message.text
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION


async def test_rate_limits_during_the_thread_lose_and_double_nothing(
    running: Running, slack: SlackServer
) -> None:
    from datetime import date

    slack.rate_limit("chat.postMessage", times=2, retry_after=0)
    briefing = await briefing_for(running.app, date.fromisoformat(DAY))
    assert await running.bot.publish(briefing)
    replies = slack.messages_in(CHANNEL)[1:]
    assert len(replies) == 20 and len({r.text for r in replies}) == 20
    assert len(slack.calls_to("chat.postMessage")) == 21 + 2


async def test_a_restart_mid_thread_resumes_without_duplicates(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    from datetime import date

    from slack_sdk.errors import SlackApiError

    settings = slack_settings(tmp_path, demo_database, slack)
    slack.fail("chat.postMessage", error="fatal_error", times=None)
    async with open_app(settings) as app:
        briefing = await briefing_for(app, date.fromisoformat(DAY))
        bot = SlackBot(app, spawn=JobRunner().spawn)
        # Let the parent and six replies through, then the "crash".
        slack.clear_faults()
        original = len(slack.messages)

        async def crash_after_seven() -> None:
            await slack.wait_for_message(count=original + 7)
            slack.fail("chat.postMessage", error="fatal_error", times=None)

        watcher = asyncio.create_task(crash_after_seven())
        with pytest.raises(SlackApiError):
            await bot.publish(briefing)
        await watcher
    first_run = list(slack.messages_in(CHANNEL))
    assert 2 <= len(first_run) <= 9
    slack.clear_faults()
    async with open_app(settings) as app:  # a new process: resumes from the stored claim
        bot = SlackBot(app, spawn=JobRunner().spawn)
        assert await bot.publish(await briefing_for(app, date.fromisoformat(DAY)))
    messages = slack.messages_in(CHANNEL)
    parents = [m for m in messages if m.thread_ts is None]
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(parents) == 1
    assert len(replies) == 20 and len({r.text for r in replies}) == 20


async def test_dm_bundles_one_message_per_user(running: Running, slack: SlackServer) -> None:
    db = running.app.db
    await db.run(subscribe, platform="slack", user_id="UALICE", categories=["agents", "security"])
    await db.run(subscribe, platform="slack", user_id="UBOB", categories=["infra"])
    await _add_and_summarise(running.app, count=3)  # new summaries after subscribing

    sent = await running.bot.send_subscriptions()
    again = await running.bot.send_subscriptions()

    opened = [c.params.get("users") for c in slack.calls_to("conversations.open")]
    assert sorted(opened) == ["UALICE", "UBOB"]
    dms = [m for m in slack.messages if m.channel.startswith("D")]
    assert len(dms) == sent == 2
    assert again == 0  # the cursor moved: nothing is sent twice


async def _add_and_summarise(app: App, *, count: int) -> None:
    from bot.app import summarize_pending
    from storage.articles import NewArticle, insert_new_articles
    from storage.clock import utcnow

    [spec] = [SourceSpec(url="https://dm.example.com/rss", name="DM Test", category="agents")]
    await app.db.run(add_missing_sources, specs=[spec])
    with Session(app.db.engine) as session:
        source_id = session.exec(select(Article.source_id)).first()
    bodies = [
        ("エージェント基盤の新版を公開", "新しいAIエージェント基盤が公開された。" * 5, "agents"),
        ("脆弱性への注意喚起", "セキュリティ企業が脆弱性を公表した。" * 5, "security"),
        ("データセンターを新設", "GPUを備えたデータセンターを新設する。" * 5, "infra"),
    ][:count]
    articles = [
        NewArticle(
            url=f"https://dm.example.com/{i}",
            guid=None,
            title=title,
            language="ja",
            published_at=utcnow(),
            body_text=body,
            content_hash=f"dm{i}",
        )
        for i, (title, body, _) in enumerate(bodies)
    ]
    assert source_id is not None
    await app.db.run(
        insert_new_articles, source_id=source_id, articles=articles, first_seen_at=utcnow()
    )
    await summarize_pending(app)


async def test_a_hostile_article_is_posted_inert(running: Running, slack: SlackServer) -> None:
    await post_command(running.events_url, slack, "search calendar invite")
    [answer] = await slack.wait_for_response()
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "ignore all previous instructions" in text.lower()
    assert "<!channel>" not in text and "@everyone" not in text
    assert "@\u200beveryone" in text  # still readable, no longer a mention


async def test_commands_are_acked_before_a_slow_model_answers(
    tmp_path: Path, demo_database: Path, slack: SlackServer, openai_server: OpenAIServer
) -> None:
    """The ack never waits for the work: with the model taking 1.5 s per answer, all five
    HTTP acks are back while no answer has been posted yet; the answers follow."""
    openai_server.latency = 1.5
    openai_server.responder = lambda _: {"answerable": False, "answer": "", "citations": []}
    settings = slack_settings(
        tmp_path,
        demo_database,
        slack,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
    )
    async with open_app(settings, llm=True) as app:
        runner = JobRunner()
        bot = SlackBot(app, spawn=runner.spawn)
        await bot.start()
        try:
            acks = await asyncio.gather(
                *(
                    post_command(
                        f"http://127.0.0.1:{bot.http_port}/slack/events", slack, "ask 規制とは？"
                    )
                    for _ in range(5)
                )
            )
            assert all(status == 200 for status in acks)
            assert slack.responses == []  # acked first, answered after
            answers = await slack.wait_for_response(count=5)
        finally:
            await runner.drain(5)
            await bot.stop()
    assert len(answers) == 5 and len(openai_server.requests) == 5


async def test_socket_mode_commands_are_acked_and_answered(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    settings = slack_settings(tmp_path, demo_database, slack, SLACK_APP_TOKEN="xapp-test")
    async with open_app(settings) as app:
        runner = JobRunner()
        bot = SlackBot(app, spawn=runner.spawn)
        await bot.start()
        try:
            await slack.wait_for_socket_client()
            payload = slash_command_payload(
                "search 半導体", user_id="U123", response_url=slack.response_url("socket")
            )
            envelope = await slack.send_socket_event("slash_commands", dict(payload))
            await slack.wait_for_ack(envelope)
            [answer] = await slack.wait_for_response()
        finally:
            await runner.drain(5)
            await bot.stop()
    assert "半導体" in json.dumps(answer["blocks"], ensure_ascii=False)
    assert slack.calls_to("apps.connections.open")


async def test_a_mention_is_answered_in_a_thread(running: Running, slack: SlackServer) -> None:
    body = events_api_payload(
        {
            "type": "app_mention",
            "user": "U123",
            "text": "<@U0BOT> Kumo Relayとは？",
            "ts": "1700000000.000200",
            "channel": "C0TALK",
            "event_ts": "1700000000.000200",
        }
    )
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign_request(SECRET, raw)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.events_url, data=raw, headers=headers) as response,
    ):
        assert response.status == 200
    [message] = await slack.wait_for_message()
    assert message.channel == "C0TALK" and message.thread_ts == "1700000000.000200"
    assert "Kumo Relay" in json.dumps(message.blocks, ensure_ascii=False)


async def test_app_home_shows_and_toggles_subscriptions(
    running: Running, slack: SlackServer
) -> None:
    await running.bot.publish_home("UHOME")
    [view] = [c.decoded("view") for c in await slack.wait_for("views.publish")]
    buttons = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert len(buttons) == 10 and all(b["text"]["text"] == "購読" for b in buttons)
    await running.bot._toggle("UHOME", "policy")
    [_, second] = await slack.wait_for("views.publish", count=2)
    toggled = [
        b
        for b in second.decoded("view")["blocks"]
        if b.get("accessory", {}).get("value") == "policy"
    ]
    assert toggled[0]["accessory"]["text"]["text"] == "解除"


async def test_ainews_run_in_http_mode_answers_and_posts_on_demand(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    """The acceptance path: the real `ainews run` process, Slack stand-in as SLACK_API_URL."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{demo_database}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "AINEWS_FETCH_TIMEOUT": "2",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "AINEWS_SLACK_CHANNEL": CHANNEL,
        "SLACK_API_URL": slack.api_url,
        "AINEWS_HTTP_HOST": "127.0.0.1",
        "AINEWS_HTTP_PORT": "0",
        "AINEWS_SLACK_POST_INTERVAL": "0",
        "AINEWS_ADMIN_USERS": "UADMIN",
        "AINEWS_SHUTDOWN_GRACE": "2",
    }
    process = await asyncio.create_subprocess_exec(
        AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        log = b""
        while b"slack listening" not in log:
            log += await asyncio.wait_for(process.stderr.readline(), timeout=20)
        port = int(re.search(rb"port=(\d+)", log).group(1))  # type: ignore[union-attr]
        events_url = f"http://127.0.0.1:{port}/slack/events"
        assert await post_command(events_url, slack, "search 半導体") == 200
        [answer] = await slack.wait_for_response(timeout=10)
        assert "半導体" in json.dumps(answer["blocks"], ensure_ascii=False)
        assert await post_command(events_url, slack, "post-digest", user="UADMIN") == 200
        await slack.wait_for_message(count=2, timeout=20)
        parent = slack.messages_in(CHANNEL)[0]
        assert "AI News" in json.dumps(parent.blocks, ensure_ascii=False)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)
    assert process.returncode == 0
