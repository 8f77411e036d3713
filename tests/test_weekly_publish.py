"""The weekly report as a thread: once per destination and week across processes, resumed after
a crash mid-thread, beside (never instead of) the daily briefing of the same Monday; the
scheduled job; and `ainews weekly` on the demo's data."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import App, briefing_for
from bot.platforms.console import ConsolePublisher
from bot.publishing.destinations import Destinations
from jobs.weekly import stored_weekly
from jobs.weekly_model import WeeklyReport
from tests.conftest import DEMO_DAY, DEMO_NOW, demo_clock, make_settings
from tests.fakes.discord_server import GUILD_ID, TEXT_CHANNEL_ID, DiscordServer
from tests.fakes.slack_server import SlackServer
from tests.test_cli import ainews
from tests.test_discord import discord_running, discord_settings, text_of
from tests.test_slack import CHANNEL, slack_running, slack_settings
from tests.test_weekly import WEEK, check_weekly_format


@pytest.fixture
async def slack_server() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


async def demo_week_report(app: App) -> WeeklyReport:
    """The demo week's report, stored (built without a model) on the demo clock."""
    report = await stored_weekly(
        db=app.db, week=WEEK, config=app.weekly_config, taxonomy=app.taxonomy, llm=None,
        now=DEMO_NOW,
    )  # fmt: skip
    assert report is not None
    return report


async def test_weekly_thread_is_posted_once_per_destination_and_week(
    tmp_path: Path, demo_database: Path, slack_server: SlackServer
) -> None:
    slack = slack_server
    settings = slack_settings(tmp_path, demo_database, slack)
    out = io.StringIO()
    async with slack_running(settings) as first:
        app = first.app
        report = await demo_week_report(app)
        console = ConsolePublisher(
            db=app.db, directory=settings.briefings_dir, reports=settings.reports_dir, out=out
        )
        destinations = Destinations([console, first.platform.thread], db=app.db, tz=settings.tz)
        assert await destinations.publish_weekly_all(report) == {
            "console": True,
            f"slack:{CHANNEL}": True,
        }
        # The daily briefing claimed for the week's Monday is another document.
        daily = replace(await briefing_for(app, DEMO_DAY), day=report.start)
        assert await first.platform.thread.publish(daily) is True
    posted = len(slack.messages_in(CHANNEL))
    assert posted == (1 + 25) + (1 + 20)
    async with slack_running(settings) as second:  # a restart, or a second process
        assert await second.platform.thread.publish_weekly(report) is False
        console = ConsolePublisher(
            db=second.app.db, directory=settings.briefings_dir, out=io.StringIO()
        )
        assert await console.publish_weekly(report) is False
    assert len(slack.messages_in(CHANNEL)) == posted

    messages = slack.messages_in(CHANNEL)
    parent, replies = messages[0], messages[1:26]
    assert parent.thread_ts is None
    assert "AI・機械学習 Weekly Report 2026-W47" in str(parent.blocks)
    assert "今週の動向（自動抽出）" in str(parent.blocks)
    assert all(r.thread_ts == parent.ts for r in replies)
    numbers = [str(r.blocks[0]["text"]["text"]).strip("*")[:3] for r in replies]
    assert numbers == [f"#{n:02d}" for n in range(1, 26)]
    saved = settings.reports_dir / "2026-W47.md"
    assert saved.read_text(encoding="utf-8") == out.getvalue()
    check_weekly_format(out.getvalue(), first.app.taxonomy)


async def test_a_crash_mid_thread_resumes_with_only_the_missing_items(
    tmp_path: Path, demo_database: Path, slack_server: SlackServer
) -> None:
    from slack_sdk.errors import SlackApiError

    slack = slack_server
    settings = slack_settings(tmp_path, demo_database, slack)

    async def crash_after_six() -> None:
        await slack.wait_for_message(count=6)
        slack.fail("chat.postMessage", error="fatal_error", times=None)

    async with slack_running(settings) as first:
        app = first.app
        report = await demo_week_report(app)
        watcher = asyncio.create_task(crash_after_six())
        with pytest.raises(SlackApiError):
            await first.platform.thread.publish_weekly(report)
        await watcher
    assert 6 <= len(slack.messages_in(CHANNEL)) < 26
    slack.clear_faults()
    async with slack_running(settings) as second:
        assert await second.platform.thread.publish_weekly(report) is True
    messages = slack.messages_in(CHANNEL)
    parents = [m for m in messages if m.thread_ts is None]
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(parents) == 1 and len(replies) == 25 and len({r.text for r in replies}) == 25
    [edit] = slack.calls_to("chat.update")
    assert edit.params["ts"] == parents[0].ts


async def test_the_scheduled_weekly_job_posts_last_weeks_report(
    tmp_path: Path, demo_database: Path
) -> None:
    """On the demo clock (Monday 12:00 in Tokyo) with the report due at 11:00: started within
    the grace period, the bot publishes the last complete week's report at once."""
    from bot.app import open_app
    from bot.scheduler import run_bot

    settings = make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{demo_database}",
        AINEWS_WEEKLY_DAY="Monday",
        AINEWS_WEEKLY_TIME="11:00",
    )
    saved = settings.reports_dir / "2026-W47.md"
    stop = asyncio.Event()
    async with open_app(settings, fetching=True, clock=demo_clock) as app:
        bot = asyncio.create_task(run_bot(app, stop=stop))
        async with asyncio.timeout(60):
            while not saved.exists():
                await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(bot, timeout=30)
    check_weekly_format(saved.read_text(encoding="utf-8"), app.taxonomy)


async def test_ainews_weekly_on_the_demo_data(tmp_path: Path) -> None:
    demo = await ainews(tmp_path, "demo")
    assert demo.code == 0, demo.err
    assert "the demo's data is in ISO week 2026-W47" in demo.err
    database = tmp_path / "var" / "demo" / "ainews-demo.sqlite3"
    assert f"DATABASE_URL=sqlite:///{database} ainews weekly --week 2026-W47" in demo.err
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    weekly = await ainews(tmp_path, "weekly", "--week", "2026-W47", **env)
    assert weekly.code == 0, weekly.err
    assert weekly.out.startswith(
        "# AI・機械学習 Weekly Report\n2026-11-16 〜 2026-11-22 ｜ 収集記事 43件 ｜ 掲載 25件\n"
    )
    assert "\n## #25 " in weekly.out and "\n## #26 " not in weekly.out
    saved = tmp_path / "var" / "reports" / "2026-W47.md"
    assert saved.read_text(encoding="utf-8") == weekly.out
    as_json = await ainews(tmp_path, "weekly", "--week", "2026-W47", "--format", "json", **env)
    data = json.loads(as_json.out)
    assert data["week"] == "2026-W47" and len(data["items"]) == 25
    assert sum(c["count"] for c in data["categories"]) == data["articles_collected"] == 43
    bad = await ainews(tmp_path, "weekly", "--week", "2026-11-16", **env)
    assert bad.code == 2 and bad.err.strip() == "--week: expected YYYY-Www, got '2026-11-16'"
    future = await ainews(tmp_path, "weekly", "--week", "2999-W01", **env)
    assert future.code == 1 and "2999-W01 is not over yet" in future.err
    assert "Traceback" not in bad.err + future.err


async def test_discord_weekly_subcommand_and_thread_within_limits(
    tmp_path: Path, demo_database: Path, discord_server: DiscordServer
) -> None:
    import discord

    from bot.render.discord import MAX_EMBEDS, MAX_TOTAL, embed_size

    fake = discord_server
    settings = discord_settings(tmp_path, demo_database, fake)
    async with discord_running(settings, fake) as running:
        synced = fake.command("ainews", GUILD_ID)
        [weekly] = [o for o in synced["options"] if o["name"] == "weekly"]
        assert [o["name"] for o in weekly["options"]] == ["week"]
        answers = await running.answer(await running.command("weekly", week="2026-W47"), count=2)
        shown = json.dumps([a.payload for a in answers], ensure_ascii=False)
        assert "AI・機械学習 Weekly Report 2026-W47" in shown and "#01 " in shown
        bad = await running.answer(await running.command("weekly", week="last week"))
        assert "YYYY-Www" in text_of(bad[-1])
        report = await demo_week_report(running.app)
        assert await running.platform.thread.publish_weekly(report) is True
        assert await running.platform.thread.publish_weekly(report) is False
    [parent] = fake.messages_in(TEXT_CHANNEL_ID)
    assert parent.thread_id is not None
    assert "Weekly Report 2026-W47" in json.dumps(parent.embeds, ensure_ascii=False)
    items = fake.messages_in(parent.thread_id)
    assert [m.embeds[0]["title"][:3] for m in items] == [f"#{n:02d}" for n in range(1, 26)]
    assert fake.violations == []
    for message in [parent, *items]:
        assert message.allowed_mentions == {"parse": []}
        assert 1 <= len(message.embeds) <= MAX_EMBEDS
        embeds = [discord.Embed.from_dict(e) for e in message.embeds]
        assert sum(embed_size(e) for e in embeds) <= MAX_TOTAL
