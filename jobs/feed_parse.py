"""Feed bytes → plain entries. Runs in worker processes (see parse_pool): feedparser and HTML
stripping cost milliseconds of CPU per feed, which would stall the event loop and one core."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser

from jobs.text import content_hash, html_to_text, looks_japanese, nfkc, shorten
from jobs.urls import normalise_url

# Below this many characters a body is taken to be a teaser and the article page is fetched.
# Japanese packs about two and a half times more content per character than English.
TEASER_CHARS = {"en": 200, "ja": 80}
_TEASER_MARKERS = ("…", "...", "続きを読む", "Read more", "read more", "[…]", "[...]")
_FUTURE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    url: str
    guid: str | None
    title: str
    published_at: datetime | None
    body_text: str
    content_hash: str
    language: str
    is_teaser: bool


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    entries: list[ParsedEntry] = field(default_factory=list)
    error: str | None = None
    title: str | None = None


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one response body. Never raises: a bad feed becomes `ParsedFeed(error=…)` so it
    fails its own source alone."""
    head = body[:2048].lstrip().lower()
    if not head:
        return ParsedFeed(error="empty response")
    if _looks_like_html_page(head):
        return ParsedFeed(error="not a feed: the server returned an HTML page")
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        # We keep only text: sanitising HTML or resolving the URIs inside it is wasted work
        # (together about half of feedparser's time on content-rich feeds).
        parsed = feedparser.parse(
            body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser can raise on pathological input
        return ParsedFeed(error=f"unparseable feed: {type(exc).__name__}: {exc}")
    now = datetime.now(UTC)
    entries = [e for raw in parsed.entries if (e := _entry(raw, url, now)) is not None]
    if not entries:
        # Lenient like feed readers: a recoverable error with usable entries still counts.
        if parsed.get("bozo"):
            return ParsedFeed(error=f"malformed feed: {_first_line(parsed.get('bozo_exception'))}")
        if not parsed.get("version"):
            return ParsedFeed(error="not a feed: no RSS, Atom or RDF document found")
    title = parsed.feed.get("title") if parsed.get("feed") else None
    return ParsedFeed(entries=entries, title=title)


def _looks_like_html_page(head: bytes) -> bool:
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return True
    return b"<html" in head and not any(tag in head for tag in (b"<rss", b"<feed", b"<rdf"))


def _first_line(value: object) -> str:
    return shorten(str(value).splitlines()[0] if value else "unknown error", 200)


def _entry(raw: Any, feed_url: str, now: datetime) -> ParsedEntry | None:
    link = raw.get("link") or ""
    guid = raw.get("id") or None
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    if not link:
        return None
    body_html = ""
    if raw.get("content"):
        body_html = max((c.get("value", "") for c in raw["content"]), key=len)
    summary_html = raw.get("summary", "") or ""
    if len(summary_html) > len(body_html):
        body_html = summary_html
    body = html_to_text(body_html)
    title = html_to_text(raw.get("title", "") or "") or shorten(body, 80)
    if not title:
        return None
    language = "ja" if looks_japanese(title + body) else "en"
    return ParsedEntry(
        url=normalise_url(link),
        guid=shorten(guid, 2000, "") if guid else None,
        title=shorten(title, 500),
        published_at=_published(raw, now),
        body_text=body,
        content_hash=content_hash(nfkc(title), body),
        language=language,
        is_teaser=_is_teaser(body, TEASER_CHARS[language]),
    )


def _published(raw: Any, now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if value:
            when = datetime.fromtimestamp(calendar.timegm(value), UTC)
            # A date far in the future is a publisher's bug; treat it as undated.
            return None if when > now + _FUTURE_SLACK else when
    return None


def _is_teaser(body: str, threshold: int) -> bool:
    stripped = body.strip()
    return len(stripped) < threshold or (
        len(stripped) < 2 * threshold and stripped.endswith(_TEASER_MARKERS)
    )


def extract_article_text(page: bytes, url: str) -> str | None:
    """Main text of an article page (trafilatura), or None when it finds no article."""
    import trafilatura  # heavy import, paid only in the worker processes that need it

    text = trafilatura.extract(
        page, url=url, include_comments=False, include_tables=False, favor_precision=True
    )
    return text.strip() if text else None


def warm_up() -> None:
    """Submitted once per worker when the pool opens, so that it starts early."""
