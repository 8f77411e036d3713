"""Saved-search alerts: `/ainews subscribe query:"…"`, delivered in the DM bundle by the real
search engine (SQLite FTS5 and PostgreSQL), deduplicated against category subscriptions, only
for articles summarised after the search was saved; listed and removed with the categories."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import App, handler_context, open_app, summarize_pending
from bot.publishing.fanout import DirectMessageFanout
from handlers.commands import handle_command
from handlers.reply import Code, Reply, plain_text
from handlers.subscriptions import MAX_QUERY_CHARS, MAX_SAVED_SEARCHES
from storage.articles import NewArticle, insert_new_articles
from storage.models import Source, Summary
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import demo_clock, make_settings
from tests.fakes.discord_server import GUILD_ID, USER_ID, DiscordServer, autocomplete_interaction
from tests.fakes.slack_server import SlackServer

# Fixed dates (not the clock of the run): the search's `since` narrowing compares these.
OLD_DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NEW_DAY = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

GPU_OLD = ("旧型GPUの在庫を処分", "半導体商社が旧型GPUの在庫を処分すると発表した。" * 3)
GPU_NEW = ("新型GPUの量産を開始", "半導体メーカーが新型GPUの量産を始めた。データセンター向け。" * 3)
EXPORT = ("半導体の輸出規制を強化", "政府は半導体の輸出規制を強化する法案を公表した。" * 3)
AGENTS = (
    "エージェント基盤の新版",
    "新しいAIエージェント基盤が公開された。ワークフローを自動化。" * 3,
)


class RecordingDMs:
    """A DirectMessagePort that keeps each bundle: the fan-out core under test, no platform."""

    platform = "test"

    def __init__(self) -> None:
        self.bundles: defaultdict[str, list[Reply]] = defaultdict(list)

    async def open_dm(self, user_id: str) -> str:
        return f"dm-{user_id}"

    async def send_bundle(self, channel: str, bundle: Reply) -> None:
        self.bundles[channel.removeprefix("dm-")].append(bundle)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    url = (
        f"sqlite:///{tmp_path / 'alerts.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    async with open_app(make_settings(tmp_path, DATABASE_URL=url), clock=demo_clock) as app:
        assert app.db.backend == request.param
        yield app


async def run(app: App, text: str, *, user: str | None = "U1", platform: str = "test") -> Reply:
    ctx = handler_context(app, platform=platform, user_id=user)
    return await handle_command(ctx, text, briefing_config=app.briefing_config)


async def add_articles(
    app: App, articles: list[tuple[str, str]], *, published: datetime, tag: str
) -> dict[str, str]:
    """Store and summarise (extractively, the real summariser and indexer) new articles;
    returns title → category as the classifier filed them."""
    spec = SourceSpec(url=f"https://{tag}.example.com/rss", name=f"Feed {tag}", category="agents")
    await app.db.run(add_missing_sources, specs=[spec])
    with app.db.session() as session:
        source_id = session.exec(select(Source.id).where(Source.url == spec.url)).one()
    new = [
        NewArticle(
            url=f"https://{tag}.example.com/{i}",
            guid=None,
            title=title,
            language="ja",
            published_at=published + timedelta(minutes=i),
            body_text=body,
            content_hash=f"{tag}-{i}",
        )
        for i, (title, body) in enumerate(articles)
    ]
    assert source_id is not None
    await app.db.run(
        insert_new_articles, source_id=source_id, articles=new, first_seen_at=published
    )
    await summarize_pending(app)
    with app.db.session() as session:
        return {s.title_ja: s.category for s in session.exec(select(Summary))}


def titles(bundle: Reply) -> list[str]:
    return sorted(a.title for a in bundle.articles)


def reason_of(bundle: Reply, title: str) -> str:
    [article] = [a for a in bundle.articles if a.title == title]
    return article.reason


# ── delivery ────────────────────────────────────────────────────────────────────────────────


async def test_new_matches_are_delivered_once_with_why(app: App) -> None:
    port = RecordingDMs()
    fanout = DirectMessageFanout(port, db=app.db, taxonomy=app.taxonomy)
    # U3's category cursor predates the old article; their saved search must not reach back.
    assert not (await run(app, "subscribe agents", user="U3")).error
    await add_articles(app, [GPU_OLD], published=OLD_DAY, tag="old")

    for user, command in [
        ("U1", "subscribe query:GPU"),
        ("U1", 'subscribe query:"半導体 規制"'),
        ("U2", "subscribe infra"),
        ("U2", "subscribe query:GPU category:infra"),
        ("U3", "subscribe query:gpu"),
        ("U4", 'subscribe query:"GPU -量産"'),
        ("U5", "subscribe query:GPU category:policy"),
    ]:
        reply = await run(app, command, user=user)
        assert not reply.error and reply.title.startswith(
            ("保存検索を登録しました", "購読しました")
        )

    categories = await add_articles(app, [GPU_NEW, EXPORT, AGENTS], published=NEW_DAY, tag="new")
    gpu, export, agents = GPU_NEW[0], EXPORT[0], AGENTS[0]
    assert (categories[gpu], categories[export], categories[agents]) == (
        "infra",
        "policy",
        "agents",
    )

    assert await fanout.send() == 3
    assert set(port.bundles) == {"U1", "U2", "U3"}  # U4 excluded 量産, U5 filtered to policy
    [u1] = port.bundles["U1"]
    assert titles(u1) == sorted([gpu, export])  # not the old GPU article, not agents
    assert reason_of(u1, gpu) == "一致: 検索「GPU」"
    assert reason_of(u1, export) == "一致: 検索「半導体 規制」"
    assert u1.title == "購読の新着 2件"
    [u2] = port.bundles["U2"]
    assert titles(u2) == [gpu]  # category and saved search: one item, both reasons
    assert reason_of(u2, gpu) == "一致: カテゴリー購読、検索「GPU category:infra」"
    [u3] = port.bundles["U3"]
    assert titles(u3) == sorted([gpu, agents])  # GPU_OLD: older than the search, never sent
    assert reason_of(u3, agents) == "一致: カテゴリー購読"
    assert all(a.published == NEW_DAY or a.published > NEW_DAY for a in u3.articles)

    assert await fanout.send() == 0  # cursors moved: nothing twice


async def test_a_saved_search_sees_what_search_sees(app: App) -> None:
    """The alert and `/ainews search` agree: half-width/full-width and case, the phrase."""
    port = RecordingDMs()
    fanout = DirectMessageFanout(port, db=app.db, taxonomy=app.taxonomy)
    await run(app, "subscribe query:ＧＰＵの量産", user="UW")  # NFKC: the same as "gpuの量産"
    await run(app, """subscribe query: "輸出規制を強化" """, user="UP")  # a phrase
    await run(app, """subscribe query: "規制を輸出" """, user="UX")  # the phrase, reversed
    await add_articles(app, [GPU_NEW, EXPORT], published=NEW_DAY, tag="new")
    searched = await run(app, "search ＧＰＵの量産", user="UW")
    assert [a.title for a in searched.articles] == [GPU_NEW[0]]
    assert await fanout.send() == 2
    assert titles(port.bundles["UW"][0]) == [GPU_NEW[0]]
    assert titles(port.bundles["UP"][0]) == [EXPORT[0]]
    assert "UX" not in port.bundles


async def test_closed_dms_skip_saved_searches_too(app: App) -> None:
    from bot.publishing.ports import DirectMessagesClosed
    from storage.subscriptions import take_dm_notice

    class Closed(RecordingDMs):
        async def open_dm(self, user_id: str) -> str:
            raise DirectMessagesClosed("cannot_dm_bot")

    fanout = DirectMessageFanout(Closed(), db=app.db, taxonomy=app.taxonomy)
    await run(app, "subscribe query:GPU", user="UC")
    await add_articles(app, [GPU_NEW], published=NEW_DAY, tag="new")
    assert await fanout.send() == 0
    working = RecordingDMs()
    assert await DirectMessageFanout(working, db=app.db, taxonomy=app.taxonomy).send() == 0
    assert await app.db.run(take_dm_notice, platform="test", user_id="UC")  # recorded, told
    await run(app, "subscribe query:量産", user="UC")  # subscribing again reopens the DMs
    assert await DirectMessageFanout(working, db=app.db, taxonomy=app.taxonomy).send() == 1


# ── the command layer: bad input, listing, unsubscribing ───────────────────────────────────


@pytest.fixture
async def sqlite_app(tmp_path: Path) -> AsyncIterator[App]:
    async with open_app(make_settings(tmp_path), clock=demo_clock) as app:
        yield app


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ('subscribe query:""', "検索語がありません"),
        ("subscribe query:", "検索語がありません"),
        ("subscribe query:category:infra", "検索語がありません"),
        ('subscribe query:"-GPU"', "「-GPU」には検索できる語がありません"),
        ('subscribe query:"!!! ... ?"', "検索できる語がありません"),
        (f'subscribe query:"{"半" * (MAX_QUERY_CHARS + 1)}"', "検索語が長すぎます（101文字）"),
        ("subscribe query:GPU since:7d", "since: と page: は使えません"),
        ("subscribe query:GPU page:2", "since: と page: は使えません"),
        ("subscribe query:GPU since:someday", "since: と page: は使えません"),
        ("subscribe query:GPU category:weather", "カテゴリー「weather」はありません"),
        ("subscribe weather", "カテゴリー「weather」はありません"),
        ("unsubscribe 3", "3番の保存検索はありません（保存検索はありません）"),
        ("unsubscribe query:nothing", "「query:nothing」はカテゴリーでも、保存している検索でも"),
        ("unsubscribe weather", "「weather」はカテゴリーでも、保存している検索でもありません"),
    ],
)
async def test_bad_input_gets_one_clear_line(sqlite_app: App, command: str, message: str) -> None:
    reply = await run(sqlite_app, command)
    assert reply.error and message in reply.title, reply.title
    assert "\n" not in reply.title
    assert [p for ln in reply.lines for p in ln.parts if isinstance(p, Code)]  # what to type


async def test_the_cap_and_a_duplicate(sqlite_app: App) -> None:
    for n in range(MAX_SAVED_SEARCHES):
        assert not (await run(sqlite_app, f"subscribe query:語{n}")).error
    full = await run(sqlite_app, "subscribe query:もう一つ")
    assert full.error and full.title == f"保存検索は1人{MAX_SAVED_SEARCHES}件までです"
    again = await run(sqlite_app, "subscribe query:語0")  # the same search, not an 11th
    assert not again.error and "もう登録されています" in again.title
    assert not (await run(sqlite_app, "subscribe query:もう一つ", user="U2")).error  # per user
    assert (await run(sqlite_app, "subscribe query:GPU", user=None)).error  # CLI: no user


async def test_listing_and_unsubscribing_each_kind(sqlite_app: App) -> None:
    a = sqlite_app
    await run(a, "subscribe policy")
    await run(a, 'subscribe query:"半導体 規制"')
    await run(a, 'subscribe query:GPU category:インフラ source:"Tech Crunch"')
    await run(a, "subscribe query:GPU", user="U2")  # someone else's
    listed = plain_text(await run(a, "subscriptions"))
    assert "カテゴリー: 📜 規制・政策・倫理" in listed
    assert '1. 半導体 規制\n2. GPU category:infra source:"Tech Crunch"' in listed

    # By its text, although 半導体 and 規制 are category aliases: the list's text comes first.
    removed = await run(a, "unsubscribe 半導体 規制")
    assert removed.title == "保存検索をやめました: 「半導体 規制」"
    listed = plain_text(await run(a, "subscriptions"))
    assert "規制・政策・倫理" in listed and "半導体" not in listed
    assert (await run(a, "unsubscribe 2")).title == "2番の保存検索はありません（1〜1番があります）"
    assert "GPU category:infra" in (await run(a, "unsubscribe 1")).title

    await run(a, "subscribe query:量子")
    await run(a, "subscribe query:生成AI")
    both = await run(a, "unsubscribe policy ２")  # a category and a number (full-width too)
    assert both.title == "購読をやめました: 📜 規制・政策・倫理、「生成AI」"
    assert (await run(a, "unsubscribe query:1")).title == "購読をやめました: 「量子」"
    nothing = await run(a, "subscriptions")
    assert nothing.title == "購読しているものはありません"
    assert 'query:"半導体 規制"' in plain_text(nothing)  # how to start

    await run(a, "subscribe policy infra")
    await run(a, "subscribe query:GPU")
    assert (await run(a, "unsubscribe all")).title == "すべての購読をやめました（3件）"
    assert (await run(a, "subscriptions", user="U2")).title == "購読中"  # theirs untouched


async def test_help_names_saved_searches(sqlite_app: App) -> None:
    help_ = plain_text(await run(sqlite_app, "help"))
    assert 'subscribe query:"半導体 規制"' in help_ and "保存検索の番号" in help_


# ── both platforms, through their stand-ins ───────────────────────────────────────────────

HOSTILE = (
    "GPU無料配布 @everyone <!channel> <@U0ADMIN> [罠](https://evil.example/x)",
    "GPUを無料で配布するという投稿が出回った。@here 注意が必要だ。" * 3,
)


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


async def test_slack_subscribe_and_an_inert_bundle(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    from tests.test_slack import post_command, post_event, slack_running, slack_settings

    async with slack_running(slack_settings(tmp_path, demo_database, slack)) as running:
        await post_command(running.events_url, slack, 'subscribe query:"GPU 配布"', user="UQ")
        [answer] = await slack.wait_for_response()
        assert "保存検索を登録しました: 「GPU 配布」" in json.dumps(answer, ensure_ascii=False)
        await add_articles(running.app, [HOSTILE, AGENTS], published=NEW_DAY, tag="slack")
        assert await running.platform.fanout.send() == 1
        [dm] = [m for m in slack.messages if m.channel.startswith("D")]
        text = json.dumps([dm.blocks, dm.text], ensure_ascii=False)
        assert "GPU無料配布" in text and "検索「GPU 配布」" in text
        assert AGENTS[0] not in text
        assert "<!channel>" not in text and "<!here>" not in text and "<@U0ADMIN>" not in text
        assert "@\u200beveryone" in text  # still readable, no longer a mention
        assert not [url for url in re_links(text) if "evil.example" in url]

        opened = {"type": "app_home_opened", "user": "UQ", "tab": "home"}
        assert await post_event(running.events_url, opened) == 200
        [view] = [c.decoded("view") for c in await slack.wait_for("views.publish")]
        texts = [b["text"]["text"] for b in view["blocks"] if b["type"] == "section"]
        assert "*保存検索*\n1. GPU 配布" in texts


def re_links(text: str) -> list[str]:
    return re.findall(r"<(https?://[^|>]+)\|", text)


@pytest.fixture
def fake(discord_server: DiscordServer) -> DiscordServer:
    return discord_server


async def test_discord_subscribe_list_unsubscribe_and_an_inert_bundle(
    tmp_path: Path, demo_database: Path, fake: DiscordServer
) -> None:
    from tests.test_discord import discord_running, discord_settings, text_of

    async with discord_running(discord_settings(tmp_path, demo_database, fake), fake) as running:
        [*_, saved] = await running.answer(
            await running.command("subscribe", query="GPU", category="infra")
        )
        assert "保存検索を登録しました: 「GPU category:infra」" in text_of(saved)
        [*_, bad] = await running.answer(await running.command("subscribe", query="-GPU"))
        assert "検索できる語がありません" in text_of(bad)
        [*_, listed] = await running.answer(await running.command("subscriptions"))
        assert "GPU category:infra" in text_of(listed)

        await add_articles(running.app, [HOSTILE], published=NEW_DAY, tag="discord")
        categories = await add_articles(running.app, [GPU_NEW], published=NEW_DAY, tag="d2")
        assert categories[GPU_NEW[0]] == "infra"
        assert await running.platform.fanout.send() == 1
        [dm] = fake.messages_in(fake.dm_channel(USER_ID).id)
        posted = json.dumps([dm.content, dm.embeds], ensure_ascii=False)
        assert GPU_NEW[0] in posted and "検索「GPU category:infra」" in posted
        assert "GPU無料配布" in posted  # the hostile one is in the bundle, inert
        assert "@everyone" not in posted and "<@U0ADMIN>" not in posted

        synced = fake.command("ainews", GUILD_ID)
        payload = autocomplete_interaction(synced, "unsubscribe", {"query": ""}, focused="query")
        [offered] = await fake.wait_for_interaction_response(
            await fake.send_interaction(payload), timeout=10
        )
        assert offered.payload["choices"] == [{"name": "1. GPU category:infra", "value": "1"}]
        [*_, gone] = await running.answer(await running.command("unsubscribe", query="1"))
        assert "GPU category:infra" in text_of(gone)
        [*_, empty] = await running.answer(await running.command("subscriptions"))
        assert "購読しているものはありません" in text_of(empty)
