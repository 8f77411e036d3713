"""The neutral briefing: what every renderer (Markdown, Slack blocks, Discord embeds) draws.
Text here is plain and untrusted; renderers escape it for their platform."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    name: str
    url: str


@dataclass(frozen=True, slots=True)
class BriefingItem:
    number: int
    article_id: int
    title: str
    source: Link
    importance: int
    overview: str
    points: tuple[str, ...]
    why_important: str
    keywords: tuple[str, ...]
    category: str
    published_at: datetime | None
    automatic: bool
    related: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True)
class BriefingSection:
    category: str
    heading: str
    items: tuple[BriefingItem, ...]


@dataclass(frozen=True, slots=True)
class Highlight:
    name: str
    text: str


@dataclass(frozen=True, slots=True)
class Trend:
    themes: tuple[Highlight, ...]
    organisations: tuple[Highlight, ...]
    outlook: str
    automatic: bool


@dataclass(frozen=True, slots=True)
class Briefing:
    day: date
    categories_considered: int
    articles_considered: int
    sections: tuple[BriefingSection, ...]
    trend: Trend
    window_start: datetime
    window_end: datetime
    notes: tuple[str, ...] = ()  # said above the briefing, e.g. how yesterday's publish went
    footer: tuple[str, ...] = ()  # said below it: how the token budget degraded it (jobs.spend)

    @property
    def items(self) -> tuple[BriefingItem, ...]:
        return tuple(item for section in self.sections for item in section.items)


def to_payload(briefing: Briefing) -> dict[str, object]:
    """JSON-ready form, stored with the claim so that a resumed thread posts exactly the
    briefing that was started (not a re-selection that may have changed meanwhile)."""
    return json.loads(json.dumps(asdict(briefing), default=_iso))  # type: ignore[no-any-return]


def from_payload(data: dict[str, Any]) -> Briefing:
    def link(raw: dict[str, Any]) -> Link:
        return Link(raw["name"], raw["url"])

    def item(raw: dict[str, Any]) -> BriefingItem:
        return BriefingItem(
            number=raw["number"],
            article_id=raw["article_id"],
            title=raw["title"],
            source=link(raw["source"]),
            importance=raw["importance"],
            overview=raw["overview"],
            points=tuple(raw["points"]),
            why_important=raw["why_important"],
            keywords=tuple(raw["keywords"]),
            category=raw["category"],
            published_at=_datetime(raw["published_at"]),
            automatic=raw["automatic"],
            related=tuple(link(r) for r in raw["related"]),
        )

    trend = data["trend"]
    return Briefing(
        day=date.fromisoformat(data["day"]),
        categories_considered=data["categories_considered"],
        articles_considered=data["articles_considered"],
        sections=tuple(
            BriefingSection(s["category"], s["heading"], tuple(item(i) for i in s["items"]))
            for s in data["sections"]
        ),
        trend=Trend(
            themes=tuple(Highlight(h["name"], h["text"]) for h in trend["themes"]),
            organisations=tuple(Highlight(h["name"], h["text"]) for h in trend["organisations"]),
            outlook=trend["outlook"],
            automatic=trend["automatic"],
        ),
        window_start=_datetime(data["window_start"]) or datetime.min,
        window_end=_datetime(data["window_end"]) or datetime.min,
        notes=tuple(data.get("notes", ())),
        footer=tuple(data.get("footer", ())),
    )


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
