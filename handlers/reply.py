"""The neutral reply every handler returns; each platform renders it its own way.

A reply is structure, never one platform's markup: `text` is plain (and may come from an
article or the model, so every renderer escapes it), and anything formatted — a command to type,
a bold label, a link — is a `Line` of typed parts that each renderer turns into its own syntax
(`*bold*` on Slack is italic on Discord, `<url|label>` is a link only on Slack).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from jobs.briefing_model import Briefing, from_payload, to_payload
from jobs.weekly_model import WeeklyReport, weekly_from_payload, weekly_to_payload


@dataclass(frozen=True, slots=True)
class Code:
    """Something to type, shown as inline code."""

    text: str


@dataclass(frozen=True, slots=True)
class Strong:
    text: str


@dataclass(frozen=True, slots=True)
class Href:
    label: str
    url: str


Inline = str | Code | Strong | Href


@dataclass(frozen=True, slots=True)
class Line:
    parts: tuple[Inline, ...]
    bullet: bool = False


def line(*parts: Inline, bullet: bool = False) -> Line:
    return Line(tuple(parts), bullet=bullet)


@dataclass(frozen=True, slots=True)
class ArticleRef:
    """An article in a reply. `number` is what `[n]` citations in the text refer to."""

    number: int
    title: str
    url: str
    source: str
    published: datetime | None
    category: str | None = None
    snippet: str = ""
    other_sources: int = 0
    score: float | None = None
    reason: str = ""  # why it is in a DM bundle: the category or the saved search it matched


@dataclass(frozen=True, slots=True)
class Paging:
    """Where a paged reply (search) is: platforms draw 前へ / 次へ from this."""

    page: int
    pages: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True, slots=True)
class RepostBriefing:
    """Effect: publish `day`'s briefing again to the channel the command came from."""

    day: date


Effect = RepostBriefing


@dataclass(frozen=True, slots=True)
class Reply:
    title: str
    text: str = ""
    lines: tuple[Line, ...] = ()
    articles: tuple[ArticleRef, ...] = field(default_factory=tuple)
    ephemeral: bool = True
    automatic: bool = False  # written without the model: rendered with （自動抽出）
    error: bool = False
    shareable: bool = False  # platforms offer a button to post it to the channel
    briefing: Briefing | None = None  # `digest`: rendered as a briefing
    paging: Paging | None = None
    effect: Effect | None = None  # work the publishing core carries out after replying
    notices: tuple[str, ...] = ()  # things the user must hear once (e.g. their DMs are closed)
    weekly: WeeklyReport | None = None  # `weekly`: rendered as the weekly report

    def with_notice(self, notice: str) -> Reply:
        return replace(self, notices=(*self.notices, notice))


def part_text(part: Inline) -> str:
    if isinstance(part, str):
        return part
    return part.label if isinstance(part, Href) else part.text


def plain_text(reply: Reply) -> str:
    """The reply as unformatted text: notification fallbacks, logs and tests read this."""
    lines = [reply.title, reply.text]
    lines += [("• " if ln.bullet else "") + "".join(map(part_text, ln.parts)) for ln in reply.lines]
    lines += [f"{a.number}. {a.title} {a.url}" for a in reply.articles]
    lines += list(reply.notices)
    return "\n".join(line for line in lines if line)


# ── storage form, so that a reply can be shared or paged by id ─────────────────────────────


def reply_to_payload(reply: Reply) -> dict[str, Any]:
    """JSON-ready form. Effects are not stored: sharing a reply never repeats its work."""
    return {
        "title": reply.title,
        "text": reply.text,
        "lines": [
            {"bullet": ln.bullet, "parts": [_part_to_json(p) for p in ln.parts]}
            for ln in reply.lines
        ],
        "articles": [
            {
                "number": a.number,
                "title": a.title,
                "url": a.url,
                "source": a.source,
                "published": a.published.isoformat() if a.published else None,
                "category": a.category,
                "snippet": a.snippet,
                "other_sources": a.other_sources,
                "score": a.score,
                "reason": a.reason,
            }
            for a in reply.articles
        ],
        "ephemeral": reply.ephemeral,
        "automatic": reply.automatic,
        "error": reply.error,
        "shareable": reply.shareable,
        "briefing": to_payload(reply.briefing) if reply.briefing is not None else None,
        "weekly": weekly_to_payload(reply.weekly) if reply.weekly is not None else None,
        "paging": (
            {"page": reply.paging.page, "pages": reply.paging.pages, "total": reply.paging.total}
            if reply.paging is not None
            else None
        ),
    }


def reply_from_payload(data: dict[str, Any]) -> Reply:
    paging = data.get("paging")
    briefing = data.get("briefing")
    weekly = data.get("weekly")
    return Reply(
        title=data["title"],
        text=data.get("text", ""),
        lines=tuple(
            Line(tuple(_part_from_json(p) for p in ln["parts"]), bullet=ln["bullet"])
            for ln in data.get("lines", [])
        ),
        articles=tuple(
            ArticleRef(
                number=a["number"],
                title=a["title"],
                url=a["url"],
                source=a["source"],
                published=datetime.fromisoformat(a["published"]) if a["published"] else None,
                category=a.get("category"),
                snippet=a.get("snippet", ""),
                other_sources=a.get("other_sources", 0),
                score=a.get("score"),
                reason=a.get("reason", ""),
            )
            for a in data.get("articles", [])
        ),
        ephemeral=data.get("ephemeral", True),
        automatic=data.get("automatic", False),
        error=data.get("error", False),
        shareable=data.get("shareable", False),
        briefing=from_payload(briefing) if briefing else None,
        weekly=weekly_from_payload(weekly) if weekly else None,
        paging=Paging(**paging) if paging else None,
    )


def _part_to_json(part: Inline) -> dict[str, str]:
    if isinstance(part, str):
        return {"t": "text", "text": part}
    if isinstance(part, Code):
        return {"t": "code", "text": part.text}
    if isinstance(part, Strong):
        return {"t": "strong", "text": part.text}
    return {"t": "href", "label": part.label, "url": part.url}


def _part_from_json(raw: dict[str, str]) -> Inline:
    kind = raw["t"]
    if kind == "code":
        return Code(raw["text"])
    if kind == "strong":
        return Strong(raw["text"])
    if kind == "href":
        return Href(raw["label"], raw["url"])
    return raw["text"]
