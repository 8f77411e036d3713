"""`/ainews sources list` as each kind of user sees it, and its pages.

The errors shown are the real poller's: the sources are polled through the real fetcher against
the feed stand-in and a closed loopback port, so the stored error is what aiohttp says
("Cannot connect to host 127.0.0.1:…"), not a string made up to pass."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, handler_context, open_app, poll_once
from bot.publishing.chat import Answer, Caller, ChatCore
from bot.render import discord as dc
from bot.render import slack
from bot.render.reply_markdown import render_reply
from handlers.commands import handle_command
from handlers.filters import with_page
from handlers.reply import Code, Href, Reply, plain_text
from handlers.sources import (
    ADMIN_DETAILS_NOTE,
    PAGE_SIZE,
    is_internal_host,
    source_url_problem,
    without_userinfo,
)
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import TEST_FEEDS, demo_clock, make_settings
from tests.fakes.feed_server import FeedServer

PUBLIC_WITH_PASSWORD = "https://reader:s3cret@feeds.example.org/private.xml"
INTERNAL = "http://10.1.2.3/feed.xml"  # never fetched: added after the only poll


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def app(tmp_path: Path, feed_server: FeedServer) -> AsyncIterator[App]:
    feed_server.add("/ja.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    polled = [
        SourceSpec(url=feed_server.url("/ja.xml"), name="日本語フィード", category="japan"),
        SourceSpec(
            url=f"http://127.0.0.1:{_closed_port()}/feed.xml",
            name="社内フィード",
            category="infra",
        ),
    ]
    async with open_app(make_settings(tmp_path), fetching=True, clock=demo_clock) as app:
        await app.db.run(add_missing_sources, specs=polled)
        report = await poll_once(app, force=True)
        assert (report.sources, report.failed) == (2, 1)
        # Added after the poll, so never fetched: the CLI names a source after its URL.
        later = [
            SourceSpec(url=PUBLIC_WITH_PASSWORD, name=PUBLIC_WITH_PASSWORD, category="policy"),
            SourceSpec(url=INTERNAL, name=INTERNAL, category="research"),
        ]
        await app.db.run(add_missing_sources, specs=later)
        yield app


async def run(app: App, text: str, *, admin: bool = False) -> Reply:
    ctx = handler_context(app, platform="test", user_id="U1", is_admin=admin)
    return await handle_command(ctx, text, briefing_config=app.briefing_config)


def _everything_shown(reply: Reply) -> str:
    """The reply as every platform renders it, and every link target in it."""
    links = [p.url for ln in reply.lines for p in ln.parts if isinstance(p, Href)]
    blocks = str(slack.reply_blocks(reply))
    discord = "\n".join(m.content for m in dc.reply_messages(reply))
    return "\n".join([plain_text(reply), *links, blocks, discord, render_reply(reply)])


async def test_everyone_sees_a_plain_status_and_no_internals(app: App) -> None:
    reply = await run(app, "sources list")
    assert reply.title == "巡回中のソース（4件）" and not reply.error
    lines = [plain_text(Reply(title="", lines=(ln,))) for ln in reply.lines]
    never = "未取得 · 最終成功 なし · 7日間 0件 · 304 — · 次回 次の巡回"
    assert lines == [
        # On loopback: named, not linked. Its feed's three entries are of the last 7 days.
        "• 日本語フィード（🇯🇵 国内ニュース） — "
        "正常 · 最終成功 11/23 12:00 · 7日間 3件 · 304 0% · 次回 11/23 12:30",
        # The error in our few words, never aiohttp's; backed off to twice the interval.
        "• 社内フィード（🖥️ インフラ・ハードウェア） — "
        "再試行待ち（連続1回失敗: 接続できません） · 最終成功 なし · 7日間 0件 · 304 0% · "
        "次回 11/23 13:00",
        f"• https://feeds.example.org/private.xml（📜 規制・政策・倫理） — {never}",
        f"• （内部のソース）（🔬 研究・技術） — {never}",  # named after its address
    ]
    shown = _everything_shown(reply)
    for secret in ("Cannot connect", "127.0.0.1", "10.1.2.3", "s3cret", "reader:"):
        assert secret not in shown, secret
    assert "https://feeds.example.org/private.xml" in shown  # the link, without the password
    assert reply.notices == (ADMIN_DETAILS_NOTE,)


async def test_admins_see_the_stored_error_and_the_full_url(app: App) -> None:
    reply = await run(app, "sources list", admin=True)
    shown = plain_text(reply)
    assert "Cannot connect to host 127.0.0.1:" in shown  # aiohttp's own words, from the poll
    assert "社内フィード" in shown
    assert "次回 11/23 13:00: ClientConnectorError: Cannot connect" in shown
    links = [p.url for ln in reply.lines for p in ln.parts if isinstance(p, Href)]
    assert PUBLIC_WITH_PASSWORD in links
    ids = [p.text for ln in reply.lines for p in ln.parts if isinstance(p, Code)]
    assert ids == ["1", "2", "3", "4"]  # what `sources remove` takes
    assert INTERNAL in shown
    assert reply.notices == ()


async def test_a_long_list_pages_and_the_buttons_run_the_next_page(app: App) -> None:
    extra = [
        SourceSpec(url=f"https://feeds{n}.example.org/rss", name=f"Feed {n}", category="research")
        for n in range(42)
    ]
    await app.db.run(add_missing_sources, specs=extra)
    first = await run(app, "sources list")
    assert first.paging is not None and (first.paging.page, first.paging.pages) == (1, 3)
    assert first.paging.total == 46 and len(first.lines) == PAGE_SIZE
    second = await run(app, with_page("sources list", 2))
    third = await run(app, "sources list page:3")
    assert len(second.lines) == PAGE_SIZE and len(third.lines) == 46 - 2 * PAGE_SIZE
    names = [plain_text(Reply(title="", lines=r.lines)) for r in (first, second, third)]
    assert "Feed 17" in names[1] and "Feed 17" not in names[0] + names[2]
    too_far = await run(app, "sources list page:4")
    assert too_far.error and "3 ページまで" in too_far.title
    assert (await run(app, "sources list page:x")).error
    assert (await run(app, "sources list everything")).error

    spawned: list[Coroutine[Any, Any, None]] = []
    core = ChatCore(app, spawn=spawned.append)
    caller = Caller("test", "U1")
    answer = await core.command(caller, "sources list")
    assert [c.label for c in answer.controls] == ["次へ"]  # no share: it is per user
    after = await core.action(caller, answer.controls[0].action)
    assert isinstance(after, Answer) and after.reply.paging is not None
    assert after.reply.paging.page == 2 and [c.label for c in after.controls] == ["前へ", "次へ"]
    assert not spawned
    # Together the pages show every source, on Slack too (one list, not one clipped message).
    rendered = "\n".join(
        block["text"]["text"]
        for reply in (first, second, third)
        for block in slack.reply_blocks(reply)
        if "text" in block
    )
    assert all(f"|Feed {n}>（" in rendered for n in range(42))


def test_url_checks_shared_by_chat_and_the_cli() -> None:
    for url in ("not-a-url", "ftp://example.com/feed", "http:///feed", "http://exa mple.com/"):
        assert source_url_problem(url, trusted=True) is not None, url
    assert source_url_problem("http://127.0.0.1:8080/feed.xml", trusted=True) is None
    assert source_url_problem("http://127.0.0.1:8080/feed.xml", trusted=False) is not None
    assert without_userinfo(PUBLIC_WITH_PASSWORD) == "https://feeds.example.org/private.xml"
    assert without_userinfo("https://feeds.example.org/a@b") == "https://feeds.example.org/a@b"
    internal = ("http://10.1.2.3/", "http://[::1]:80/", "http://intranet/", "http://wiki.corp/")
    assert all(is_internal_host(url) for url in internal)
    assert not is_internal_host("https://feeds.example.org/rss")
