"""The neutral reply every handler returns; each platform renders it its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jobs.briefing_model import Briefing


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


@dataclass(frozen=True, slots=True)
class Reply:
    title: str
    text: str = ""
    articles: tuple[ArticleRef, ...] = field(default_factory=tuple)
    ephemeral: bool = True
    automatic: bool = False  # written without the model: rendered with （自動抽出）
    error: bool = False
    shareable: bool = False  # platforms offer a button to post it to the channel
    briefing: Briefing | None = None  # `digest`: rendered as a briefing
    action: str | None = None  # work for the platform itself, e.g. "post-digest"
