"""The daily briefing: selection, window, and the Markdown format of the shared doc."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.demo.run import run_demo
from bot.render.common import considered
from bot.render.markdown import render_briefing
from jobs.briefing import BriefingConfig, briefing_day_for, briefing_window
from jobs.briefing_model import Briefing, BriefingItem, BriefingSection, Highlight, Link, Trend
from storage.taxonomy import Taxonomy
from tests.conftest import demo_llm_settings, make_settings
from tests.fakes.openai_server import OpenAIServer

TOKYO = ZoneInfo("Asia/Tokyo")
CONFIG = BriefingConfig(tz=TOKYO, briefing_time=time(8, 30), size=20, max_output_tokens=800)


def check_markdown_format(markdown: str, taxonomy: Taxonomy) -> list[str]:
    """Every rule of the daily-briefing format that can be checked on the text."""
    lines = markdown.split("\n")
    assert re.fullmatch(r"# AI News - \d{4}-\d{2}-\d{2}", lines[0]), lines[0]
    assert lines[1] == ""
    stats = re.fullmatch(
        r"> 🔍 調査カテゴリ: (\d+) / 調査記事数: (約)?(\d+)件 / 掲載: (\d+)件", lines[2]
    )
    assert stats, lines[2]
    assert lines[3:6] == ["", "---", ""]
    headings = [line[3:] for line in lines if line.startswith("## ")]
    labels = [c.label for c in taxonomy.categories]
    sections = [h for h in headings if h in labels]
    assert headings[-1].startswith("📊 本日のトレンド分析")
    assert sections == sorted(sections, key=labels.index), "sections in category order"
    assert len(sections) == len(set(sections)), "one section per category"
    numbers = [int(m.group(1)) for m in re.finditer(r"^### (\d+)\. ", markdown, re.M)]
    assert numbers == list(range(1, len(numbers) + 1)), "numbered 1..N across the briefing"
    assert int(stats.group(4)) == len(numbers)
    items = re.split(r"^### \d+\. ", markdown, flags=re.M)[1:]
    for item in items:
        body = item.split("\n---\n")[0]
        assert "| 項目 | 内容 |\n|------|------|\n| ソース | [" in body
        assert re.search(r"^\| 重要度 \| ⭐{1,3} \|$", body, re.M)
        assert re.search(r"^\*\*概要\*\*: \S", body, re.M)
        points = body.split("**詳細ポイント**:\n")[1].split("\n\n")[0].split("\n")
        assert len(points) == 3 and all(p.startswith("- ") for p in points), points
        assert re.search(r"^\*\*なぜ重要か\*\*: \S", body, re.M)
        assert re.search(r"^\*\*関連キーワード\*\*: \S", body, re.M)
    trend = markdown.split("## 📊 本日のトレンド分析")[1]
    for heading in ("### 主要テーマ", "### 注目企業・組織", "### 今後の展望"):
        assert heading in trend
    return headings


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    from bot.config import DEFAULTS_DIR

    return Taxonomy.load(DEFAULTS_DIR / "categories.toml")


def test_window_is_the_24_hours_before_the_briefing_time_in_the_zone() -> None:
    start, end = briefing_window(date(2026, 3, 2), CONFIG)
    assert end == datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert (end - start).total_seconds() == 24 * 3600
    assert briefing_day_for(datetime(2026, 3, 1, 23, 29, tzinfo=UTC), CONFIG) == date(2026, 3, 2)
    assert briefing_day_for(datetime(2026, 3, 1, 23, 30, tzinfo=UTC), CONFIG) == date(2026, 3, 3)


def test_article_count_is_rounded_with_yaku_from_100() -> None:
    assert considered(99) == "99件"
    assert considered(100) == "約100件"
    assert considered(184) == "約180件"
    assert considered(186) == "約190件"


def _item(number: int, **overrides: object) -> BriefingItem:
    values: dict[str, object] = {
        "number": number,
        "article_id": number,
        "title": f"見出し{number}",
        "source": Link("Example", f"https://news.example.com/{number}"),
        "importance": 2,
        "overview": "概要の文。",
        "points": ("一つ目", "二つ目", "三つ目"),
        "why_important": "理由。",
        "keywords": ("推論", "チップ"),
        "category": "infra",
        "published_at": None,
        "automatic": False,
    }
    values.update(overrides)
    return BriefingItem(**values)  # type: ignore[arg-type]


def _briefing(*items: BriefingItem, automatic: bool = False, considered: int = 180) -> Briefing:
    return Briefing(
        day=date(2026, 3, 2),
        categories_considered=10,
        articles_considered=considered,
        sections=(BriefingSection("infra", "🖥️ インフラ・ハードウェア", items),),
        trend=Trend(
            themes=(Highlight("推論コストの低下", "……"),),
            organisations=(Highlight("〇〇社", "……"),),
            outlook="……",
            automatic=automatic,
        ),
        window_start=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
        window_end=datetime(2026, 3, 2, 23, 30, tzinfo=UTC),
    )


def test_markdown_matches_the_shared_example_line_for_line() -> None:
    item = _item(
        1,
        title="〇〇社、推論専用チップの量産を開始",
        source=Link("Example Tech News", "https://news.example.com/2026/03/02/inference-chip"),
        importance=3,
        overview="〇〇社が推論専用チップの量産を開始した。",
        points=(
            "前世代比で電力あたりの推論性能が2倍",
            "最初の出荷先は国内の3データセンター",
            "価格は公表されていない",
        ),
        why_important="推論コストの低下は、生成AIを常時稼働させるサービスの採算を左右する。",
        keywords=("推論チップ", "データセンター", "電力効率"),
        related=(
            Link("Another Outlet", "https://another.example.org/chip"),
            Link("英文記事", "https://en.example.com/chip"),
        ),
    )
    markdown = render_briefing(_briefing(item))
    expected_head = """# AI News - 2026-03-02

> 🔍 調査カテゴリ: 10 / 調査記事数: 約180件 / 掲載: 1件

---

## 🖥️ インフラ・ハードウェア

### 1. 〇〇社、推論専用チップの量産を開始

| 項目 | 内容 |
|------|------|
| ソース | [Example Tech News](https://news.example.com/2026/03/02/inference-chip) |
| 重要度 | ⭐⭐⭐ |

**概要**: 〇〇社が推論専用チップの量産を開始した。

**詳細ポイント**:
- 前世代比で電力あたりの推論性能が2倍
- 最初の出荷先は国内の3データセンター
- 価格は公表されていない

**なぜ重要か**: 推論コストの低下は、生成AIを常時稼働させるサービスの採算を左右する。

**関連キーワード**: 推論チップ, データセンター, 電力効率

**関連報道**: [Another Outlet](https://another.example.org/chip), [英文記事](https://en.example.com/chip)

---

## 📊 本日のトレンド分析

### 主要テーマ
**推論コストの低下**: ……

### 注目企業・組織
**〇〇社**: ……

### 今後の展望
……
"""
    assert markdown == expected_head


def test_related_coverage_only_for_multi_source_stories_and_automatic_is_marked() -> None:
    markdown = render_briefing(_briefing(_item(1, automatic=True), automatic=True, considered=12))
    assert "**関連報道**" not in markdown
    assert "**概要**: 概要の文。（自動抽出）" in markdown
    assert "## 📊 本日のトレンド分析（自動抽出）" in markdown
    assert "調査記事数: 12件" in markdown


def test_untrusted_text_is_inert_in_markdown() -> None:
    hostile = "@everyone <!channel> <@U123ABC> [click](https://evil.example) **bold** | pipe"
    markdown = render_briefing(
        _briefing(_item(1, title=hostile, overview=hostile, points=(hostile, "b", "c")))
    )
    assert "@everyone" not in markdown and "<!channel>" not in markdown
    assert "<@U123ABC>" not in markdown
    assert "[click](https://evil.example)" not in markdown
    assert "@\u200beveryone" in markdown  # still readable, no longer a mention
    assert "\\| pipe" in markdown  # cannot break the table


async def test_demo_briefing_follows_every_format_rule(
    settings: Settings, taxonomy: Taxonomy
) -> None:
    result = await run_demo(settings)
    briefing = result.briefing
    markdown = render_briefing(briefing)

    assert briefing.day == date(2026, 11, 23)  # the newest day of the sample feeds
    check_markdown_format(markdown, taxonomy)
    items = briefing.items
    assert len(items) == settings.briefing_size
    assert briefing.articles_considered >= len(items)
    # One item per story: no URL or story shown twice, near-duplicates listed as 関連報道.
    urls = [i.source.url for i in items] + [r.url for i in items for r in i.related]
    assert len(urls) == len(set(urls))
    assert any(i.related for i in items)
    assert len({i.title for i in items}) == len(items)
    # Ordered by category, then importance.
    keys = [(taxonomy.order(i.category), -i.importance) for i in items]
    assert keys == sorted(keys)
    # Offline: every item and the trend are marked as automatic.
    assert all(i.automatic for i in items) and briefing.trend.automatic
    assert markdown.count("（自動抽出）") == len(items) + 1
    # The hostile sample item, if selected, is inert.
    assert "@everyone" not in markdown and "<!channel>" not in markdown
    window_start, window_end = briefing.window_start, briefing.window_end
    for item in items:
        if item.published_at is not None:
            assert window_start <= item.published_at < window_end


async def test_briefing_size_is_configurable_and_picks_the_most_important(
    settings: Settings,
) -> None:
    small = settings.model_copy(update={"briefing_size": 5})
    result = await run_demo(small)
    items = result.briefing.items
    assert len(items) == 5
    assert [i.number for i in items] == [1, 2, 3, 4, 5]
    full = await run_demo(settings)
    cutoff = sorted((i.importance for i in full.briefing.items), reverse=True)[4]
    assert min(i.importance for i in items) >= cutoff - 1


async def test_trend_analysis_by_the_model_is_grounded_or_replaced_by_counts(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    """One call over the selected items; a trend that invents a figure is not published."""
    from bot.app import briefing_for, open_app

    database = (await run_demo(make_settings(tmp_path))).database  # summarised articles
    llm_settings = demo_llm_settings(tmp_path, database, openai_server)
    grounded = {
        "themes": [{"name": "推論チップ", "text": "Hoshizora AIが量産を開始した（#1）。"}],
        "organisations": [{"name": "Hoshizora AI", "text": "推論チップHZ-2の量産を開始。"}],
        "outlook": "推論向けハードウェアの競争が続く見通し。",
    }
    invented = {**grounded, "outlook": "市場は2030年までに987兆円に達する。"}
    openai_server.enqueue_json(grounded)
    openai_server.enqueue_json(invented)
    async with open_app(llm_settings, llm=True) as app:
        good = await briefing_for(app, date(2026, 11, 23))
        bad = await briefing_for(app, date(2026, 11, 23))

    assert len(openai_server.requests) == 2
    request = openai_server.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    user = request["messages"][-1]["content"]
    assert all(f"[{item.number}] " in user for item in good.items)  # every selected item
    assert good.trend.automatic is False
    assert good.trend.outlook == grounded["outlook"]
    assert "## 📊 本日のトレンド分析\n" in render_briefing(good)
    assert bad.trend.automatic is True  # "987" is in no article: counts instead
    assert "987" not in render_briefing(bad)
