"""Feed bytes → plain entries. Runs in worker processes (see parse_pool): feedparser and HTML
stripping cost milliseconds of CPU per feed, which would stall the event loop and one core."""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser

from jobs.decode import transcode_feed
from jobs.text import MAX_BODY_CHARS, content_hash, html_to_text, looks_japanese, nfkc, shorten
from jobs.urls import is_web_url, normalise_url

# Below this many characters a body is taken to be a teaser and the article page is fetched.
# Japanese packs about two and a half times more content per character than English.
TEASER_CHARS = {"en": 200, "ja": 80}
_TEASER_MARKERS = ("…", "...", "続きを読む", "Read more", "read more", "[…]", "[...]")
_FUTURE_SLACK = timedelta(days=1)
# The longest link stored (the column's size); a longer one is treated as no link at all.
MAX_URL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry, identified within its feed by `guid` when it has one, else by `url`.

    `url` is what a reader is shown: the entry's own link with its fragment kept, or the feed's
    site link for an entry that has an id but no link. `canonical_url` (fragment and tracking
    parameters dropped) finds the same article in another feed; it is None when the entry has
    no link of its own, or when other entries of this feed share it (a day page of a diary),
    since it then names a page, not this article. `is_teaser`: the body is only a teaser and
    the entry has a page of its own worth fetching."""

    url: str
    guid: str | None
    title: str
    published_at: datetime | None
    body_text: str
    content_hash: str
    language: str
    is_teaser: bool
    canonical_url: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    entries: list[ParsedEntry] = field(default_factory=list)
    error: str | None = None
    title: str | None = None
    encoding: str | None = None  # what the bytes were decoded as (WHATWG name)
    replacements: int = 0  # invalid byte sequences replaced by U+FFFD


def parse_feed(
    body: bytes, url: str, content_type: str | None = None, *, now: datetime | None = None
) -> ParsedFeed:
    """Parse one response body. Never raises: a bad feed becomes `ParsedFeed(error=…)` so it
    fails its own source alone. `now` (default: the clock) is what "in the future" is
    measured against when dates are checked."""
    head = body[:2048].lstrip().lower()
    if not head:
        return ParsedFeed(error="empty response")
    if _looks_like_html_page(head):
        return ParsedFeed(error="not a feed: the server returned an HTML page")
    # Decoded as browsers do, handed over as UTF-8 with a matching declaration and charset:
    # feedparser's own fallback reads a Shift_JIS feed with CP932 characters as windows-1252.
    decoded = transcode_feed(body, content_type)
    headers = {"content-location": url, "content-type": decoded.content_type}
    try:
        # We keep only text: sanitising HTML or resolving the URIs inside it is wasted work
        # (together about half of feedparser's time on content-rich feeds).
        parsed = feedparser.parse(
            decoded.body,
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser can raise on pathological input
        return ParsedFeed(error=f"unparseable feed: {type(exc).__name__}: {exc}")
    when = now or datetime.now(UTC)
    site = _site_link(parsed, url)
    entries = _unshare([e for raw in parsed.entries if (e := _entry(raw, site, when)) is not None])
    if not entries:
        # Lenient like feed readers: a recoverable error with usable entries still counts.
        if parsed.get("bozo"):
            return ParsedFeed(error=f"malformed feed: {_first_line(parsed.get('bozo_exception'))}")
        if not parsed.get("version"):
            return ParsedFeed(error="not a feed: no RSS, Atom or RDF document found")
    title = parsed.feed.get("title") if parsed.get("feed") else None
    return ParsedFeed(
        entries=entries,
        title=title,
        encoding=decoded.encoding,
        replacements=decoded.replacements,
    )


def _site_link(parsed: Any, feed_url: str) -> str:
    """The feed's own site (RSS channel link, Atom alternate link), shown for entries without
    a link; the feed's URL when it names none."""
    link = parsed.feed.get("link") if parsed.get("feed") else None
    if link:
        joined = urljoin(feed_url, link.strip())
        if is_web_url(joined) and len(joined) <= MAX_URL_CHARS:
            return normalise_url(joined, keep_fragment=True)
    return normalise_url(feed_url, keep_fragment=True)


def _unshare(entries: list[ParsedEntry]) -> list[ParsedEntry]:
    """A canonical URL that two different entries of this feed share names a page, not an
    article (tDiary: `…/20060819.html#p01`, `#p02`): it must not match another feed's article,
    and fetching it would give every entry the whole page. The identity counted is the one
    `storage.articles.entry_key` stores: the guid, else the link with its fragment."""
    owners: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
    for e in entries:
        if e.canonical_url is not None:
            owners[e.canonical_url].add(("id", e.guid) if e.guid else ("link", e.url))
    shared = {canonical for canonical, keys in owners.items() if len(keys) > 1}
    if not shared:
        return entries
    return [
        replace(e, canonical_url=None, is_teaser=False) if e.canonical_url in shared else e
        for e in entries
    ]


def _looks_like_html_page(head: bytes) -> bool:
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return True
    return b"<html" in head and not any(tag in head for tag in (b"<rss", b"<feed", b"<rdf"))


def _first_line(value: object) -> str:
    return shorten(str(value).splitlines()[0] if value else "unknown error", 200)


def _entry(raw: Any, site_link: str, now: datetime) -> ParsedEntry | None:
    """An entry needs an identity: its id, else its link. One with an id and no usable link is
    kept and shown with the feed's site link (and never fetched, nor matched across feeds)."""
    guid = shorten(raw.get("id") or "", 2000, "").strip() or None
    link = (raw.get("link") or "").strip()
    if not link and guid and guid.startswith(("http://", "https://")):
        link = guid
    own_link = is_web_url(link) and len(link) <= MAX_URL_CHARS
    if not own_link and guid is None:
        return None
    body_html = ""
    if raw.get("content"):
        body_html = max((c.get("value", "") for c in raw["content"]), key=len)
    summary_html = raw.get("summary", "") or ""
    if len(summary_html) > len(body_html):
        body_html = summary_html
    # Capped here, at the door: storage, the search index and the summariser never see more.
    body = html_to_text(body_html)[:MAX_BODY_CHARS]
    title = html_to_text(raw.get("title", "") or "") or shorten(body, 80)
    if not title:
        return None
    language = "ja" if looks_japanese(title + body) else "en"
    return ParsedEntry(
        url=normalise_url(link, keep_fragment=True) if own_link else site_link,
        guid=guid,
        canonical_url=normalise_url(link) if own_link else None,
        title=shorten(title, 500),
        published_at=_published(raw, now),
        body_text=body,
        content_hash=content_hash(nfkc(title), body),
        language=language,
        is_teaser=own_link and _is_teaser(body, TEASER_CHARS[language]),
    )


def _published(raw: Any, now: datetime) -> datetime | None:
    """The entry's date, or None when it has none (or an impossible one): an undated entry is
    stored with `published_at` None and dated by its `first_seen_at`, the poll that first saw
    it (see `storage.models.Article`)."""
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
