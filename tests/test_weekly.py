"""The weekly report: its Markdown format, its references and counts against the database, the
week's boundaries, the model's overview (grounded or replaced by counts), the chat command and
the renderers' limits. Every date is relative to the demo clock passed in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text as sql
from sqlmodel import Session, select

from bot.app import App, handler_context, open_app
from bot.render.discord import (
    MAX_DESCRIPTION,
    MAX_EMBEDS,
    MAX_TITLE,
    MAX_TOTAL,
    embed_size,
    pack_embeds,
    weekly_embeds,
)
from bot.render.markdown import render_weekly
from bot.render.slack import MAX_BLOCKS, MAX_SECTION, weekly_blocks, weekly_item_blocks
from handlers.commands import handle_command
from jobs.weekly import build_weekly, last_complete_week, week_window
from jobs.weekly_model import IsoWeek, WeeklyReport, weekly_from_payload, weekly_to_payload
from storage.models import Article, Source, Summary
from storage.taxonomy import Taxonomy
from tests.conftest import DEMO_NOW, demo_clock, demo_llm_settings, make_settings
from tests.fakes.openai_server import OpenAIServer

WEEK = last_complete_week(DEMO_NOW, DEMO_NOW.tzinfo)  # type: ignore[arg-type]
_REF = re.compile(r"#(\d{2,3})")


@pytest.fixture
async def app(tmp_path: Path, demo_database: Path) -> AsyncIterator[App]:
    settings = make_settings(tmp_path, DATABASE_URL=f"sqlite:///{demo_database}")
    async with open_app(settings, clock=demo_clock) as app:
        yield app


async def weekly_of(app: App, week: IsoWeek = WEEK, **config: Any) -> WeeklyReport:
    return await build_weekly(
        db=app.db,
        week=week,
        config=replace(app.weekly_config, **config),
        taxonomy=app.taxonomy,
        llm=app.llm,
    )


def check_weekly_format(markdown: str, taxonomy: Taxonomy) -> tuple[list[str], list[int]]:
    """Every rule of the weekly format that can be checked on the text; returns the overview's
    `#NN` references and the items' numbers."""
    lines = markdown.split("\n")
    assert lines[0] == "# AI・機械学習 Weekly Report"
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2} 〜 \d{4}-\d{2}-\d{2} ｜ 収集記事 \d+件 ｜ 掲載 \d+件", lines[1]
    ), lines[1]
    overview, _, body = markdown.partition("\n---\n")
    headings = [ln for ln in overview.split("\n") if ln.startswith("## ")]
    names = ["今週の動向", "注目トピック", "カテゴリー別動向", "今後の展望"]
    assert [h.removeprefix("## ").removesuffix("（自動抽出）") for h in headings] == names
    section = {
        h.removeprefix("## ").removesuffix("（自動抽出）"): part.strip().split("\n")[1:]
        for h, part in zip(headings, re.split(r"(?m)^(?=## )", overview)[1:], strict=True)
    }
    table = section["カテゴリー別動向"]
    assert table[:2] == ["| カテゴリー | 件数 | 動向 |", "|---|---|---|"]
    labels = [c.label for c in taxonomy.categories]
    rows = [row.split(" | ")[0].removeprefix("| ") for row in table[2:]]
    assert rows == sorted(rows, key=labels.index), "categories in configured order"
    assert len(section["今週の動向"]) == 1 and len(section["今後の展望"]) >= 1
    topics = section["注目トピック"]
    assert all(re.fullmatch(r"- \*\*.+\*\* \((#\d{2}(, )?)+\)", t) for t in topics), topics
    items = body.split("\n## #")[1:]
    numbers = []
    for raw in items:
        item = raw.split("\n")
        numbers.append(int(item[0][:2]))
        assert re.fullmatch(r"\d{2} .+", item[0])
        assert re.fullmatch(r"公開日 \d{4}-\d{2}-\d{2} ｜ .+ ｜ (日本|海外)", item[1]), item[1]
        assert item[2] == "" and item[3].startswith("**概要**: ")
        assert item[4:6] == ["", "**詳細**:"]
        assert [ln.split(":")[0] for ln in item[6:9]] == [
            "- **背景**",
            "- **主要ポイント**",
            "- **影響と展望**",
        ]
        assert item[9] == "" and item[10].startswith("元記事: http")
    assert numbers == list(range(1, len(numbers) + 1))
    return _REF.findall(overview), numbers


def week_counts(database_url: str, start: datetime, end: datetime) -> dict[str, int]:
    """Per category, the summarised articles of [start, end), counted here in SQL of its own."""
    from storage.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                sql(
                    "SELECT s.category, COUNT(*) FROM articles a "
                    "JOIN summaries s ON s.article_id = a.id "
                    "WHERE COALESCE(a.published_at, a.first_seen_at) >= :start "
                    "AND COALESCE(a.published_at, a.first_seen_at) < :end GROUP BY s.category"
                ),
                {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)},
            ).all()
            return {str(category): int(n) for category, n in rows}
    finally:
        engine.dispose()


async def test_the_demo_week_follows_the_format_and_the_database(app: App) -> None:
    report = await weekly_of(app)
    assert (report.week, str(report.start), str(report.end)) == (
        "2026-W47",
        "2026-11-16",
        "2026-11-22",
    )
    markdown = render_weekly(report)
    refs, numbers = check_weekly_format(markdown, app.taxonomy)
    assert refs and {int(r) for r in refs} <= set(numbers)  # every #NN is an item
    assert len(numbers) == app.settings.weekly_size == 25

    start, end = week_window(WEEK, app.settings.tz)
    counts = week_counts(app.settings.database_url, start, end)
    assert {c.category: c.count for c in report.categories} == counts
    assert report.articles_collected == sum(counts.values()) == 43
    assert f"収集記事 {sum(counts.values())}件 ｜ 掲載 25件" in markdown
    for row in report.categories:
        assert f"| {row.heading} | {counts[row.category]} | " in markdown
    # No article of another week, and a story once (its other outlets as 関連報道).
    with Session(app.db.engine) as session:
        listed = [session.get(Article, item.article_id) for item in report.items]
        assert all(a is not None for a in listed)
        times = [(a.published_at or a.first_seen_at).replace(tzinfo=UTC) for a in listed if a]
        stories = [a.story_id or a.id for a in listed if a]
    assert all(start <= t < end for t in times)
    assert len(set(stories)) == len(stories)
    assert any(item.related for item in report.items)
    assert report.automatic and "## 今週の動向（自動抽出）" in markdown
    # Japanese-language outlets are 日本, the others 海外.
    countries = {item.source.name: item.country for item in report.items}
    assert countries["AIプラス・ニュース"] == "日本" and countries["The Circuit Ledger"] == "海外"
    assert weekly_from_payload(weekly_to_payload(report)) == report


async def test_articles_just_outside_the_week_are_left_out(app: App) -> None:
    """Four articles at the edges of the week, in the configured zone: Monday 00:00 and
    Sunday 23:59:59 are in, a second before and the next Monday 00:00 are out."""
    start, end = week_window(WEEK, app.settings.tz)
    edges = {
        "first second": start,
        "last second": end - timedelta(seconds=1),
        "a second early": start - timedelta(seconds=1),
        "next monday": end,
    }
    ids = {}
    with Session(app.db.engine) as session:
        source = session.exec(select(Source)).first()
        assert source is not None and source.id is not None
        for label, when in edges.items():
            article = Article(
                source_id=source.id,
                entry_key=f"id:{label}",
                url=f"https://edge.example.com/{label.replace(' ', '-')}",
                title=f"Edge case: {label}",
                published_at=when,
                body_text="Edge.",
                content_hash=label,
            )
            session.add(article)
            session.flush()
            assert article.id is not None
            ids[label] = article.id
            session.add(
                Summary(
                    article_id=article.id,
                    title_ja=f"境界の記事（{label}）",
                    overview="境界。",
                    points=["背景。", "要点。", "要点2。"],
                    why_important="影響。",
                    keywords=["境界"],
                    category="society",
                    importance=3,
                    method="extractive",
                    model="",
                    prompt_version="",
                    content_hash=label,
                )
            )
        session.commit()
    report = await weekly_of(app, size=99)  # every story of the week is listed
    listed = {item.article_id for item in report.items}
    assert {ids["first second"], ids["last second"]} <= listed
    assert not listed & {ids["a second early"], ids["next monday"]}
    society = next(c for c in report.categories if c.category == "society")
    counts = week_counts(app.settings.database_url, start, end)
    assert society.count == counts["society"] == 6 + 2
    following = await weekly_of(app, WEEK.shifted(1), size=99)
    assert ids["next monday"] in {item.article_id for item in following.items}


def test_weeks_and_the_last_complete_one() -> None:
    tokyo = DEMO_NOW.tzinfo
    assert str(IsoWeek.parse("2026-w48")) == "2026-W48" == str(IsoWeek.parse("2026W48"))
    assert str(IsoWeek.parse("2026-W01").monday) == "2025-12-29"
    with pytest.raises(ValueError, match="no ISO week 53"):
        IsoWeek.parse("2025-W53")
    with pytest.raises(ValueError, match="expected YYYY-Www"):
        IsoWeek.parse("2026-11-23")
    monday_start = datetime(2026, 11, 23, 0, 0, tzinfo=tokyo)
    assert str(last_complete_week(monday_start, tokyo)) == "2026-W47"  # type: ignore[arg-type]
    sunday_night = monday_start - timedelta(seconds=1)
    assert str(last_complete_week(sunday_night, tokyo)) == "2026-W46"  # type: ignore[arg-type]
    # Sunday 15:00 UTC is already Monday in Tokyo: the zone decides, not UTC.
    assert str(last_complete_week(datetime(2026, 11, 22, 15, 0, tzinfo=UTC), tokyo)) == "2026-W47"  # type: ignore[arg-type]


async def test_unhealthy_sources_get_a_line_only_when_there_are_some(app: App) -> None:
    assert "取得に問題のあるソース" not in render_weekly(await weekly_of(app))
    with Session(app.db.engine) as session:
        source = session.exec(select(Source).where(Source.name == "Frontier Brief")).one()
        source.error_count = 5
        source.last_error = "HTTP 503 Service Unavailable"
        session.add(source)
        session.commit()
    markdown = render_weekly(await weekly_of(app))
    assert (
        "> ⚠️ 取得に問題のあるソース: Frontier Brief（5回連続で失敗: HTTP 503 Service Unavailable）"
        in markdown
    )
    with Session(app.db.engine) as session:  # disabled after failing: listed first
        other = session.exec(select(Source).where(Source.name != "Frontier Brief")).first()
        assert other is not None
        other.enabled, other.error_count, other.last_error = False, 10, "HTTP 404 Not Found"
        other.disabled_at = datetime(2026, 11, 20, tzinfo=UTC)
        session.add(other)
        session.commit()
        name = other.name
    markdown = render_weekly(await weekly_of(app))
    assert (
        f"> ⚠️ 取得に問題のあるソース: {name}（停止中、10回連続で失敗: HTTP 404 Not Found）、"
        "Frontier Brief（5回連続で失敗" in markdown
    )


# ── the model's overview ────────────────────────────────────────────────────────────────────

NATURAL = {
    "summary": (
        "今週は43件の記事が集まり、推論向けハードウェアと業務AIエージェントの動きが目立った。"
        "Hoshizora AIは推論専用チップ「HZ-2」の量産を開始した（#01）。"
        "Kairo Roboticsは倉庫向けヒューマノイドのためにSeries Cで資金を調達した（#02）。"
    ),
    "topics": [
        {"name": "推論チップ「HZ-2」の量産", "refs": [1]},
        {"name": "Kairo Roboticsの資金調達", "refs": [2]},
        {"name": "国産オープンモデル", "refs": [4]},
    ],
    "categories": [
        {"category": "infra", "text": "Hoshizora AIが「HZ-2」の量産を始めた。"},
        {"category": "funding", "text": "Kairo RoboticsがSeries Cを実施。"},
    ],
    "outlook": "推論コストの低下と、オープンモデルの公開が続く見通し。",
}


@pytest.fixture
async def llm_app(
    tmp_path: Path, demo_database: Path, openai_server: OpenAIServer
) -> AsyncIterator[App]:
    settings = demo_llm_settings(tmp_path, demo_database, openai_server)
    async with open_app(settings, llm=True, clock=demo_clock) as app:
        yield app


async def test_the_models_overview_is_one_call_grounded_and_referenced(
    llm_app: App, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue_json(NATURAL)
    report = await weekly_of(llm_app)
    [request] = openai_server.requests
    assert request["response_format"]["type"] == "json_schema"
    assert request["max_tokens" if "max_tokens" in request else "max_completion_tokens"] == 1600
    user = request["messages"][-1]["content"]
    assert all(f"{item.ref} " in user for item in report.items)
    assert report.automatic is False
    assert report.summary == NATURAL["summary"]
    assert [t.refs for t in report.topics] == [(1,), (2,), (4,)]
    infra = next(c for c in report.categories if c.category == "infra")
    assert infra.text == "Hoshizora AIが「HZ-2」の量産を始めた。"
    markdown = render_weekly(report)
    refs, numbers = check_weekly_format(markdown, llm_app.taxonomy)
    assert "## 今週の動向\n" in markdown and "- **Kairo Roboticsの資金調達** (#02)" in markdown
    assert {int(r) for r in refs} <= set(numbers)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({**NATURAL, "topics": [{"name": "存在しない記事", "refs": [31]}]}, "#31"),
        ({**NATURAL, "outlook": "来週は＃４０の続報に注目。"}, "#40"),
        ({**NATURAL, "summary": "Googleが新しいAIエージェントを発表した（#01）。"}, "google"),
        ({**NATURAL, "outlook": "市場は2030年までに987兆円に達する。"}, "987"),
    ],
)
async def test_an_overview_with_a_wrong_reference_or_fact_is_replaced_by_counts(
    llm_app: App,
    openai_server: OpenAIServer,
    caplog: pytest.LogCaptureFixture,
    answer: dict[str, Any],
    problem: str,
) -> None:
    openai_server.enqueue_json(answer)
    report = await weekly_of(llm_app)
    assert report.automatic is True
    assert "## 今週の動向（自動抽出）" in render_weekly(report)
    [rejected] = [r for r in caplog.records if r.getMessage().startswith("weekly overview")]
    assert problem in str(getattr(rejected, "problems", "")).lower()


# ── chat ────────────────────────────────────────────────────────────────────────────────────


async def test_weekly_command_shows_the_stored_report(app: App) -> None:
    async def run(text: str) -> Any:
        ctx = handler_context(app, platform="test", user_id="U1")
        return await handle_command(
            ctx, text, briefing_config=app.briefing_config, weekly_config=app.weekly_config
        )

    latest = await run("weekly")
    assert latest.weekly is not None and latest.weekly.week == "2026-W47"
    again = await run("weekly 2026-W47")
    assert again.weekly == latest.weekly  # stored once, not rebuilt
    running = await run("weekly 2026-W48")
    assert running.weekly is None and "2026-W48 はまだ終わっていません" in running.title
    bad = await run("weekly 2026-13")
    assert bad.error and "YYYY-Www" in bad.title
    help_text = str((await run("help")).lines)
    assert "/ainews weekly [YYYY-Www]" in help_text


async def test_renderers_keep_limits_and_neutralise_mentions(app: App) -> None:
    report = await weekly_of(app)
    hostile = replace(
        report.items[0],
        title="@everyone <!channel> <@U123> 見出し" + "長" * 300,
        overview="[click](https://evil.example) @here " + "本文。" * 800,
    )
    report = replace(report, items=(hostile, *report.items[1:]))
    for block in weekly_item_blocks(hostile):
        text = str(block)
        assert "<!channel>" not in text and "<@U123>" not in text
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= MAX_SECTION
    assert len(weekly_blocks(report)) <= MAX_BLOCKS
    embeds = weekly_embeds(report)
    assert all(len(e.title or "") <= MAX_TITLE for e in embeds)
    assert all(len(e.description or "") <= MAX_DESCRIPTION for e in embeds)
    assert "@everyone" not in str([e.title for e in embeds])
    for message in pack_embeds(embeds):
        assert len(message) <= MAX_EMBEDS and sum(embed_size(e) for e in message) <= MAX_TOTAL
    markdown = render_weekly(report)
    assert "[click](" not in markdown and "@everyone" not in markdown


def test_migration_0006_keeps_every_claim_and_post_as_daily(tmp_path: Path) -> None:
    """SQLite rebuilds `briefings` for the new key: the posts of a thread (whose rows cascade
    from it) must survive, so that a thread being posted still resumes after the upgrade."""
    from alembic import command

    from storage.db import Database
    from storage.migrate import alembic_config, upgrade_to_head

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        command.upgrade(alembic_config(db.engine), "0005")
        with db.engine.begin() as connection:
            connection.execute(
                sql(
                    "INSERT INTO briefings (id, day, destination, status, payload, claimed_at, "
                    "attempts) VALUES (7, '2026-11-23', 'slack:C1', 'claimed', '{}', "
                    "'2026-11-23 00:00:00', 0)"
                )
            )
            connection.execute(
                sql(
                    "INSERT INTO briefing_posts (briefing_id, item_no, message_ref, posted_at) "
                    "VALUES (7, 1, 'ts1', '2026-11-23 00:00:00'), (7, 2, 'ts2', "
                    "'2026-11-23 00:00:01')"
                )
            )
            connection.execute(
                sql(
                    "INSERT INTO daily_briefings (day, payload, built_at) "
                    "VALUES ('2026-11-23', '{}', '2026-11-23 00:00:00')"
                )
            )
        upgrade_to_head(db.engine)
        with db.engine.connect() as connection:
            assert connection.execute(sql("SELECT id, kind FROM briefings")).all() == [(7, "daily")]
            posts = connection.execute(sql("SELECT item_no FROM briefing_posts")).all()
            assert sorted(p[0] for p in posts) == [1, 2]
            kinds = connection.execute(sql("SELECT kind FROM daily_briefings")).all()
            assert kinds == [("daily",)]
        # The week's report and the day's briefing of the same Monday are two documents.
        from storage.briefings import WEEKLY, claim_briefing

        monday = datetime(2026, 11, 23).date()
        weekly = db.call(
            claim_briefing,
            kind=WEEKLY,
            day=monday,
            destination="slack:C1",
            payload={},
            lease_seconds=60,
        )
        assert weekly is not None and weekly.kind == WEEKLY and weekly.id != 7
        with db.engine.connect() as connection:
            rows = connection.execute(sql("SELECT kind FROM briefings ORDER BY id")).all()
            assert rows == [("daily",), ("weekly",)]
    finally:
        db.dispose()
