"""The neutral weekly report: what every renderer (Markdown, Slack blocks, Discord embeds)
draws, and the ISO week it covers. Text here is plain and untrusted; renderers escape it."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from jobs.briefing_model import Link

_WEEK = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)


@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    """An ISO 8601 week (Monday to Sunday), `2026-W48`."""

    year: int
    week: int

    @classmethod
    def parse(cls, value: str) -> IsoWeek:
        """`2026-W48` (also `2026W48`, `2026-w48`); ValueError for anything else, including a
        week 53 in a year that has only 52."""
        match = _WEEK.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"expected YYYY-Www, got {value!r}")
        year, number = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, number, 1)
        except ValueError:
            raise ValueError(f"{year} has no ISO week {number}") from None
        return cls(year, number)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        year, number, _ = day.isocalendar()
        return cls(year, number)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shifted(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True, slots=True)
class WeeklyItem:
    """One of the week's most important stories. `number` is what `#NN` refers to."""

    number: int
    article_id: int
    title: str
    source: Link
    country: str  # 日本 (a Japanese-language source) or 海外
    published_at: datetime | None
    category: str
    importance: int
    overview: str
    background: str  # 背景
    main_points: str  # 主要ポイント
    impact: str  # 影響と展望
    automatic: bool
    related: tuple[Link, ...] = ()
    keywords: tuple[str, ...] = ()  # the summary's, for the counted 注目トピック

    @property
    def ref(self) -> str:
        return ref(self.number)


@dataclass(frozen=True, slots=True)
class Topic:
    """A 注目トピック: a name and the items it is about."""

    name: str
    refs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CategoryTrend:
    """A row of カテゴリー別動向. `count` is every summarised article of the week in the
    category (the database's count), not only the items listed."""

    category: str
    heading: str
    count: int
    text: str


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    week: str  # `2026-W48`
    start: date  # Monday
    end: date  # Sunday
    articles_collected: int
    summary: str  # 今週の動向
    topics: tuple[Topic, ...]
    categories: tuple[CategoryTrend, ...]
    outlook: str  # 今後の展望
    automatic: bool  # the overview was computed from counts, not written by the model
    items: tuple[WeeklyItem, ...]
    unhealthy_sources: tuple[str, ...] = ()  # one line each, e.g. "Example（5回連続で失敗）"

    @property
    def iso_week(self) -> IsoWeek:
        return IsoWeek.parse(self.week)


def ref(number: int) -> str:
    """`#03`: how the overview points at an item (two digits, as in the format)."""
    return f"#{number:02d}"


def weekly_to_payload(report: WeeklyReport) -> dict[str, Any]:
    """JSON-ready form: stored when the report is built, and with each destination's claim so
    that a resumed thread posts exactly the report that was started."""
    return json.loads(json.dumps(asdict(report), default=_iso))  # type: ignore[no-any-return]


def weekly_from_payload(data: dict[str, Any]) -> WeeklyReport:
    def link(raw: dict[str, Any]) -> Link:
        return Link(raw["name"], raw["url"])

    def item(raw: dict[str, Any]) -> WeeklyItem:
        published = raw["published_at"]
        return WeeklyItem(
            number=raw["number"],
            article_id=raw["article_id"],
            title=raw["title"],
            source=link(raw["source"]),
            country=raw["country"],
            published_at=datetime.fromisoformat(published) if published else None,
            category=raw["category"],
            importance=raw["importance"],
            overview=raw["overview"],
            background=raw["background"],
            main_points=raw["main_points"],
            impact=raw["impact"],
            automatic=raw["automatic"],
            related=tuple(link(r) for r in raw["related"]),
            keywords=tuple(raw.get("keywords", ())),
        )

    return WeeklyReport(
        week=data["week"],
        start=date.fromisoformat(data["start"]),
        end=date.fromisoformat(data["end"]),
        articles_collected=data["articles_collected"],
        summary=data["summary"],
        topics=tuple(Topic(t["name"], tuple(t["refs"])) for t in data["topics"]),
        categories=tuple(
            CategoryTrend(c["category"], c["heading"], c["count"], c["text"])
            for c in data["categories"]
        ),
        outlook=data["outlook"],
        automatic=data["automatic"],
        items=tuple(item(i) for i in data["items"]),
        unhealthy_sources=tuple(data.get("unhealthy_sources", ())),
    )


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not serialisable: {type(value).__name__}")
