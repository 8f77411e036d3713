"""The daily briefing: choose the day's items and write the trend analysis.

A day's briefing covers articles published in the 24 hours before that day's briefing time in
the configured zone (undated entries count from when they were first seen). Near-duplicates are
one item (the others become 関連報道); selection weighs importance, recency and source diversity;
the result is ordered by category, then importance.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo

from jobs.briefing_model import Briefing, BriefingItem, BriefingSection, Highlight, Link, Trend
from jobs.grounding import GENERIC_TERMS, grounding_problems
from jobs.llm import LLM, LLMError
from jobs.prompts import trend_prompt, trend_schema
from jobs.spend import (
    BUDGET_CAUSES,
    TREND_MATERIAL_TOKENS,
    BudgetLevel,
    budget_level,
    degradation_notes,
    lean,
)
from storage.briefings import Candidate, candidates_between
from storage.clock import ensure_utc
from storage.db import Database
from storage.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SOURCE_REPEAT_PENALTY = 4.0
# Capitalised Latin names ("Hoshizora AI", "Nimbus Labs"): organisations in a counted trend.
_ORGANISATION = re.compile(r"\b[A-Z][A-Za-z0-9]+(?:[ -][A-Z][A-Za-z0-9]+)*\b")


@dataclass(frozen=True, slots=True)
class BriefingConfig:
    tz: tzinfo
    briefing_time: time
    size: int
    max_output_tokens: int
    trend_material_tokens: int = TREND_MATERIAL_TOKENS


def briefing_window(day: date, config: BriefingConfig) -> tuple[datetime, datetime]:
    end = datetime.combine(day, config.briefing_time, tzinfo=config.tz)
    return ensure_utc(end - timedelta(hours=24)), ensure_utc(end)


def briefing_day_for(moment: datetime, config: BriefingConfig) -> date:
    """The first briefing whose window contains `moment`."""
    local = moment.astimezone(config.tz)
    return local.date() if local.time() < config.briefing_time else local.date() + timedelta(1)


async def build_briefing(
    *, db: Database, day: date, config: BriefingConfig, taxonomy: Taxonomy, llm: LLM | None
) -> Briefing:
    start, end = briefing_window(day, config)
    candidates = await db.run(candidates_between, start=start, end=end)
    stories = group_by_story(candidates)
    chosen = select_stories(stories, size=config.size, end=end)
    sections = _sections(chosen, taxonomy)
    items = [item for section in sections for item in section.items]
    # Step 1 of the budget's degradation (jobs.spend): a leaner trend analysis.
    lean_trend = bool(items) and await budget_level(llm) >= BudgetLevel.LEAN_TREND
    trend_config = config
    if lean_trend:
        trend_config = replace(
            config,
            max_output_tokens=lean(config.max_output_tokens),
            trend_material_tokens=lean(config.trend_material_tokens),
        )
    trend = (
        await _trend(items, taxonomy, llm, trend_config)
        if items
        else _counted_trend(items, taxonomy)
    )
    fallbacks = Counter(
        c.summary.fallback for c in candidates if c.summary.fallback in BUDGET_CAUSES
    )
    return Briefing(
        day=day,
        categories_considered=len({c.summary.category for c in candidates}),
        articles_considered=len(candidates),
        sections=tuple(sections),
        trend=trend,
        window_start=start,
        window_end=end,
        footer=degradation_notes(lean_trend=lean_trend, causes=fallbacks),
    )


@dataclass(slots=True)
class Story:
    lead: Candidate
    members: list[Candidate]

    @property
    def importance(self) -> int:
        return max(m.summary.importance for m in self.members)

    @property
    def when(self) -> datetime:
        a = self.lead.article
        return ensure_utc(a.published_at or a.first_seen_at)


def group_by_story(candidates: list[Candidate]) -> list[Story]:
    groups: defaultdict[int, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        article = candidate.article
        groups[article.story_id or article.id or 0].append(candidate)
    stories = []
    for members in groups.values():
        lead = max(
            members,
            key=lambda c: (
                c.summary.importance,
                c.summary.method == "llm",
                len(c.article.body_text),
                -(c.article.id or 0),
            ),
        )
        stories.append(Story(lead=lead, members=members))
    return stories


def select_stories(stories: list[Story], *, size: int, end: datetime) -> list[Story]:
    """Greedy pick: importance first, a small bonus for freshness and for stories several
    outlets carried, and a penalty for each item already taken from the same source."""

    def base(story: Story) -> float:
        age_hours = max(0.0, (end - story.when).total_seconds() / 3600)
        sources = len({m.source.id for m in story.members})
        return story.importance * 10 + max(0.0, 2 - age_hours / 12) + min(sources - 1, 2)

    remaining = sorted(stories, key=lambda s: (-base(s), s.lead.article.id or 0))
    taken: list[Story] = []
    per_source: Counter[int] = Counter()
    while remaining and len(taken) < size:
        best = max(
            remaining,
            key=lambda s: base(s) - SOURCE_REPEAT_PENALTY * per_source[s.lead.source.id or 0],
        )
        remaining.remove(best)
        taken.append(best)
        per_source[best.lead.source.id or 0] += 1
    return taken


def _sections(stories: list[Story], taxonomy: Taxonomy) -> list[BriefingSection]:
    ordered = sorted(
        stories,
        key=lambda s: (
            taxonomy.order(s.lead.summary.category),
            -s.importance,
            -s.when.timestamp(),
        ),
    )
    by_category: dict[str, list[BriefingItem]] = {}
    for number, story in enumerate(ordered, start=1):
        by_category.setdefault(story.lead.summary.category, []).append(_item(number, story))
    return [
        BriefingSection(category=slug, heading=_heading(slug, taxonomy), items=tuple(items))
        for slug, items in by_category.items()
    ]


def _heading(slug: str, taxonomy: Taxonomy) -> str:
    try:
        return taxonomy.get(slug).label
    except KeyError:
        return slug


def related_links(story: Story) -> tuple[Link, ...]:
    """The story's other outlets (関連報道), one link per source other than the lead's."""
    seen_sources = {story.lead.source.id}
    related = []
    for member in sorted(story.members, key=lambda m: m.article.id or 0):
        if member.source.id not in seen_sources:
            seen_sources.add(member.source.id)
            related.append(Link(member.source.name, member.article.url))
    return tuple(related)


def _item(number: int, story: Story) -> BriefingItem:
    lead = story.lead
    summary = lead.summary
    return BriefingItem(
        number=number,
        article_id=lead.article.id or 0,
        title=summary.title_ja,
        source=Link(lead.source.name, lead.article.url),
        importance=story.importance,
        overview=summary.overview,
        points=tuple(summary.points[:3]),
        why_important=summary.why_important,
        keywords=tuple(summary.keywords),
        category=summary.category,
        published_at=lead.article.published_at,
        automatic=summary.method != "llm",
        related=related_links(story),
    )


async def _trend(
    items: list[BriefingItem], taxonomy: Taxonomy, llm: LLM | None, config: BriefingConfig
) -> Trend:
    if llm is None:
        return _counted_trend(items, taxonomy)
    material = "\n\n".join(
        f"[{i.number}] {i.title}\n{i.overview}\n" + "\n".join(f"- {p}" for p in i.points)
        for i in items
    )
    material = llm.tokens.truncate(material, config.trend_material_tokens)
    prompt = trend_prompt(material)
    try:
        reply = await llm.complete_json(
            purpose="trend",
            system=prompt.system,
            user=prompt.user,
            schema_name="trend_analysis",
            schema=trend_schema(),
            max_output_tokens=config.max_output_tokens,
        )
        trend = Trend(
            themes=_highlights(reply.data.get("themes")),
            organisations=_highlights(reply.data.get("organisations")),
            outlook=str(reply.data.get("outlook", "")).strip(),
            automatic=False,
        )
    except (LLMError, TypeError, ValueError) as exc:
        log.warning("trend analysis failed; using counts", extra={"error": str(exc)})
        return _counted_trend(items, taxonomy)
    problems = grounding_problems(_trend_texts(trend), material)
    if problems or not trend.themes or not trend.outlook:
        log.warning("trend analysis rejected; using counts", extra={"problems": problems})
        return _counted_trend(items, taxonomy)
    return trend


def _trend_texts(trend: Trend) -> list[str]:
    """Every field on its own: a name glued to its text ("Google" + "Googleが…") would read as
    one word that no article contains, and every natural answer would be rejected."""
    highlights = (*trend.themes, *trend.organisations)
    return [text for h in highlights for text in (h.name, h.text)] + [trend.outlook]


def _highlights(value: object) -> tuple[Highlight, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list")
    return tuple(
        Highlight(str(v["name"]).strip(), str(v["text"]).strip())
        for v in value[:3]
        if isinstance(v, dict) and v.get("name") and v.get("text")
    )


def _counted_trend(items: list[BriefingItem], taxonomy: Taxonomy) -> Trend:
    """The no-LLM trend section: counts only, never prose pretending to be analysis."""
    keyword_items: defaultdict[str, list[int]] = defaultdict(list)
    for item in items:
        for keyword in dict.fromkeys(item.keywords):
            keyword_items[keyword].append(item.number)
    ranked = sorted(keyword_items.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    themes = tuple(
        Highlight(k, f"{len(ns)}件の記事で言及（#{', #'.join(map(str, ns[:5]))}）")
        for k, ns in ranked[:3]
    )
    name_items: defaultdict[str, list[int]] = defaultdict(list)
    for item in items:
        for name in dict.fromkeys(_ORGANISATION.findall(f"{item.title} {item.overview}")):
            if name.lower() not in GENERIC_TERMS:
                name_items[name].append(item.number)
    named = sorted(name_items.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    organisations = tuple(
        Highlight(n, f"{len(ns)}件の記事に登場（#{', #'.join(map(str, ns[:5]))}）")
        for n, ns in named[:3]
    )
    per_category = Counter(item.category for item in items)
    parts = [f"{_heading(slug, taxonomy)} {n}件" for slug, n in per_category.most_common()]
    outlook = (
        "カテゴリー別の掲載件数: " + "、".join(parts) + "。"
        if parts
        else "本日の掲載記事はありません。"
    )
    return Trend(themes=themes, organisations=organisations, outlook=outlook, automatic=True)
