"""The Discord adapter against the Discord stand-in: the real discord.py client over real HTTP
and WebSocket on 127.0.0.1, reached through AINEWS_DISCORD_API_URL / _GATEWAY_URL, nothing
monkeypatched."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import App, briefing_for, open_app
from bot.platforms.discord import DiscordBot, build_discord
from bot.publishing.chat import ChatCore
from bot.publishing.platform import Platform
from bot.render.discord import MAX_EMBEDS, MAX_TOTAL, embed_size
from bot.scheduler import JobRunner
from handlers.filters import SearchRequest
from handlers.search import find
from storage.subscriptions import subscribe
from storage.usage import record_usage
from tests.conftest import (
    DEMO_DAY,
    demo_clock,
    make_settings,
    matching_urls,
    redate_for_a_live_run,
)
from tests.fakes.discord_server import (
    BOT_TOKEN,
    EPHEMERAL,
    FORUM_CHANNEL_ID,
    GUILD_ID,
    PERMISSIONS_MANAGER,
    TEXT_CHANNEL_ID,
    USER_ID,
    CallbackType,
    DiscordServer,
    InteractionResponse,
    command_interaction,
    component_interaction,
)
from tests.fakes.slack_server import SlackServer
from tests.test_cli import AINEWS

MESSAGES = "POST /channels/{channel_id}/messages"


@pytest.fixture
def fake(discord_server: DiscordServer) -> DiscordServer:
    return discord_server


def discord_settings(
    tmp_path: Path,
    database: Path,
    fake: DiscordServer,
    *,
    channel: int = TEXT_CHANNEL_ID,
    **extra: Any,
) -> Any:
    return make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        DISCORD_TOKEN=BOT_TOKEN,
        AINEWS_DISCORD_CHANNEL_ID=channel,
        AINEWS_DISCORD_GUILD_ID=GUILD_ID,
        AINEWS_DISCORD_API_URL=fake.api_url,
        AINEWS_DISCORD_GATEWAY_URL=fake.gateway_url,
        AINEWS_BRIEFING_LEASE=0,
        **extra,
    )


@dataclass
class Running:
    app: App
    platform: Platform
    runner: JobRunner
    fake: DiscordServer

    @property
    def bot(self) -> DiscordBot:
        assert isinstance(self.platform.intake, DiscordBot)
        return self.platform.intake

    async def command(self, path: str, *, every_session: bool = False, **options: Any) -> str:
        """Send `/ainews <path> options…` over the gateway (to every connected process with
        `every_session`); returns the interaction token."""
        permissions = options.pop("_permissions", None)
        extra = {"permissions": permissions} if permissions is not None else {}
        synced = self.fake.command("ainews", GUILD_ID)
        payload = command_interaction(synced, path, options, **extra)
        return await self.fake.send_interaction(payload, every_session=every_session)

    async def answer(self, token: str, *, count: int = 2) -> list[InteractionResponse]:
        """The defer and the follow-up(s) of one interaction."""
        return await self.fake.wait_for_interaction_response(token, count=count, timeout=10)


@asynccontextmanager
async def discord_running(settings: Any, fake: DiscordServer) -> AsyncIterator[Running]:
    async with open_app(settings, clock=demo_clock) as app:
        runner = JobRunner()
        platform = build_discord(app, core=ChatCore(app, spawn=runner.spawn), spawn=runner.spawn)
        await platform.intake.start_intake()
        try:
            yield Running(app, platform, runner, fake)
        finally:
            await runner.drain(5)
            await platform.intake.close()


@pytest.fixture
async def running(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> AsyncIterator[Running]:
    async with discord_running(discord_settings(tmp_path, demo_database, fake), fake) as running:
        yield running


def text_of(response: InteractionResponse) -> str:
    return json.dumps(response.payload, ensure_ascii=False)


def custom_ids(response: InteractionResponse) -> dict[str, str]:
    """Button label → custom_id."""
    return {
        c["label"]: c["custom_id"]
        for row in response.components
        for c in row.get("components", [])
        if c.get("type") == 2
    }


def article_urls(response: InteractionResponse) -> list[str]:
    return re.findall(r"\]\(<?(https?://[^)>\s]+)>?\)", text_of(response))


async def test_connects_without_privileged_intents_and_syncs_the_command_group(
    running: Running, fake: DiscordServer
) -> None:
    [session] = fake.gateway_sessions
    assert session.intents is not None and session.intents & ((1 << 1) | (1 << 15)) == 0
    synced = fake.command("ainews", GUILD_ID)
    subcommands = {o["name"] for o in synced["options"]}
    assert {"search", "ask", "digest", "subscribe", "unsubscribe", "subscriptions"} <= subcommands
    assert {"sources", "post-digest", "help"} <= subcommands


async def test_search_is_deferred_then_pages_through_every_match(
    running: Running, fake: DiscordServer
) -> None:
    from bot.app import handler_context

    every = await find(handler_context(running.app), SearchRequest(text="AI", limit=1000))
    assert every.total > 10
    pages = -(-every.total // 10)
    token = await running.command("search", query="AI")
    defer, first = await running.answer(token)
    assert defer.kind == "callback" and defer.type == CallbackType.DEFERRED_MESSAGE
    assert defer.ephemeral  # deferred as ephemeral, answered by a follow-up
    assert first.kind == "followup" and first.ephemeral
    assert f"1/{pages}" in text_of(first) and f"全{every.total}件" in text_of(first)
    seen = article_urls(first)
    assert len(seen) == 10
    assert "前へ" not in custom_ids(first)
    current = first
    for page in range(2, pages + 1):
        message = fake.message(current.message_id) if current.message_id else None
        assert message is not None
        click = component_interaction(custom_ids(current)["次へ"], message)
        click_token = await fake.send_interaction(click)
        ack, edit = await fake.wait_for_interaction_response(click_token, count=2, timeout=10)
        assert ack.type == CallbackType.DEFERRED_UPDATE and edit.kind == "edit"
        assert f"{page}/{pages}" in text_of(edit)
        seen += article_urls(edit)
        current = InteractionResponse(
            token=edit.token,
            kind="edit",
            payload=edit.payload,
            message_id=message.id,
        )
    assert "次へ" not in custom_ids(current) and "前へ" in custom_ids(current)
    assert sorted(seen) == sorted(h.url for h in every.hits)
    assert all(len(c) <= 100 for c in custom_ids(first).values())


async def test_bad_options_get_a_reply_that_says_what_is_valid(running: Running) -> None:
    bad_since = await running.answer(await running.command("search", query="AI", since="lastweek"))
    assert "7d" in text_of(bad_since[-1]) and "lastweek" in text_of(bad_since[-1])
    bad_category = await running.answer(await running.command("subscribe", category="weather"))
    assert "weather" in text_of(bad_category[-1]) and "policy" in text_of(bad_category[-1])
    bad_date = await running.answer(await running.command("digest", date="yesterday"))
    assert "YYYY-MM-DD" in text_of(bad_date[-1])


async def test_category_autocomplete_offers_slug_and_japanese_label(
    running: Running, fake: DiscordServer
) -> None:
    from tests.fakes.discord_server import autocomplete_interaction

    synced = fake.command("ainews", GUILD_ID)
    payload = autocomplete_interaction(
        synced, "subscribe", {"category": "規制"}, focused="category"
    )
    token = await fake.send_interaction(payload)
    [answer] = await fake.wait_for_interaction_response(token, timeout=10)
    choices = answer.payload["choices"]
    assert {"name": "📜 規制・政策・倫理（policy）", "value": "policy"} in choices


async def test_admin_commands_need_manage_server_or_the_admin_list(
    running: Running, fake: DiscordServer
) -> None:
    refused = await running.answer(
        await running.command("sources add", url="https://feeds.example.org/rss")
    )
    assert "管理者だけ" in text_of(refused[-1])
    refused = await running.answer(await running.command("post-digest"))
    assert "管理者だけ" in text_of(refused[-1])
    allowed = await running.answer(
        await running.command(
            "sources add", url="https://feeds.example.org/rss", _permissions=PERMISSIONS_MANAGER
        )
    )
    assert "追加しました" in text_of(allowed[-1])
    assert fake.messages_in(TEXT_CHANNEL_ID) == []


async def test_briefing_thread_of_embeds_within_discord_limits(
    running: Running, fake: DiscordServer
) -> None:
    briefing = await briefing_for(running.app, DEMO_DAY)
    assert await running.platform.thread.publish(briefing) is True
    assert await running.platform.thread.publish(briefing) is False  # once per channel and day
    [parent] = fake.messages_in(TEXT_CHANNEL_ID)
    assert parent.thread_id is not None
    assert "AI News - 2026-11-23" in json.dumps(parent.embeds, ensure_ascii=False)
    items = fake.messages_in(parent.thread_id)
    titles = [m.embeds[0]["title"] for m in items]
    assert [int(t.split(".")[0]) for t in titles] == list(range(1, 21))
    assert fake.violations == []
    for message in [parent, *items]:
        assert message.allowed_mentions == {"parse": []}
        assert 1 <= len(message.embeds) <= MAX_EMBEDS
        embeds = [discord.Embed.from_dict(e) for e in message.embeds]
        assert sum(embed_size(e) for e in embeds) <= MAX_TOTAL


async def test_a_forum_channel_gets_a_post_with_the_items_inside(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    settings = discord_settings(tmp_path, demo_database, fake, channel=FORUM_CHANNEL_ID)
    async with discord_running(settings, fake) as running:
        assert await running.platform.thread.publish(await briefing_for(running.app, DEMO_DAY))
    [post] = {m.channel_id for m in fake.messages if m.parent_id == FORUM_CHANNEL_ID}
    assert fake.messages_in(FORUM_CHANNEL_ID) == []  # everything is inside the one post
    thread = fake.messages_in(post)
    assert thread[0].id == post  # the post's starter message is the parent
    assert "AI News - 2026-11-23" in json.dumps(thread[0].embeds, ensure_ascii=False)
    assert len(thread) == 21 and fake.violations == []


async def test_rate_limits_during_the_thread_lose_and_double_nothing(
    running: Running, fake: DiscordServer
) -> None:
    fake.rate_limit(MESSAGES, times=3, retry_after=0.05)
    fake.rate_limit(MESSAGES, times=1, retry_after=0.05, global_=True)
    assert await running.platform.thread.publish(await briefing_for(running.app, DEMO_DAY))
    [parent] = fake.messages_in(TEXT_CHANNEL_ID)
    assert parent.thread_id is not None
    items = fake.messages_in(parent.thread_id)
    assert len(items) == 20 and len({m.embeds[0]["title"] for m in items}) == 20
    limited = [c for c in fake.calls_to(MESSAGES) if c.status == 429]
    assert len(limited) == 4


async def test_a_restart_mid_thread_resumes_without_duplicates(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    settings = discord_settings(tmp_path, demo_database, fake)
    async with discord_running(settings, fake) as first:
        briefing = await briefing_for(first.app, DEMO_DAY)
        task = asyncio.create_task(first.platform.thread.publish(briefing))
        await fake.wait_for_message(count=8, timeout=10)
        fake.fail(MESSAGES, status=403, code=50013, times=None)  # "crash": nothing gets through
        with pytest.raises(discord.HTTPException):
            await task
    fake.clear_faults()
    async with discord_running(settings, fake) as second:
        assert await second.platform.thread.publish(await briefing_for(second.app, DEMO_DAY))
    parents = [m for m in fake.messages_in(TEXT_CHANNEL_ID) if m.thread_id is not None]
    assert len(parents) == 1
    items = fake.messages_in(parents[0].thread_id or 0)
    titles = [m.embeds[0]["title"] for m in items]
    assert len(titles) == 20 and len(set(titles)) == 20
    assert fake.calls_to("PATCH /channels/{channel_id}/messages/{message_id}")  # parent redrawn


async def test_dm_bundles_and_closed_dms(running: Running, fake: DiscordServer) -> None:
    from tests.test_slack import _add_and_summarise

    closed_user = USER_ID + 1
    db = running.app.db
    for user in (USER_ID, closed_user):
        await db.run(subscribe, platform="discord", user_id=str(user), categories=["agents"])
    fake.close_dms(closed_user)
    await _add_and_summarise(running.app, count=1)
    assert await running.platform.fanout.send() == 1
    assert await running.platform.fanout.send() == 0  # nothing twice, closed user not retried
    dms = fake.messages_in(fake.dm_channel(USER_ID).id)
    assert len(dms) == 1
    assert "購読の新着" in json.dumps([dms[0].content, dms[0].embeds], ensure_ascii=False)
    assert fake.messages_in(fake.dm_channel(closed_user).id) == []
    told = await running.answer(await running.command("subscriptions"))  # not the closed user
    assert "DMでお送りできませんでした" not in text_of(told[-1])
    payload = command_interaction(
        fake.command("ainews", GUILD_ID), "subscriptions", user_id=closed_user
    )
    first = await fake.wait_for_interaction_response(await fake.send_interaction(payload), count=2)
    assert "DMでお送りできませんでした" in text_of(first[-1])
    payload = command_interaction(fake.command("ainews", GUILD_ID), "help", user_id=closed_user)
    again = await fake.wait_for_interaction_response(await fake.send_interaction(payload), count=2)
    assert "DMでお送りできませんでした" not in text_of(again[-1])  # told once


async def test_a_hostile_article_is_posted_inert(running: Running, fake: DiscordServer) -> None:
    [*_, answer] = await running.answer(await running.command("search", query="calendar invite"))
    text = text_of(answer)
    assert "ignore all previous instructions" in text.lower()
    assert "@everyone" not in text and "<!channel>" not in text
    assert answer.payload.get("allowed_mentions") == {"parse": []}
    briefing = await briefing_for(running.app, DEMO_DAY)
    await running.platform.thread.publish(briefing)
    posted = json.dumps([m.embeds for m in fake.messages], ensure_ascii=False)
    assert "@everyone" not in posted and "<@&" not in posted


async def test_share_posts_the_stored_reply_in_the_channel(
    running: Running, fake: DiscordServer
) -> None:
    [*_, answer] = await running.answer(await running.command("search", query="規制"))
    assert answer.ephemeral
    message = fake.message(answer.message_id or 0)
    token = await fake.send_interaction(
        component_interaction(custom_ids(answer)["チャンネルに共有"], message)
    )
    await fake.wait_for_interaction_response(token, timeout=10)
    posted = await fake.wait_for_message(count=2, timeout=10)
    header, body = posted[0], posted[1]
    assert header.content == f"<@{USER_ID}> が共有しました"
    assert header.allowed_mentions == {"parse": []}
    assert article_urls(answer) == re.findall(
        r"\]\(<?(https?://[^)>\s]+)>?\)", json.dumps(body.embeds, ensure_ascii=False)
    )
    assert body.flags & EPHEMERAL == 0


async def test_slack_and_discord_in_one_ainews_run(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    """`ainews run` as a process with both tokens: a search answered on each platform, and
    `post-digest` posting a thread on each."""
    from storage.clock import utcnow
    from tests.test_slack import CHANNEL, live_run_env, post_command
    from tests.test_slack import article_urls as slack_article_urls

    async with open_app(make_settings(tmp_path)) as app:
        config = app.briefing_config
    day, briefing_time = redate_for_a_live_run(
        f"sqlite:///{demo_database}", config=config, now=utcnow()
    )
    expected = await matching_urls(tmp_path, demo_database, "半導体")
    assert 0 < len(expected) <= 10  # one page
    async with SlackServer() as slack:
        env = live_run_env(
            tmp_path,
            demo_database,
            slack,
            briefing_time=briefing_time,
            admins=f"UADMIN,{USER_ID}",
        ) | {
            "DISCORD_TOKEN": BOT_TOKEN,
            "AINEWS_DISCORD_CHANNEL_ID": str(TEXT_CHANNEL_ID),
            "AINEWS_DISCORD_GUILD_ID": str(GUILD_ID),
            "AINEWS_DISCORD_API_URL": fake.api_url,
            "AINEWS_DISCORD_GATEWAY_URL": fake.gateway_url,
        }
        process = await asyncio.create_subprocess_exec(
            AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        log = b""
        try:
            while b"ainews running" not in log:
                log += await asyncio.wait_for(process.stderr.readline(), timeout=30)
            assert b"platforms=slack,discord" in log
            port = int(re.search(rb"port=(\d+)", log).group(1))  # type: ignore[union-attr]
            events_url = f"http://127.0.0.1:{port}/slack/events"
            assert await post_command(events_url, slack, "search 半導体") == 200
            [slack_answer] = await slack.wait_for_response(timeout=10)
            assert sorted(slack_article_urls(slack_answer)) == expected
            synced = fake.command("ainews", GUILD_ID)
            token = await fake.send_interaction(
                command_interaction(synced, "search", {"query": "半導体"})
            )
            _, discord_answer = await fake.wait_for_interaction_response(token, count=2, timeout=10)
            assert sorted(article_urls(discord_answer)) == expected
            await post_command(events_url, slack, "post-digest", user="UADMIN")
            token = await fake.send_interaction(command_interaction(synced, "post-digest"))
            await slack.wait_for_message(count=21, timeout=30)
            await fake.wait_for_message(count=21, channel=None, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
            await asyncio.wait_for(process.wait(), timeout=30)
    assert process.returncode == 0, (log + rest).decode()
    assert b"Traceback" not in rest, (log + rest).decode()
    [parent] = [m for m in fake.messages_in(TEXT_CHANNEL_ID) if m.thread_id]
    assert f"AI News - {day.isoformat()}" in json.dumps(parent.embeds, ensure_ascii=False)
    assert len(fake.messages_in(parent.thread_id or 0)) == 20
    assert len([m for m in slack.messages_in(CHANNEL) if m.thread_ts]) == 20


async def test_the_scheduled_briefing_reaches_every_destination_in_one_run(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    """`run_bot` with Slack and Discord enabled, started on the demo clock after the briefing
    time: the catch-up run builds the day's briefing once and publishes it to the file, the
    Slack channel and the Discord channel."""
    from bot.scheduler import run_bot
    from storage.briefings import daily_briefing
    from tests.test_slack import CHANNEL, SECRET

    async with SlackServer() as slack:
        settings = discord_settings(
            tmp_path,
            demo_database,
            fake,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET=SECRET,
            AINEWS_SLACK_CHANNEL=CHANNEL,
            SLACK_API_URL=slack.api_url,
            AINEWS_HTTP_HOST="127.0.0.1",
            AINEWS_HTTP_PORT=0,
            AINEWS_SLACK_POST_INTERVAL=0,
            AINEWS_BRIEFING_TIME="11:00",  # DEMO_NOW is 12:00: within the catch-up grace
        )
        stop = asyncio.Event()
        async with open_app(settings, fetching=True, clock=demo_clock) as app:
            run = asyncio.create_task(run_bot(app, stop=stop))
            await slack.wait_for_message(count=21, timeout=30)
            await fake.wait_for_message(count=21, timeout=30)
            briefing_file = settings.briefings_dir / f"{DEMO_DAY.isoformat()}.md"
            while not briefing_file.exists():
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.wait_for(run, timeout=30)
            stored = await app.db.run(daily_briefing, day=DEMO_DAY)
    assert stored is not None and len(stored["sections"]) > 0
    assert briefing_file.read_text(encoding="utf-8").startswith(f"# AI News - {DEMO_DAY}")
    [parent] = [m for m in fake.messages_in(TEXT_CHANNEL_ID) if m.thread_id]
    assert len(fake.messages_in(parent.thread_id or 0)) == 20
    assert len([m for m in slack.messages_in(CHANNEL) if m.thread_ts]) == 20


async def test_a_refused_token_stops_ainews_run_with_one_line(
    tmp_path: Path, fake: DiscordServer
) -> None:
    fake.valid_tokens = {"the-real-token"}
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bad-token.sqlite3'}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "DISCORD_TOKEN": "not-the-token",
        "AINEWS_DISCORD_CHANNEL_ID": str(TEXT_CHANNEL_ID),
        "AINEWS_DISCORD_API_URL": fake.api_url,
        "AINEWS_DISCORD_GATEWAY_URL": fake.gateway_url,
    }
    process = await asyncio.create_subprocess_exec(
        AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    assert b"DISCORD_TOKEN: Discord refused the token" in err
    assert b"Traceback" not in err and b"not-the-token" not in err


async def test_after_intake_stops_a_command_is_told_to_retry(running: Running) -> None:
    await running.bot.stop_intake()
    [reply] = await running.answer(await running.command("search", query="AI"), count=1)
    assert reply.type == CallbackType.MESSAGE and reply.ephemeral
    assert "再起動中" in text_of(reply)


CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"


@asynccontextmanager
async def two_replicas(
    tmp_path: Path, database: Path, fake: DiscordServer
) -> AsyncIterator[tuple[Running, Running]]:
    """Two processes' worth of the bot on one database and one bot token, both connected."""
    settings = discord_settings(tmp_path, database, fake)
    async with discord_running(settings, fake) as one, discord_running(settings, fake) as two:
        await fake.wait_for_ready(count=2)
        yield one, two


async def test_replicas_on_one_bot_token_answer_each_command_once(
    tmp_path: Path, demo_database: Path, fake: DiscordServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Both replicas receive the interaction; Discord accepts the first acknowledgement only
    (40060 for the second), and only its winner searches and answers. The other stays quiet:
    no "Ignoring exception in command" error in the log."""
    async with two_replicas(tmp_path, demo_database, fake) as (one, two):
        token = await one.command("search", query="AI", every_session=True)
        calls = await fake.wait_for(CALLBACK, count=2)
        await one.runner.drain(5)
        await two.runner.drain(5)

    assert sorted(c.status or 0 for c in calls) == [200, 400]
    assert [r.kind for r in fake.responses_to(token)] == ["callback", "followup"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_a_stopping_replica_leaves_the_answer_to_the_running_one(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    async with two_replicas(tmp_path, demo_database, fake) as (one, two):
        await two.bot.stop_intake()  # a rolling restart: `two` is on its way out
        token = await one.command("search", query="AI", every_session=True)
        await fake.wait_for(CALLBACK, count=2, timeout=10)
        await one.runner.drain(5)

    responses = fake.responses_to(token)
    assert [r.kind for r in responses] == ["callback", "followup"]
    assert "再起動中" not in text_of(responses[1]) and "AI" in text_of(responses[1])


async def test_discord_stats_is_a_typed_subcommand_answered_privately(running: Running) -> None:
    synced = running.fake.command("ainews", GUILD_ID)
    assert "stats" in {o["name"] for o in synced["options"]}
    await running.app.db.run(
        record_usage,
        day=DEMO_DAY,
        model="gpt-4o",
        purpose="ask",
        prompt_tokens=4_000,
        completion_tokens=1_000,
    )
    answer = await running.answer(await running.command("stats"))
    shown = text_of(answer[-1])
    assert "利用状況（2026-11-23 時点）" in shown
    assert "今日（2026-11-23）**: 5,000 トークン" in shown
    assert "推定 $0.0200" in shown  # 4,000 × $2.50 + 1,000 × $10.00 per 1M
    assert answer[-1].payload.get("flags", 0) & EPHEMERAL
