"""`/ainews …` parsing and dispatch, platform-neutral (the Slack tests cover the transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, handler_context, open_app
from bot.demo.run import run_demo
from handlers.commands import handle_command
from handlers.reply import Reply
from tests.conftest import make_settings


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    settings = make_settings(tmp_path)
    await run_demo(settings)
    database = settings.var_dir / "demo" / "ainews-demo.sqlite3"
    async with open_app(make_settings(tmp_path, DATABASE_URL=f"sqlite:///{database}")) as app:
        yield app


async def run(app: App, text: str, *, user: str | None = "U1", admin: bool = False) -> Reply:
    ctx = handler_context(app, user_id=user, is_admin=admin)
    return await handle_command(ctx, text, briefing_config=app.briefing_config, platform="test")


async def test_subscribe_list_and_unsubscribe(app: App) -> None:
    added = await run(app, "subscribe policy 研究 セキュリティ・安全性")
    assert not added.error and "📜 規制・政策・倫理" in added.title
    listed = await run(app, "subscriptions")
    assert (
        listed.text == "🔬 研究・技術、📜 規制・政策・倫理、🛡️ セキュリティ・安全性"
    )  # config order
    assert (await run(app, "subscriptions", user="U2")).title == "購読中のカテゴリーはありません"
    removed = await run(app, "unsubscribe research")
    assert "研究" in removed.title
    assert (await run(app, "unsubscribe all")).title == "すべての購読をやめました（2件）"
    assert (await run(app, "subscriptions")).title == "購読中のカテゴリーはありません"


async def test_bad_categories_and_unknown_commands_explain_themselves(app: App) -> None:
    bad = await run(app, "subscribe weather")
    assert bad.error and "weather" in bad.title and "`policy`" in bad.text
    unknown = await run(app, "subscirbe policy")
    assert unknown.error and "subscirbe" in unknown.title and "/ainews search" in unknown.text
    assert (await run(app, "")).title == "ainews の使い方"
    assert (await run(app, "search")).error


async def test_digest_of_a_day_and_a_bad_date(app: App) -> None:
    digest = await run(app, "digest 2026-11-23")
    assert digest.briefing is not None and len(digest.briefing.items) == 20
    assert digest.ephemeral
    empty = await run(app, "digest 2020-01-01")
    assert empty.briefing is None and "まだありません" in empty.title
    bad = await run(app, "digest yesterday")
    assert bad.error and "YYYY-MM-DD" in bad.title


async def test_sources_from_chat(app: App) -> None:
    listed = await run(app, "sources list")
    assert listed.title == "巡回中のソース（7件）"
    refused = await run(app, "sources add ftp://feeds.example.org/rss", admin=True)
    assert refused.error and "http" in refused.title
    added = await run(app, "sources add <https://feeds.example.org/rss|feeds> 規制", admin=True)
    assert not added.error and "policy" in added.title
    assert "already" not in added.title
    again = await run(app, "sources add https://feeds.example.org/rss", admin=True)
    assert "すでに" in again.title
    removed = await run(app, "sources remove https://feeds.example.org/rss", admin=True)
    assert not removed.error
    assert (await run(app, "sources list")).title == "巡回中のソース（7件）"


async def test_post_digest_is_an_action_for_admins_only(app: App) -> None:
    assert (await run(app, "post-digest")).error
    reply = await run(app, "post-digest", admin=True)
    assert reply.action == "post-digest" and not reply.error
