"""`/ainews …` parsing and dispatch, platform-neutral (the Slack tests cover the transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, handler_context, open_app
from handlers.commands import handle_command
from handlers.reply import Code, Reply, RepostBriefing, plain_text
from tests.conftest import DEMO_DAY, demo_clock, demo_llm_settings, make_settings
from tests.fakes.openai_server import OpenAIServer


@pytest.fixture
async def app(tmp_path: Path, demo_database: Path) -> AsyncIterator[App]:
    settings = make_settings(tmp_path, DATABASE_URL=f"sqlite:///{demo_database}")
    async with open_app(settings, clock=demo_clock) as app:
        yield app


async def run(app: App, text: str, *, user: str | None = "U1", admin: bool = False) -> Reply:
    ctx = handler_context(app, platform="test", user_id=user, is_admin=admin)
    return await handle_command(ctx, text, briefing_config=app.briefing_config)


async def test_subscribe_list_and_unsubscribe(app: App) -> None:
    added = await run(app, "subscribe policy 研究 セキュリティ・安全性")
    assert not added.error and "📜 規制・政策・倫理" in added.title
    listed = plain_text(await run(app, "subscriptions"))
    assert "カテゴリー: 🔬 研究・技術、📜 規制・政策・倫理、🛡️ セキュリティ・安全性" in listed
    assert (await run(app, "subscriptions", user="U2")).title == "購読しているものはありません"
    removed = await run(app, "unsubscribe research")
    assert "研究" in removed.title
    assert (await run(app, "unsubscribe all")).title == "すべての購読をやめました（2件）"
    assert (await run(app, "subscriptions")).title == "購読しているものはありません"


async def test_bad_categories_and_unknown_commands_explain_themselves(app: App) -> None:
    bad = await run(app, "subscribe weather")
    assert bad.error and "weather" in bad.title
    assert Code("policy") in [part for ln in bad.lines for part in ln.parts]
    unknown = await run(app, "subscirbe policy")
    assert unknown.error and "subscirbe" in unknown.title
    assert "/ainews search" in plain_text(unknown)
    help_ = await run(app, "")
    assert help_.title.startswith("ainews") and not help_.error
    assert "*" not in plain_text(help_)  # structure, not one platform's markup
    commands = [p.text for ln in help_.lines for p in ln.parts if isinstance(p, Code)]
    assert "/ainews post-digest" in commands and "policy" in commands
    assert (await run(app, "search")).error


async def test_digest_of_a_day_and_a_bad_date(app: App) -> None:
    digest = await run(app, "digest 2026-11-23")
    assert digest.briefing is not None and len(digest.briefing.items) == 20
    assert digest.ephemeral
    latest = await run(app, "digest")  # no date: the newest complete day by the clock
    assert latest.briefing == digest.briefing
    future = await run(app, "digest 2026-11-24")  # its window is still open at DEMO_NOW
    assert future.briefing is None and "まだありません" in future.title
    empty = await run(app, "digest 2020-01-01")
    assert empty.briefing is None and "ありませんでした" in empty.title
    bad = await run(app, "digest yesterday")
    assert bad.error and "YYYY-MM-DD" in bad.title


async def test_sources_from_chat(app: App) -> None:
    listed = await run(app, "sources list")
    assert listed.title == "巡回中のソース（7件）"
    refused = await run(app, "sources add ftp://feeds.example.org/rss", admin=True)
    assert refused.error and "http" in refused.title
    added = await run(app, "sources add https://feeds.example.org/rss 規制", admin=True)
    assert not added.error and "policy" in added.title
    assert "already" not in added.title
    again = await run(app, "sources add https://feeds.example.org/rss", admin=True)
    assert "すでに" in again.title
    removed = await run(app, "sources remove https://feeds.example.org/rss", admin=True)
    assert not removed.error
    assert (await run(app, "sources list")).title == "巡回中のソース（7件）"


async def test_post_digest_is_an_effect_for_admins_only(app: App) -> None:
    refused = await run(app, "post-digest")
    assert refused.error and refused.effect is None and "管理者" in refused.title
    assert "ワークスペース管理者" not in refused.title  # the wording fits every platform
    reply = await run(app, "post-digest", admin=True)
    assert not reply.error and reply.effect == RepostBriefing(DEMO_DAY)


async def test_digest_is_built_once_per_day_whoever_asks(
    tmp_path: Path, demo_database: Path, openai_server: OpenAIServer
) -> None:
    """A digest request never rebuilds the briefing: the model writes the day's trend once,
    and every later `digest` — from anyone — is the stored briefing."""
    database = demo_database
    openai_server.enqueue_json(
        {
            "themes": [{"name": "推論チップ", "text": "Hoshizora AIが量産を開始した（#1）。"}],
            "organisations": [],
            "outlook": "推論向けハードウェアの競争が続く見通し。",
        }
    )
    llm_settings = demo_llm_settings(tmp_path, database, openai_server)
    async with open_app(llm_settings, llm=True, clock=demo_clock) as app:
        replies = [await run(app, "digest", user=f"U{n}") for n in range(5)]
        replies.append(await run(app, "digest 2026-11-23"))
    assert len(openai_server.requests) == 1
    briefings = {id(r.briefing) for r in replies}
    assert len(briefings) == len(replies)  # each read from storage…
    assert all(r.briefing == replies[0].briefing for r in replies)  # …and all the same
    assert replies[0].briefing is not None and not replies[0].briefing.trend.automatic
