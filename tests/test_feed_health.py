"""Feed health: states and counters from real polls (the real fetcher against the feed
stand-in), disabling by count and by duration, the notices said once per destination through
the real Slack and Discord clients against their stand-ins, recovery, and re-enabling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, handler_context, open_app, poll_once
from bot.platforms.console import NOTICES_FILE
from bot.platforms.discord import build_discord
from bot.platforms.slack import build_slack
from bot.publishing.chat import ChatCore
from bot.publishing.platform import Platform
from bot.scheduler import JobRunner, announcer_for, run_bot
from handlers.commands import ADMIN_ONLY, handle_command
from handlers.reply import Reply, plain_text
from storage.models import SourceNotice
from storage.notices import (
    claim_source_notice,
    mark_source_notice_posted,
    pending_source_notices,
    release_source_notice,
)
from storage.sources import (
    PollState,
    SourceHealth,
    SourceSpec,
    add_missing_sources,
    enable_source,
    record_poll_states,
    sources_health,
)
from tests.conftest import TEST_FEEDS, make_settings
from tests.fakes.discord_server import (
    BOT_TOKEN,
    FORUM_CHANNEL_ID,
    GUILD_ID,
    TEXT_CHANNEL_ID,
    DiscordServer,
)
from tests.fakes.feed_server import FeedServer, Response
from tests.fakes.slack_server import SlackServer
from tests.test_cli import ainews
from tests.test_run import wait_for
from tests.test_slack import CHANNEL, SECRET

T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # two days after the test feed's entries
HOSTILE = "<!channel> 障害フィード @everyone"


class Clock:
    """A clock the test moves; the app, the poll job and the announcer all read it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _rss() -> bytes:
    return (TEST_FEEDS / "rss2_ja.xml").read_bytes()


async def _health(app: App) -> dict[str, SourceHealth]:
    return {h.source.name: h for h in await app.db.run(sources_health, now=app.clock())}


async def _notices(app: App) -> list[SourceNotice]:
    def query(*, session: Any) -> list[SourceNotice]:
        from sqlmodel import select

        return list(session.exec(select(SourceNotice).order_by(SourceNotice.id)))

    return await app.db.run(query)


async def _command(app: App, text: str, *, admin: bool = False) -> Reply:
    ctx = handler_context(app, platform="test", user_id="U1", is_admin=admin)
    return await handle_command(ctx, text, briefing_config=app.briefing_config)


async def test_states_counters_and_disabling_at_the_failure_count(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.add("/ok.xml", _rss())
    feed_server.status("/down.xml", 503)
    clock = Clock()
    settings = make_settings(tmp_path, AINEWS_DISABLE_AFTER_FAILURES="3", AINEWS_DISABLE_AFTER="0")
    async with open_app(settings, fetching=True, clock=clock) as app:
        specs = [
            SourceSpec(url=feed_server.url("/ok.xml"), name="ok", category="japan"),
            SourceSpec(url=feed_server.url("/down.xml"), name="down", category="infra"),
        ]
        await app.db.run(add_missing_sources, specs=specs)
        reports = []
        for _ in range(2):
            reports.append(await poll_once(app, force=True))
            clock.advance(hours=1)
        health = await _health(app)
        assert health["ok"].status == "ok" and health["down"].status == "backing_off"
        assert health["down"].source.error_count == 2 and health["down"].source.enabled
        assert reports[1].disabled == []  # 2 of 3: not yet

        reports.append(await poll_once(app, force=True))
        assert reports[2].disabled == [{"id": 2, "source": "down", "why": "failures"}]
        # A disabled source is no longer polled, not even by a forced pass.
        clock.advance(hours=1)
        report = await poll_once(app, force=True)
        assert report.sources == 1 and len(feed_server.calls_to("/down.xml")) == 3
        await app.db.run(add_missing_sources, specs=[SourceSpec("http://x.test/", "new", "japan")])
        health = await _health(app)
        ok, down = health["ok"], health["down"]
        assert (ok.status, down.status, health["new"].status) == ("ok", "disabled", "never_polled")
        # 200, then 304 three times: three polls in four answered "not modified".
        assert (ok.source.poll_count, ok.source.not_modified_count) == (4, 3)
        assert ok.not_modified_share == pytest.approx(3 / 4)
        assert ok.source.last_success_at == T0 + timedelta(hours=3)
        assert ok.items_7d == 3  # the feed's three entries, of 22 and 23 November
        assert down.not_modified_share == 0 and down.source.last_success_at is None
        assert down.source.failing_since == T0  # the streak's first failure
        assert down.source.disabled_reason == "failures" and down.source.disabled_at is not None
        assert health["new"].not_modified_share is None

        clock.advance(days=10)  # the entries are now older than the 7 days counted
        assert (await _health(app))["ok"].items_7d == 0

        # Chat: everyone sees the status in our words, admins the stored error and the ids.
        everyone = plain_text(await _command(app, "sources list"))
        assert "down（🖥️ インフラ・ハードウェア） — 停止中（連続3回失敗: HTTP 503）" in everyone
        assert "Service Unavailable" not in everyone and "127.0.0.1" not in everyone
        assert "304 75%" in everyone  # the ok feed's share, as everyone reads it
        admin = plain_text(await _command(app, "sources list", admin=True))
        assert "ID 2 down" in admin and ": HTTP 503 Service Unavailable" in admin
        [notice] = await _notices(app)
        assert (notice.kind, notice.reason, notice.failures) == ("disabled", "failures", 3)


async def test_disabling_after_failing_for_the_configured_time(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.status("/down.xml", 500)
    clock = Clock()
    settings = make_settings(tmp_path, AINEWS_DISABLE_AFTER_FAILURES="0", AINEWS_DISABLE_AFTER="1d")
    async with open_app(settings, fetching=True, clock=clock) as app:
        spec = SourceSpec(url=feed_server.url("/down.xml"), name="down", category="infra")
        await app.db.run(add_missing_sources, specs=[spec])
        for hours in (0, 12, 23):  # failing, but not yet for a day
            clock.now = T0 + timedelta(hours=hours)
            assert (await poll_once(app, force=True)).disabled == []
        assert (await _health(app))["down"].status == "backing_off"
        clock.now = T0 + timedelta(hours=24)
        assert (await poll_once(app, force=True)).disabled[0]["why"] == "duration"
        down = (await _health(app))["down"]
        assert down.status == "disabled" and down.source.error_count == 4
        [notice] = await _notices(app)
        assert (notice.reason, notice.streak_started_at) == ("duration", T0)
        shown = plain_text(await _command(app, "sources list"))
        assert "停止中（1日以上失敗: HTTP 500）" in shown


@dataclass
class Chat:
    slack: SlackServer
    discord: DiscordServer


@pytest.fixture
async def chat(discord_server: DiscordServer) -> AsyncIterator[Chat]:
    async with SlackServer() as slack:
        yield Chat(slack, discord_server)


def chat_settings(tmp_path: Path, chat: Chat, **extra: Any) -> Any:
    extra = {"AINEWS_DISCORD_CHANNEL_ID": TEXT_CHANNEL_ID, **extra}
    return make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'health.sqlite3'}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        AINEWS_SLACK_CHANNEL=CHANNEL,
        SLACK_API_URL=chat.slack.api_url,
        AINEWS_HTTP_HOST="127.0.0.1",
        AINEWS_HTTP_PORT=0,
        AINEWS_SLACK_POST_INTERVAL=0,
        DISCORD_TOKEN=BOT_TOKEN,
        AINEWS_DISCORD_GUILD_ID=GUILD_ID,
        AINEWS_DISCORD_API_URL=chat.discord.api_url,
        AINEWS_DISCORD_GATEWAY_URL=chat.discord.gateway_url,
        AINEWS_ADMIN_USERS="UADMIN",
        **extra,
    )


@asynccontextmanager
async def bot_process(
    settings: Any, clock: Clock, *, slack: bool = True
) -> AsyncIterator[tuple[App, list[Platform]]]:
    """One bot process as `ainews run` builds it: Slack (unless told not) and Discord."""
    async with open_app(settings, fetching=True, clock=clock) as app:
        runner = JobRunner()
        core = ChatCore(app, spawn=runner.spawn)
        platforms = [build_discord(app, core=core, spawn=runner.spawn)]
        if slack:
            platforms.insert(0, build_slack(app, core=core, spawn=runner.spawn))
        for platform in platforms:
            await platform.intake.start_intake()
        try:
            yield app, platforms
        finally:
            await runner.drain(5)
            for platform in reversed(platforms):
                await platform.intake.close()


def _discord_text(chat: Chat) -> str:
    return json.dumps(
        [m.as_json() for m in chat.discord.messages_in(TEXT_CHANNEL_ID)], ensure_ascii=False
    )


async def test_a_disabled_source_is_announced_once_everywhere_across_restarts(
    tmp_path: Path, feed_server: FeedServer, chat: Chat
) -> None:
    feed_server.status("/down.xml", 404)
    clock = Clock()
    settings = chat_settings(tmp_path, chat, AINEWS_DISABLE_AFTER_FAILURES="2")
    async with bot_process(settings, clock) as (app, platforms):
        spec = SourceSpec(url=feed_server.url("/down.xml"), name=HOSTILE, category="infra")
        await app.db.run(add_missing_sources, specs=[spec])
        announcer = announcer_for(app, platforms)
        await poll_once(app, force=True)
        assert await announcer.announce() == 0  # failing once is no news
        clock.advance(hours=1)
        chat.slack.fail("chat.postMessage", "internal_error")  # Slack is down for one call
        await poll_once(app, force=True)
        assert await announcer.announce() == 2  # the console archive and Discord
        assert chat.slack.messages_in(CHANNEL) == []
        assert await announcer.announce() == 1  # Slack's, retried after the next poll
        assert await announcer.announce() == 0
        # A second process sharing the database finds nothing left to say.
        assert await announcer_for(app, platforms).announce() == 0

    async with bot_process(settings, clock) as (app, platforms):  # a restart
        assert await announcer_for(app, platforms).announce() == 0

    [posted] = chat.slack.messages_in(CHANNEL)
    assert posted.thread_ts is None  # a channel message, not in a briefing thread
    slack_text = json.dumps(posted.blocks, ensure_ascii=False)
    assert "巡回を停止しました" in slack_text and "連続2回取得に失敗した" in slack_text
    assert "最後のエラー: HTTP 404" in slack_text
    assert "/ainews sources enable 1" in slack_text and "ainews sources enable 1" in slack_text
    assert "<!channel>" not in slack_text and "障害フィード" in slack_text
    assert feed_server.url("/down.xml") not in slack_text  # a loopback feed: named, not linked

    assert len(chat.discord.messages_in(TEXT_CHANNEL_ID)) == 1
    discord_text = _discord_text(chat)
    assert "巡回を停止しました" in discord_text and "sources enable 1" in discord_text
    assert "@everyone" not in discord_text and "<!channel>" not in discord_text
    [message] = chat.discord.messages_in(TEXT_CHANNEL_ID)
    assert message.allowed_mentions is not None and message.allowed_mentions.get("parse") == []

    archive = (settings.briefings_dir / NOTICES_FILE).read_text(encoding="utf-8")
    assert archive.count("ソースの巡回を停止しました") == 1 and "sources enable 1" in archive


async def test_recovery_is_said_once_and_a_single_failure_not_at_all(
    tmp_path: Path, feed_server: FeedServer, chat: Chat
) -> None:
    failing = [Response(503, content_type=None)] * 3
    feed_server.sequence("/flaky.xml", [*failing, Response(200, _rss())])
    feed_server.sequence("/blip.xml", [Response(503, content_type=None), Response(200, _rss())])
    clock = Clock()
    async with bot_process(chat_settings(tmp_path, chat), clock) as (app, platforms):
        specs = [
            SourceSpec(url=feed_server.url("/flaky.xml"), name="flaky", category="infra"),
            SourceSpec(url=feed_server.url("/blip.xml"), name="blip", category="infra"),
        ]
        await app.db.run(add_missing_sources, specs=specs)
        announcer = announcer_for(app, platforms)
        recovered = []
        for _ in range(4):
            report = await poll_once(app, force=True)
            recovered += report.recovered
            assert await announcer.announce() == (3 if report.recovered else 0)
            clock.advance(hours=1)
        assert recovered == [{"id": 1, "source": "flaky"}]
        assert await announcer.announce() == 0
        await poll_once(app, force=True)  # still fine: nothing more to say
        assert await announcer.announce() == 0
        assert (await _health(app))["flaky"].status == "ok"
    [posted] = chat.slack.messages_in(CHANNEL)
    text = json.dumps(posted.blocks, ensure_ascii=False)
    assert "ソースが復旧しました" in text and "flaky" in text and "連続3回の失敗の後" in text
    assert "blip" not in text
    assert len(chat.discord.messages_in(TEXT_CHANNEL_ID)) == 1


async def test_a_discord_forum_channel_gets_the_notice_as_a_post_of_its_own(
    tmp_path: Path, feed_server: FeedServer, chat: Chat
) -> None:
    feed_server.status("/down.xml", 410)
    settings = chat_settings(
        tmp_path,
        chat,
        AINEWS_DISABLE_AFTER_FAILURES="1",
        AINEWS_DISCORD_CHANNEL_ID=FORUM_CHANNEL_ID,
    )
    async with bot_process(settings, Clock(), slack=False) as (app, platforms):
        spec = SourceSpec(url=feed_server.url("/down.xml"), name="down", category="infra")
        await app.db.run(add_missing_sources, specs=[spec])
        await poll_once(app, force=True)
        assert await announcer_for(app, platforms).announce() == 2  # the archive and the forum
    [post] = [m for m in chat.discord.messages if m.parent_id == FORUM_CHANNEL_ID]
    text = json.dumps(post.as_json(), ensure_ascii=False)
    assert "down は連続1回取得に失敗したため" in text and "HTTP 410" in text


async def test_enable_from_chat_is_for_admins_and_resets_the_counters(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.status("/down.xml", 503)
    clock = Clock()
    settings = make_settings(tmp_path, AINEWS_DISABLE_AFTER_FAILURES="1")
    async with open_app(settings, fetching=True, clock=clock) as app:
        spec = SourceSpec(url=feed_server.url("/down.xml"), name="down", category="infra")
        await app.db.run(add_missing_sources, specs=[spec])
        await poll_once(app, force=True)
        assert (await _health(app))["down"].status == "disabled"

        refused = await _command(app, "sources enable 1")
        assert refused.error and refused.title == ADMIN_ONLY
        assert (await _health(app))["down"].status == "disabled"
        missing = await _command(app, "sources enable 99", admin=True)
        assert missing.error and "99 というソースはありません" in missing.title
        bare = await _command(app, "sources enable", admin=True)
        assert bare.error and "sources enable <URL>" in plain_text(bare)

        enabled = await _command(app, f"sources enable {feed_server.url('/down.xml')}", admin=True)
        assert not enabled.error and enabled.title == "ソースの巡回を再開しました"
        down = (await _health(app))["down"]
        assert down.status == "never_polled"
        assert (down.source.poll_count, down.source.error_count, down.source.failing_since) == (
            0,
            0,
            None,
        )
        # Due again at once, and counting from zero.
        feed_server.add("/down.xml", _rss())
        clock.advance(minutes=1)
        assert (await poll_once(app)).sources == 1
        assert (await _health(app))["down"].status == "ok"
        help_text = plain_text(await _command(app, "help"))
        assert "/ainews sources enable <URL|ID>" in help_text


async def test_the_cli_lists_health_disables_and_enables(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.add("/ok.xml", _rss())
    feed_server.status("/down.xml", 503)
    env = {"AINEWS_DISABLE_AFTER_FAILURES": "2", "COLUMNS": "300"}
    opml = tmp_path / "feeds.opml"
    outlines = "".join(
        f'<outline type="rss" text="{name}" xmlUrl="{feed_server.url(path)}" category="infra"/>'
        for name, path in (("ok", "/ok.xml"), ("down", "/down.xml"))
    )
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>{outlines}</body></opml>')
    imported = await ainews(tmp_path, "sources", "import", str(opml), **env)
    assert imported.code == 0, imported.err
    await ainews(tmp_path, "poll", "--force", **env)
    second = await ainews(tmp_path, "poll", "--force", **env)
    assert second.code == 0, second.err
    assert "disabled down after failures: `ainews sources enable 2` polls it again" in second.err

    listed = json.loads((await ainews(tmp_path, "sources", "list", "--json", **env)).out)
    ok, down = listed
    assert (ok["status"], ok["not_modified_share"], ok["poll_count"]) == ("ok", 0.5, 2)
    assert (down["status"], down["error_count"], down["disabled_reason"]) == (
        "disabled",
        2,
        "failures",
    )
    assert {"items_7d", "last_success_at", "next_poll_at", "last_error"} <= set(down)
    table = await ainews(tmp_path, "sources", "list", **env)
    assert table.code == 0 and "last success" in table.out and "304" in table.out
    assert "disabled (2 failures)" in table.out and "HTTP 503 Service Unavailable" in table.out

    # Enabling is the storage function the chat test checks in detail (counters reset).
    enabled = await ainews(tmp_path, "sources", "enable", "2", **env)
    assert enabled.code == 0, enabled.err
    assert f"enabled {feed_server.url('/down.xml')}: polled at the next pass" in enabled.err


async def test_the_scheduler_announces_after_each_poll(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.status("/down.xml", 503)
    settings = make_settings(
        tmp_path, AINEWS_DISABLE_AFTER_FAILURES="1", AINEWS_BRIEFING_TIME="20:00"
    )
    stop = asyncio.Event()
    async with open_app(settings, fetching=True, clock=Clock()) as app:
        spec = SourceSpec(url=feed_server.url("/down.xml"), name="down", category="infra")
        await app.db.run(add_missing_sources, specs=[spec])
        bot = asyncio.create_task(run_bot(app, stop=stop))
        archive = settings.briefings_dir / NOTICES_FILE
        await wait_for(archive.exists)
        stop.set()
        await asyncio.wait_for(bot, timeout=30)
    assert "down は連続1回取得に失敗したため" in archive.read_text(encoding="utf-8")


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    database = {}
    if request.param == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    async with open_app(make_settings(tmp_path, **database), clock=Clock()) as app:
        yield app


async def test_two_processes_store_one_notice_and_post_it_once(database_app: App) -> None:
    """The same transition recorded twice (two processes polled the same source) is one
    notice; of two claims one wins, a stale unposted claim is taken over, a posted one never."""
    app = database_app
    spec = SourceSpec(url="https://feeds.example.org/rss", name="feed", category="infra")
    await app.db.run(add_missing_sources, specs=[spec])
    failed = PollState(
        source_id=1,
        polled_at=T0 + timedelta(days=1),
        next_poll_at=T0 + timedelta(days=2),
        status=503,
        error_count=10,
        error="HTTP 503 Service Unavailable",
        failing_since=T0,
        disable="failures",
    )
    for _ in range(2):
        await app.db.run(record_poll_states, states=[failed])
    [notice] = await _notices(app)
    assert (notice.kind, notice.failures, notice.streak_started_at) == ("disabled", 10, T0)

    now = T0 + timedelta(days=1)
    pending = await app.db.run(pending_source_notices, destination="slack:C1", since=T0)
    assert [p.notice.id for p in pending] == [notice.id]

    def claim(at: datetime, destination: str = "slack:C1") -> Any:
        return app.db.run(
            claim_source_notice,
            notice_id=notice.id,
            destination=destination,
            now=at,
            lease_seconds=60,
        )

    assert await claim(now) is True
    assert await claim(now + timedelta(seconds=30)) is False  # live elsewhere
    assert await claim(now, "discord:2") is True  # each destination has its own claim
    assert await claim(now + timedelta(seconds=61)) is True  # its poster died: taken over
    await app.db.run(
        mark_source_notice_posted,
        notice_id=notice.id,
        destination="slack:C1",
        message_ref="1.2",
        now=now,
    )
    assert await claim(now + timedelta(hours=1)) is False
    assert await app.db.run(pending_source_notices, destination="slack:C1", since=T0) == []
    await app.db.run(release_source_notice, notice_id=notice.id, destination="discord:2")
    assert len(await app.db.run(pending_source_notices, destination="discord:2", since=T0)) == 1
    # Enabled again before Discord heard of it: the notice is moot there.
    await app.db.run(enable_source, url_or_id="1")
    assert await app.db.run(pending_source_notices, destination="discord:2", since=T0) == []

    back = PollState(
        source_id=1,
        polled_at=T0 + timedelta(days=3),
        next_poll_at=T0 + timedelta(days=3, hours=1),
        status=200,
        recovered_after=4,
        failing_since=None,
    )
    for _ in range(2):
        await app.db.run(record_poll_states, states=[back])
    kinds = [n.kind for n in await _notices(app)]
    assert kinds == ["disabled", "recovered"]  # one of each
