"""Spend: `stats` against recorded usage, cost from prices, the budget's degradation steps and the
briefing footer, and re-summarising budget fallbacks on a later day — with the real `openai`
client against the OpenAI-compatible stand-in, whose answers are written as a model writes
them (paraphrased Japanese, the article's figures and names kept), not echoes of the input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from bot.app import App, briefing_for, handler_context, open_app, summarize_pending
from bot.config import SettingsError, load_settings
from bot.render.discord import briefing_parent_embed
from bot.render.markdown import render_briefing
from bot.render.slack import briefing_parent_blocks
from handlers.commands import handle_command
from handlers.reply import plain_text
from handlers.stats import collect_stats, period_bounds, stats_json
from jobs.briefing_model import from_payload, to_payload
from jobs.spend import (
    BUDGET_ALL,
    BUDGET_MINOR,
    BUDGET_SPENT,
    DEFAULT_PRICES,
    REJECTED,
    BudgetLevel,
    Price,
    cost_usd,
    degradation_notes,
    level_for,
    price_of,
)
from jobs.text import content_hash
from storage.articles import NewArticle, insert_new_articles
from storage.models import Summary, SummaryOutcome, TokenUsage
from storage.sources import SourceSpec, add_missing_sources, list_sources
from storage.usage import record_usage
from tests.conftest import make_settings
from tests.fakes.openai_server import OpenAIServer
from tests.test_cli import ainews
from tests.test_summarize import NIMBUS, ZEPHYRA, fenced

TOKYO = ZoneInfo("Asia/Tokyo")
# A Tuesday, 07:00 in Tokyo: still Monday 22:00 in UTC, so a stats period computed in UTC
# would be a different day, week start and month.
DAY1 = datetime(2026, 12, 1, 7, 0, tzinfo=TOKYO)


class Clock:
    """The app's clock, moved by the test (the next day comes when the test says so)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# -- articles and the answers a model writes for them -------------------------------------------

# No decisive verb in the headline, few figures, one outlet: importance 1 by the heuristic.
MEETUP = (
    "社内勉強会の様子を紹介します",
    "先週、社内でLLMの勉強会を開いた。"
    "参加者は12人で、評価手法について議論した。"
    "次回は来月に予定している。"
    "資料は社内で共有した。",
)
ORBITA = (
    "Orbita、液冷データセンターの新拠点を発表",
    "Orbitaは液冷方式のデータセンターを北海道に新設すると発表した。"
    "電力効率は従来比で40%改善する見込み。"
    "稼働は2027年春を予定している。"
    "投資額は300億円規模となる。",
)

ANSWERS: dict[str, dict[str, Any]] = {
    NIMBUS[0]: {
        "title_ja": "Nimbus Labsが新言語モデル「Nimbus-2」を発表",
        "overview": "Nimbus Labsは120億パラメータの言語モデルNimbus-2を発表した。"
        "前世代より30%高速で、4月1日からAPIで提供される。",
        "points": [
            "パラメータ数は120億",
            "前世代比で30%高速化し、日本語の推論精度も向上",
            "価格は100万トークンあたり2ドル",
        ],
        "why_important": "中規模モデルの高速化と低価格化は、API利用のコストを左右する。",
        "keywords": ["Nimbus-2", "言語モデル", "API"],
        "category": "research",
        "importance": 2,
    },
    ZEPHYRA[0]: {
        "title_ja": "Zephyra Robotics、物流ロボット開発で50億円を調達",
        "overview": "物流ロボットを開発するZephyra Roboticsが50億円の資金を調達した。"
        "資金は工場の自動化に充てられる。",
        "points": [
            "調達額は50億円",
            "資金は工場の自動化に使用",
            "従業員は現在80人で、海外展開も検討",
        ],
        "why_important": "物流の自動化への投資が続いていることを示す。",
        "keywords": ["物流ロボット", "資金調達", "自動化"],
        "category": "funding",
        "importance": 2,
    },
    MEETUP[0]: {
        "title_ja": "社内LLM勉強会の開催報告",
        "overview": "社内でLLMの勉強会が開かれ、12人が評価手法について議論した。",
        "points": ["参加者は12人", "テーマは評価手法", "次回は来月の予定"],
        "why_important": "社内での知識共有の取り組みの一例。",
        "keywords": ["LLM", "勉強会", "評価手法"],
        "category": "society",
        "importance": 1,
    },
    ORBITA[0]: {
        "title_ja": "Orbitaが北海道に液冷データセンターを新設へ",
        "overview": "Orbitaは北海道に液冷方式のデータセンターを新設すると発表した。"
        "電力効率は従来比40%の改善を見込み、2027年春に稼働する予定。",
        "points": [
            "冷却は液冷方式",
            "電力効率は従来比で40%改善の見込み",
            "投資額は300億円規模",
        ],
        "why_important": "AI向けの計算需要の拡大に伴い、電力効率の高い設備への投資が進む。",
        "keywords": ["データセンター", "液冷", "電力効率"],
        "category": "infra",
        "importance": 3,
    },
}


def model_answer(request: dict[str, Any]) -> dict[str, Any]:
    """The summary a model writes for the article fenced in the request (the trend request has
    no fence: it gets a trend analysis)."""
    user = request["messages"][-1]["content"]
    if "<<<ARTICLE" not in user:
        return {
            "themes": [{"name": "データセンター", "text": "液冷方式の新拠点が発表された（#1）。"}],
            "organisations": [{"name": "Orbita", "text": "北海道に新拠点を設ける。"}],
            "outlook": "電力効率を高める設備投資が続く見通し。",
        }
    return ANSWERS[fenced(request)[1]]


def invented_figure(request: dict[str, Any]) -> dict[str, Any]:
    """A model that adds a figure no article states, on the first try and on the re-ask."""
    answer = dict(model_answer(request))
    answer["overview"] += "市場規模は987兆円に達する。"
    return answer


# -- app and data helpers -----------------------------------------------------------------------


@asynccontextmanager
async def spend_app(
    tmp_path: Path, clock: Clock, server: OpenAIServer | None, **overrides: Any
) -> AsyncIterator[App]:
    env: dict[str, Any] = {"AINEWS_LLM_MAX_RETRIES": 0, "AINEWS_LLM_TIMEOUT": 10.0}
    if server is not None:
        env |= {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": server.base_url + "/v1"}
    env |= overrides
    async with open_app(make_settings(tmp_path, **env), llm=True, clock=clock) as app:
        yield app


async def add_articles(app: App, *articles: tuple[str, str], published: datetime) -> list[int]:
    """Store articles (title, body), the first published at `published` and each next one an
    hour later (so the last is the newest); returns their ids in order."""
    await app.db.run(
        add_missing_sources,
        specs=[
            SourceSpec(url="https://news.example/feed.xml", name="Example AI", category="japan")
        ],
    )
    [source] = await app.db.run(list_sources)
    new = [
        NewArticle(
            url=f"https://news.example/{content_hash(title, body)[:12]}",
            guid=None,
            title=title,
            language="ja",
            published_at=published + timedelta(hours=i),
            body_text=body,
            content_hash=content_hash(title, body),
        )
        for i, (title, body) in enumerate(articles)
    ]
    inserted = dict(
        await app.db.run(
            insert_new_articles, source_id=source.id, articles=new, first_seen_at=published
        )
    )
    return [inserted[a.url] for a in new]


def _summaries(*, session: Session) -> dict[int, Summary]:
    return {s.article_id: s for s in session.exec(select(Summary))}


def _outcomes(*, session: Session) -> list[SummaryOutcome]:
    return list(session.exec(select(SummaryOutcome).order_by(col(SummaryOutcome.id))))


def _usage(*, session: Session) -> list[TokenUsage]:
    return list(session.exec(select(TokenUsage).order_by(col(TokenUsage.id))))


async def summarize(app: App) -> dict[int, Summary]:
    async with asyncio.timeout(30):
        await summarize_pending(app)
    return await app.db.run(_summaries)


async def spend(app: App, day: date, tokens: int, model: str = "gpt-4o-mini") -> None:
    """Usage recorded earlier on `day` (say, by another process's calls)."""
    await app.db.run(
        record_usage,
        day=day,
        model=model,
        purpose="summary",
        prompt_tokens=tokens,
        completion_tokens=0,
    )


# -- prices and levels --------------------------------------------------------------------------


def test_prices_match_models_and_their_dated_snapshots_only() -> None:
    assert price_of("gpt-4o-mini", DEFAULT_PRICES) == Price(0.15, 0.60)
    assert price_of("gpt-4o-mini-2024-07-18", DEFAULT_PRICES) == Price(0.15, 0.60)
    assert price_of("gpt-4o-2024-08-06", DEFAULT_PRICES) == Price(2.50, 10.00)
    assert price_of("gpt-5-pro", DEFAULT_PRICES) is None  # not guessed from gpt-5
    assert price_of("local-llama", DEFAULT_PRICES) is None
    for model in ("gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-5", "gpt-5-mini"):
        assert model in DEFAULT_PRICES
    # 1.5M input at $0.15 + 0.25M output at $0.60 = $0.225 + $0.15
    assert cost_usd(
        Price(0.15, 0.60), prompt_tokens=1_500_000, completion_tokens=250_000
    ) == pytest.approx(0.375)


def test_prices_setting_merges_over_the_defaults_and_bad_json_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AINEWS_MODEL_PRICES", '{"local-llama": {"input": 0, "output": 0.5}}')
    prices = load_settings(_env_file=None).model_prices
    assert prices["local-llama"] == Price(0.0, 0.5)
    assert prices["gpt-4o-mini"] == DEFAULT_PRICES["gpt-4o-mini"]
    for bad, said in (
        ("{gpt-4o: 1}", "expected JSON"),
        ('{"gpt-4o": {"input": 2.5}}', 'gpt-4o: expected {"input": USD, "output": USD}'),
        ('{"gpt-4o": {"input": -1, "output": 2}}', "numbers ≥ 0"),
    ):
        monkeypatch.setenv("AINEWS_MODEL_PRICES", bad)
        with pytest.raises(SettingsError) as caught:
            load_settings(_env_file=None)
        assert str(caught.value).startswith("AINEWS_MODEL_PRICES: ") and said in str(caught.value)
        assert "\n" not in str(caught.value)


def test_levels_step_down_in_order_as_the_budget_runs_low() -> None:
    shares = [1.0, 0.51, 0.50, 0.26, 0.25, 0.11, 0.10, 0.0]
    assert [level_for(s) for s in shares] == [
        BudgetLevel.NORMAL,
        BudgetLevel.NORMAL,
        BudgetLevel.LEAN_TREND,
        BudgetLevel.LEAN_TREND,
        BudgetLevel.MINOR_EXTRACTIVE,
        BudgetLevel.MINOR_EXTRACTIVE,
        BudgetLevel.ALL_EXTRACTIVE,
        BudgetLevel.ALL_EXTRACTIVE,
    ]


def test_footer_names_each_step_in_order_and_says_what_happens_next() -> None:
    notes = degradation_notes(
        lean_trend=True, causes={BUDGET_SPENT: 2, BUDGET_ALL: 3, BUDGET_MINOR: 1, REJECTED: 4}
    )
    starts = ("トークン予算の残りが50%", "予算の残りが25%", "予算の残りが10%", "1日の", "これらの")
    assert len(notes) == len(starts)
    assert all(n.startswith(start) for n, start in zip(notes, starts, strict=True))
    assert "重要度1の記事1件" in notes[1] and "3件の記事" in notes[2] and "2件の記事" in notes[3]
    # A rejected reply is no budget matter; no budget step, no footer.
    assert degradation_notes(lean_trend=False, causes={REJECTED: 4}) == ()


# -- stats --------------------------------------------------------------------------------------


def test_periods_are_local_days_from_the_passed_clock() -> None:
    today = DAY1.date()
    assert period_bounds(today) == {
        "today": (date(2026, 12, 1), date(2026, 12, 1)),
        "week": (date(2026, 11, 30), date(2026, 12, 1)),  # ISO week: from Monday
        "month": (date(2026, 12, 1), date(2026, 12, 1)),
    }


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_stats_figures_match_recorded_usage_and_outcomes(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    database = {}
    if backend == "postgresql":
        database = {"DATABASE_URL": request.getfixturevalue("postgres_url")}
    clock = Clock(DAY1)
    rows = [  # (day, model, prompt, completion)
        (date(2026, 12, 1), "gpt-4o-mini", 12_000, 3_000),  # today
        (date(2026, 12, 1), "gpt-4.1", 2_000, 500),  # today, another model
        (date(2026, 12, 1), "local-llama", 700, 300),  # today, no price
        (date(2026, 11, 30), "gpt-4o-mini", 40_000, 9_000),  # Monday: this week, last month
        (date(2026, 11, 29), "gpt-4o-mini", 99_000, 1_000),  # Sunday: last week
        (date(2026, 12, 2), "gpt-4o-mini", 55_555, 5_555),  # tomorrow: in no period
    ]
    outcomes = [  # (day, method, cause, reasks, resummary)
        (date(2026, 12, 1), "llm", None, 1, False),
        (date(2026, 12, 1), "llm", None, 0, False),
        (date(2026, 12, 1), "cached", None, 0, False),
        (date(2026, 12, 1), "extractive", BUDGET_MINOR, 0, False),
        (date(2026, 12, 1), "extractive", REJECTED, 1, False),
        (date(2026, 12, 1), "llm", None, 0, True),
        (date(2026, 11, 30), "extractive", BUDGET_ALL, 0, False),
        (date(2026, 11, 30), "cached", None, 0, True),
        (date(2026, 11, 29), "extractive", "api_error", 0, False),
    ]
    async with spend_app(
        tmp_path, clock, None, AINEWS_DAILY_TOKEN_BUDGET=100_000, **database
    ) as app:
        for day, model, prompt, completion in rows:
            await app.db.run(
                record_usage,
                day=day,
                model=model,
                purpose="summary",
                prompt_tokens=prompt,
                completion_tokens=completion,
            )

        def add_outcomes(*, session: Session) -> None:
            for i, (day, method, cause, reasks, again) in enumerate(outcomes):
                session.add(
                    SummaryOutcome(
                        day=day,
                        article_id=i + 1,
                        method=method,
                        cause=cause,
                        reasks=reasks,
                        resummary=again,
                    )
                )

        await app.db.run(add_outcomes)
        stats = stats_json(await collect_stats(handler_context(app)))
        reply = await handle_command(
            handler_context(app, platform="test", user_id="U1"),
            "stats",
            briefing_config=app.briefing_config,
        )

    prices = app.settings.model_prices

    def expected(first: date, last: date) -> dict[str, Any]:
        mine = [r for r in rows if first <= r[0] <= last]
        cost = sum(
            (p * prices[m].input + c * prices[m].output) / 1e6 for _, m, p, c in mine if m in prices
        )
        picked = [o for o in outcomes if first <= o[0] <= last]
        fallbacks: dict[str, int] = {}
        for o in picked:
            if o[1] == "extractive":
                fallbacks[o[2] or "unknown"] = fallbacks.get(o[2] or "unknown", 0) + 1
        return {
            "prompt_tokens": sum(r[2] for r in mine),
            "completion_tokens": sum(r[3] for r in mine),
            "calls": len(mine),
            "cost_usd": pytest.approx(cost, abs=1e-6),
            "unpriced_models": sorted({m for _, m, _, _ in mine if m not in prices}),
            "summarized": sum(1 for o in picked if not o[4]),
            "llm": sum(1 for o in picked if o[1] == "llm" and not o[4]),
            "cached": sum(1 for o in picked if o[1] == "cached" and not o[4]),
            "extractive": sum(1 for o in picked if o[1] == "extractive"),
            "resummarized": sum(1 for o in picked if o[4]),
            "cache_hits": sum(1 for o in picked if o[1] == "cached"),
            "reasks": sum(o[3] for o in picked),
            "fallbacks": fallbacks,
        }

    for name, first, last in (
        ("today", date(2026, 12, 1), date(2026, 12, 1)),
        ("week", date(2026, 11, 30), date(2026, 12, 1)),
        ("month", date(2026, 12, 1), date(2026, 12, 1)),
    ):
        period = stats[name]
        assert (period["first"], period["last"]) == (first.isoformat(), last.isoformat())
        for key, value in expected(first, last).items():
            assert period[key] == value, (name, key)
    # By hand, today: 12,000×0.15 + 3,000×0.60 (gpt-4o-mini) + 2,000×2.00 + 500×8.00 (gpt-4.1)
    assert stats["today"]["cost_usd"] == pytest.approx((1800 + 1800 + 4000 + 4000) / 1e6)
    assert stats["today"]["models"]["local-llama"]["cost_usd"] is None
    assert stats["budget"] == {
        "daily_limit": 100_000,
        "used_today": 18_500,
        "remaining_share": 0.815,
        "level": 0,
    }
    text = plain_text(reply)
    assert not reply.error and "2026-12-01" in reply.title
    assert "今日（2026-12-01）: 18,500 トークン" in text
    assert "今週（2026-11-30〜2026-12-01）: 67,500 トークン" in text
    assert "価格未設定: local-llama" in text
    assert "予算節約（重要度1） 1件" in text and "検証で不採用 1件" in text
    assert "18,500 / 100,000 トークン（残り 82%、通常）" in text


# -- degradation --------------------------------------------------------------------------------


async def test_budget_degrades_trend_then_minor_items_then_everything(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    """Remaining 40 %: summaries by the model, the trend leaner. 20 %: the importance-1 article
    extractive, the others by the model. 5 %: everything extractive. The briefing footer says
    each step that touched it, in Japanese."""
    openai_server.responder = model_answer
    budget = 200_000
    briefing_day = DAY1.date()  # window: 24 h before 08:30 on DAY1
    published = DAY1 - timedelta(hours=6)
    results = {}
    for label, used in (("lean", 120_000), ("minor", 160_000), ("all", 190_000)):
        folder = tmp_path / label
        folder.mkdir()
        openai_server.requests.clear()
        clock = Clock(DAY1)
        async with spend_app(folder, clock, openai_server, AINEWS_DAILY_TOKEN_BUDGET=budget) as app:
            await spend(app, DAY1.date(), used)
            ids = await add_articles(app, NIMBUS, MEETUP, ORBITA, published=published)
            summaries = await summarize(app)
            summary_requests = list(openai_server.requests)
            briefing = await briefing_for(app, briefing_day)
        results[label] = (ids, summaries, summary_requests, briefing, list(openai_server.requests))

    ids, summaries, requests, briefing, all_requests = results["lean"]
    assert [summaries[i].method for i in ids] == ["llm"] * 3
    [trend_request] = all_requests[len(requests) :]
    assert trend_request["max_completion_tokens"] == 400  # half of AINEWS_MAX_OUTPUT_TOKENS
    assert briefing.footer == (
        "トークン予算の残りが50%以下になったため、トレンド分析は入力と出力を半分に"
        "減らして作成しました。",
    )

    ids, summaries, requests, briefing, _ = results["minor"]
    nimbus, meetup, orbita = (summaries[i] for i in ids)
    assert (nimbus.method, orbita.method) == ("llm", "llm")
    assert (meetup.method, meetup.fallback, meetup.importance) == ("extractive", BUDGET_MINOR, 1)
    assert sorted(fenced(r)[1] for r in requests) == sorted([NIMBUS[0], ORBITA[0]])
    assert briefing.footer[1:] == (
        "予算の残りが25%以下になったため、重要度1の記事1件はモデルを使わず自動抽出で要約しました。",
        "これらの記事は、予算に余裕のある日にモデルで要約し直します。",
    )

    ids, summaries, requests, briefing, _ = results["all"]
    assert requests == []
    assert {(summaries[i].method, summaries[i].fallback) for i in ids} == {
        ("extractive", BUDGET_ALL)
    }
    footer = "予算の残りが10%以下になったため、3件の記事はすべて自動抽出で要約しました。"
    assert footer in briefing.footer
    # Said below the briefing on every platform, and kept by the stored payload.
    assert from_payload(to_payload(briefing)).footer == briefing.footer
    markdown = render_briefing(briefing)
    last_line = "> これらの記事は、予算に余裕のある日にモデルで要約し直します。"
    assert markdown.rstrip().endswith("\n" + last_line)
    assert markdown.index("### 今後の展望") < markdown.index(footer)
    slack = briefing_parent_blocks(briefing)
    assert any(footer in json.dumps(b, ensure_ascii=False) for b in slack[-3:])
    embed = briefing_parent_embed(briefing)
    assert embed.footer.text is not None and footer in embed.footer.text


async def test_no_footer_when_the_budget_was_never_low(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.responder = model_answer
    clock = Clock(DAY1)
    async with spend_app(tmp_path, clock, openai_server) as app:
        await add_articles(app, NIMBUS, ORBITA, published=DAY1 - timedelta(hours=3))
        await summarize(app)
        briefing = await briefing_for(app, DAY1.date())
    assert briefing.footer == ()
    assert openai_server.requests[-1]["max_completion_tokens"] == 800
    assert "予算" not in render_briefing(briefing)


# -- re-summarising -----------------------------------------------------------------------------


async def test_budget_fallbacks_are_resummarised_newest_first_on_a_later_day(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    clock = Clock(DAY1)
    async with spend_app(
        tmp_path,
        clock,
        openai_server,
        AINEWS_DAILY_TOKEN_BUDGET=100_000,
        AINEWS_RESUMMARIZE_PER_RUN=2,
    ) as app:
        # Day 1: the model invents a figure twice for one article (rejected: never retried) ...
        openai_server.responder = invented_figure
        [rejected] = await add_articles(app, ZEPHYRA, published=DAY1 - timedelta(hours=9))
        await summarize(app)
        # ... then the day's budget is nearly gone: the next three are extractive.
        await spend(app, DAY1.date(), 95_000)
        oldest, middle, newest = await add_articles(
            app, NIMBUS, MEETUP, ORBITA, published=DAY1 - timedelta(hours=5)
        )
        day1 = await summarize(app)
        assert day1[rejected].fallback == REJECTED
        assert {day1[i].fallback for i in (oldest, middle, newest)} == {BUDGET_ALL}
        # Re-summarising waits for a later day: the same day has no budget for it anyway,
        # and a run now asks the model nothing.
        openai_server.requests.clear()
        await summarize(app)
        assert openai_server.requests == []

        # Day 2: a fresh budget. The two newest fallbacks (the bound per run) are summarised by
        # the model, newest first; the rejected one is not asked again.
        clock.now = DAY1 + timedelta(days=1)
        openai_server.responder = model_answer
        day2 = await summarize(app)
        asked = [fenced(r)[1] for r in openai_server.requests]
        assert asked == [ORBITA[0], MEETUP[0]]
        assert day2[newest].method == "llm" and day2[newest].fallback is None
        assert day2[newest].title_ja == ANSWERS[ORBITA[0]]["title_ja"]
        assert day2[middle].method == "llm"
        assert day2[newest].id == day1[newest].id  # same row: a DM bundle does not resend it
        assert (day2[oldest].method, day2[oldest].fallback) == ("extractive", BUDGET_ALL)
        assert (day2[rejected].method, day2[rejected].fallback) == ("extractive", REJECTED)

        # The next run (same day, budget left) takes the last one.
        openai_server.requests.clear()
        day2 = await summarize(app)
        assert [fenced(r)[1] for r in openai_server.requests] == [NIMBUS[0]]
        assert day2[oldest].method == "llm"

        outcomes = await app.db.run(_outcomes)
        usage = await app.db.run(_usage)
        stats = stats_json(await collect_stats(handler_context(app)))

    again = [o for o in outcomes if o.resummary]
    assert [o.article_id for o in again] == [newest, middle, oldest]
    assert {o.day for o in again} == {date(2026, 12, 2)}
    today = stats["today"]
    assert today["resummarized"] == 3 and today["summarized"] == 0
    day2_usage = [u for u in usage if u.day == date(2026, 12, 2)]
    assert today["prompt_tokens"] == sum(u.prompt_tokens for u in day2_usage)
    assert today["completion_tokens"] == sum(u.completion_tokens for u in day2_usage)
    assert today["calls"] == 3
    # Day 1, seen from day 2: this week holds both days' fallbacks and re-asks.
    week = stats["week"]
    assert week["fallbacks"] == {BUDGET_ALL: 3, REJECTED: 1}
    assert week["reasks"] == 1 and week["summarized"] == 4


# -- the command line ---------------------------------------------------------------------------


async def test_cli_stats_json(tmp_path: Path) -> None:
    """`ainews stats --json` in a real process, on the real clock: the figures are checked
    against the day the command reports, so they hold on whatever date the test runs."""
    from storage.db import Database
    from storage.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    db = Database(url)
    upgrade_to_head(db.engine)
    today = datetime.now(TOKYO).date()
    rows = [(today - timedelta(days=d), 1000 * (d + 1), 100 * (d + 1)) for d in range(0, 40, 3)]
    try:
        for day, prompt, completion in rows:
            await db.run(
                record_usage,
                day=day,
                model="gpt-4.1-mini",
                purpose="summary",
                prompt_tokens=prompt,
                completion_tokens=completion,
            )
    finally:
        db.dispose()

    result = await ainews(tmp_path, "stats", "--json")
    assert result.code == 0, result.err
    stats = json.loads(result.out)
    reported = date.fromisoformat(stats["day"])
    assert reported - today in (timedelta(0), timedelta(days=1))  # midnight may pass
    for name, (first, last) in period_bounds(reported).items():
        mine = [r for r in rows if first <= r[0] <= last]
        period = stats[name]
        assert period["prompt_tokens"] == sum(r[1] for r in mine), name
        assert period["completion_tokens"] == sum(r[2] for r in mine), name
        cost = sum(p * 0.40 + c * 1.60 for _, p, c in mine) / 1e6
        assert period["cost_usd"] == pytest.approx(cost, abs=1e-6), name
    assert stats["budget"]["daily_limit"] == 500_000

    text = await ainews(tmp_path, "stats")
    assert text.code == 0 and "今日（" in text.out and "推定 $" in text.out
