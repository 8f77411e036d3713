"""The neutral briefing: what every renderer (Markdown, Slack blocks, Discord embeds) draws.
Text here is plain and untrusted; renderers escape it for their platform."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


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

    @property
    def items(self) -> tuple[BriefingItem, ...]:
        return tuple(item for section in self.sections for item in section.items)
