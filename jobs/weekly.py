"""The weekly report: the ISO week's most important stories and an overview of the week.

A week runs from Monday 00:00 to the next Monday 00:00 in the configured zone; an article
belongs to the week its publication time (first-seen time when undated) falls in, exactly as
the daily window counts it. Near-duplicates are one item (the story grouping of the poller,
as in the daily briefing), chosen by the daily selection and listed by importance.

The overview (今週の動向, 注目トピック, カテゴリー別動向, 今後の展望) is one model call over the
items' stored summaries, checked like the daily trend: every statement grounded in the items,
every `#NN` an item of the report; otherwise, and without a model, it is computed from counts
and marked （自動抽出）. The category counts are the database's, never the model's.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import NamedTuple

from jobs.briefing import Story, group_by_story, related_links, select_stories
from jobs.briefing_model import Link
from jobs.grounding import GENERIC_TERMS, grounding_problems
from jobs.llm import LLM, LLMError
from jobs.prompts import weekly_prompt, weekly_schema
from jobs.text import nfkc
from jobs.weekly_model import (
    CategoryTrend,
    IsoWeek,
    Topic,
    WeeklyItem,
    WeeklyReport,
    ref,
    weekly_from_payload,
    weekly_to_payload,
)
from storage.briefings import (
    WEEKLY,
    candidates_between,
    category_counts_between,
    daily_briefing,
    save_daily_briefing,
)
from storage.clock import ensure_utc
from storage.db import Database
from storage.sources import unhealthy_sources
from storage.taxonomy import Taxonomy

log = logging.getLogger(__name__)

JAPAN, ABROAD = "日本", "海外"
_REF = re.compile(r"#\s?(\d{1,3})")


@dataclass(frozen=True, slots=True)
class WeeklyConfig:
    tz: tzinfo
    size: int
    max_output_tokens: int
    material_tokens: int = 8000  # the items' summaries given to the model, at most


def week_window(week: IsoWeek, tz: tzinfo) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in `tz`, as UTC."""
    start = datetime.combine(week.monday, time(0), tzinfo=tz)
    end = datetime.combine(week.monday + timedelta(days=7), time(0), tzinfo=tz)
    return ensure_utc(start), ensure_utc(end)


def last_complete_week(now: datetime, tz: tzinfo) -> IsoWeek:
    """The newest week that has ended at `now`: the one before the week `now` is in."""
    return IsoWeek.of(now.astimezone(tz).date()).shifted(-1)


async def build_weekly(
    *, db: Database, week: IsoWeek, config: WeeklyConfig, taxonomy: Taxonomy, llm: LLM | None
) -> WeeklyReport:
    start, end = week_window(week, config.tz)
    candidates = await db.run(candidates_between, start=start, end=end)
    counts = await db.run(category_counts_between, start=start, end=end)
    failing = await db.run(unhealthy_sources)
    chosen = select_stories(group_by_story(candidates), size=config.size, end=end)
    ordered = sorted(
        chosen,
        key=lambda s: (
            -s.importance,
            -len({m.source.id for m in s.members}),
            -s.when.timestamp(),
            s.lead.article.id or 0,
        ),
    )
    items = tuple(_item(number, story, config.tz) for number, story in enumerate(ordered, start=1))
    collected = sum(counts.values())
    overview = None
    if llm is not None and items:
        overview = await _model_overview(items, counts, collected, taxonomy, llm, config)
    if overview is None:
        overview = _counted_overview(items, counts, collected, taxonomy)
    summary, topics, texts, outlook, automatic = overview
    categories = tuple(
        CategoryTrend(
            category=slug,
            heading=taxonomy.label_of(slug),
            count=counts[slug],
            text=texts.get(slug) or _counted_category_text(slug, items),
        )
        for slug in sorted(counts, key=lambda s: (taxonomy.order(s), s))
        if counts[slug]
    )
    return WeeklyReport(
        week=str(week),
        start=week.monday,
        end=week.sunday,
        articles_collected=collected,
        summary=summary,
        topics=topics,
        categories=categories,
        outlook=outlook,
        automatic=automatic,
        items=items,
        unhealthy_sources=tuple(
            f"{s.name}（{'停止中、' if not s.enabled else ''}{s.error_count}回連続で失敗: "
            f"{_first_words(s.last_error or '')}）"
            for s in failing
        ),
    )


async def stored_weekly(
    *,
    db: Database,
    week: IsoWeek,
    config: WeeklyConfig,
    taxonomy: Taxonomy,
    llm: LLM | None,
    now: datetime,
) -> WeeklyReport | None:
    """The stored report of `week`, built and stored first if the week has ended; None for a
    week still running (its report does not exist yet). Built once: chat requests and the CLI
    never spend model tokens on a report twice."""
    payload = await db.run(daily_briefing, day=week.monday, kind=WEEKLY)
    if payload is not None:
        return weekly_from_payload(payload)
    if week_window(week, config.tz)[1] > now:
        return None
    built = await build_weekly(db=db, week=week, config=config, taxonomy=taxonomy, llm=llm)
    return await _store(db, built, replace=False)


async def build_and_store_weekly(
    *, db: Database, week: IsoWeek, config: WeeklyConfig, taxonomy: Taxonomy, llm: LLM | None
) -> WeeklyReport:
    """The scheduled build, after the last poll: it replaces an earlier build (a request made
    before the week's last articles arrived)."""
    built = await build_weekly(db=db, week=week, config=config, taxonomy=taxonomy, llm=llm)
    return await _store(db, built, replace=True)


async def _store(db: Database, report: WeeklyReport, *, replace: bool) -> WeeklyReport:
    """Store the report (over an earlier build with `replace`); the stored one is returned,
    which without `replace` may be another process's build of the same week."""
    stored = await db.run(
        save_daily_briefing,
        day=report.start,
        payload=weekly_to_payload(report),
        replace=replace,
        kind=WEEKLY,
    )
    return weekly_from_payload(stored)


def _item(number: int, story: Story, tz: tzinfo) -> WeeklyItem:
    """詳細 from the stored summary: its first 詳細ポイント is the 背景, the other two the
    主要ポイント, and なぜ重要か the 影響と展望 (no model call per item)."""
    lead = story.lead
    summary = lead.summary
    points = [p for p in summary.points if p.strip()]
    return WeeklyItem(
        number=number,
        article_id=lead.article.id or 0,
        title=summary.title_ja,
        source=_link(story),
        country=JAPAN if lead.source.language == "ja" else ABROAD,
        published_at=story.when.astimezone(tz),  # 公開日 is the local date
        category=summary.category,
        importance=story.importance,
        overview=summary.overview,
        background=points[0] if points else summary.overview,
        main_points=_sentences(points[1:3]) or summary.overview,
        impact=summary.why_important,
        automatic=summary.method != "llm",
        related=related_links(story),
        keywords=tuple(summary.keywords),
    )


def _sentences(parts: list[str]) -> str:
    """Sentences as one text: Japanese ones end in 。 and follow on directly, others get a
    space."""
    joined = ""
    for part in (p.strip() for p in parts):
        joined += ("" if not joined or joined.endswith(("。", "！", "？")) else " ") + part
    return joined


def _link(story: Story) -> Link:
    return Link(story.lead.source.name, story.lead.article.url)


class _Overview(NamedTuple):
    summary: str
    topics: tuple[Topic, ...]
    texts: dict[str, str]  # category slug → its カテゴリー別動向 text
    outlook: str
    automatic: bool


async def _model_overview(
    items: tuple[WeeklyItem, ...],
    counts: dict[str, int],
    collected: int,
    taxonomy: Taxonomy,
    llm: LLM,
    config: WeeklyConfig,
) -> _Overview | None:
    per_category = "、".join(
        f"{taxonomy.label_of(slug)} {n}件" for slug, n in sorted(counts.items()) if n
    )
    material = f"今週の収集記事: {collected}件（{per_category}）\n\n" + "\n\n".join(
        f"{item.ref} [{item.category}] {item.title}\n{item.overview}\n"
        f"- {item.background}\n- {item.main_points}\n- {item.impact}"
        for item in items
    )
    material = llm.tokens.truncate(material, config.material_tokens)
    prompt = weekly_prompt(material)
    try:
        reply = await llm.complete_json(
            purpose="weekly",
            system=prompt.system,
            user=prompt.user,
            schema_name="weekly_overview",
            schema=weekly_schema([slug for slug in counts if counts[slug]] or ["none"]),
            max_output_tokens=config.max_output_tokens,
        )
        data = reply.data
        summary = str(data.get("summary", "")).strip()
        outlook = str(data.get("outlook", "")).strip()
        topics = tuple(
            Topic(str(t["name"]).strip(), tuple(dict.fromkeys(int(r) for r in t["refs"])))
            for t in data["topics"][:5]
            if isinstance(t, dict) and str(t.get("name", "")).strip() and t.get("refs")
        )
        texts = {
            str(c["category"]): str(c["text"]).strip()
            for c in data["categories"]
            if isinstance(c, dict) and counts.get(str(c.get("category")), 0) and c.get("text")
        }
    except (LLMError, KeyError, TypeError, ValueError) as exc:
        log.warning("weekly overview failed; using counts", extra={"error": str(exc)})
        return None
    problems = overview_problems(
        [summary, outlook, *(t.name for t in topics), *texts.values()],
        refs=[r for t in topics for r in t.refs],
        items=items,
        material=material,
    )
    if problems or not summary or not outlook or not topics:
        log.warning("weekly overview rejected; using counts", extra={"problems": problems})
        return None
    return _Overview(summary, topics, texts, outlook, automatic=False)


def overview_problems(
    texts: list[str], *, refs: list[int], items: tuple[WeeklyItem, ...], material: str
) -> list[str]:
    """Why the model's overview cannot be published: a `#NN` (in a topic's refs or in the
    prose) that is no item of the report, or a number or name the items do not contain. Each
    text is grounded on its own (see `jobs.briefing`), with its `#NN` references taken out."""
    texts = [nfkc(t) for t in texts]  # ＃０３ is #03
    numbers = {item.number for item in items}
    written = [int(m) for text in texts for m in _REF.findall(text)]
    missing = sorted({r for r in (*refs, *written) if r not in numbers})
    problems = []
    if missing:
        problems.append("references to no item: " + ", ".join(ref(r) for r in missing))
    problems += grounding_problems([_REF.sub(" ", t) for t in texts], material)
    return problems


def _counted_overview(
    items: tuple[WeeklyItem, ...], counts: dict[str, int], collected: int, taxonomy: Taxonomy
) -> _Overview:
    """The no-model overview: counts and the items' own keywords, never prose pretending to
    be analysis."""
    busiest = sorted(
        ((slug, n) for slug, n in counts.items() if n), key=lambda kv: (-kv[1], kv[0])
    )[:3]
    if collected:
        summary = (
            f"今週は{collected}件の記事を収集し、{len(items)}件を掲載しました。"
            "記事が多かったカテゴリーは"
            + "、".join(f"{taxonomy.label_of(slug)}（{n}件）" for slug, n in busiest)
            + "です。"
        )
    else:
        summary = "今週収集した記事はありません。"
    keyword_items: defaultdict[str, list[int]] = defaultdict(list)
    for item in items:
        for keyword in dict.fromkeys(item.keywords):
            if keyword.lower() not in GENERIC_TERMS:
                keyword_items[keyword].append(item.number)
    ranked = sorted(keyword_items.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))[:5]
    topics = tuple(Topic(keyword, tuple(numbers[:5])) for keyword, numbers in ranked)
    top = [item for item in items if item.importance >= 3]
    if top:
        refs = ", ".join(i.ref for i in top[:10])
        outlook = f"重要度⭐⭐⭐の記事は{len(top)}件でした（{refs}）。"
    else:
        outlook = "今週は重要度⭐⭐⭐の記事はありませんでした。"
    return _Overview(summary, topics, {}, outlook, automatic=True)


def _counted_category_text(slug: str, items: tuple[WeeklyItem, ...]) -> str:
    listed = [item for item in items if item.category == slug]
    if not listed:
        return "掲載記事なし"
    first = listed[0]
    more = f" ほか{len(listed) - 1}件を掲載" if len(listed) > 1 else ""
    return f"主な記事: {first.ref} {first.title}{more}"


def _first_words(error: str, limit: int = 60) -> str:
    words = " ".join(error.split())
    return words if len(words) <= limit else words[: limit - 1] + "…"
