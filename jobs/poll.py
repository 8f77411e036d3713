"""The poll job: fetch every due source concurrently, parse off the loop, store what is new,
group near-duplicate stories, and record each source's outcome. One bad source fails alone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.feed_parse import ParsedEntry
from jobs.fetch import Fetcher, FetchResult
from jobs.parse_pool import ParsePool
from jobs.stories import Titled
from jobs.text import content_hash, nfkc
from storage.articles import (
    NewArticle,
    insert_new_articles,
    recent_titles,
    replace_body,
    set_story_ids,
)
from storage.clock import utcnow
from storage.db import Database
from storage.models import Source
from storage.sources import PollState, due_sources, record_poll_states

log = logging.getLogger(__name__)

STORY_WINDOW = timedelta(days=3)
MAX_BACKOFF = timedelta(hours=24)
MIN_EXTRACTED_CHARS = 200


@dataclass(frozen=True, slots=True)
class PollConfig:
    interval: timedelta
    max_backoff: timedelta = MAX_BACKOFF


@dataclass(slots=True)
class PollReport:
    """Counts printed by `ainews poll --json`."""

    sources: int = 0
    new: int = 0
    not_modified: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "new": self.new,
            "not_modified": self.not_modified,
            "failed": self.failed,
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class _SourceRef:
    """The fields a poll needs, detached from the ORM session that loaded them."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    error_count: int
    trusted: bool

    @classmethod
    def of(cls, source: Source) -> _SourceRef:
        assert source.id is not None
        return cls(
            source.id, source.name, source.url, source.etag, source.last_modified,
            source.error_count, source.trusted,
        )  # fmt: skip


Progress = Callable[[], None]


async def poll_sources(
    *,
    db: Database,
    fetcher: Fetcher,
    parser: ParsePool,
    config: PollConfig,
    force: bool = False,
    on_source_done: Progress | None = None,
) -> PollReport:
    """One pass over the due sources (all enabled ones with `force`)."""
    now = utcnow()
    sources = [_SourceRef.of(s) for s in await db.run(due_sources, now=now, force=force)]
    report = PollReport(sources=len(sources))
    states: list[PollState] = []
    new_ids: list[int] = []

    async def one(source: _SourceRef) -> None:
        try:
            state, ids = await _poll_one(
                source, db=db, fetcher=fetcher, parser=parser, config=config
            )
        except Exception as exc:  # a bug must not cost the other sources their poll
            log.exception("poll crashed", extra={"source_id": source.id, "url": source.url})
            state, ids = _failure(source, config, None, f"internal error: {exc!r}", None), []
        states.append(state)
        new_ids.extend(ids)
        if state.error is not None:
            report.failed += 1
            report.errors.append({"source": source.name, "url": source.url, "error": state.error})
        elif state.status == 304:
            report.not_modified += 1
        if on_source_done is not None:
            on_source_done()

    await asyncio.gather(*(one(s) for s in sources))
    report.new = len(new_ids)
    await db.run(record_poll_states, states=states)
    if new_ids:
        await _group_stories(db, parser, sorted(new_ids), since=now - STORY_WINDOW)
    log.info(
        "poll finished",
        extra={
            "sources": report.sources,
            "new": report.new,
            "not_modified": report.not_modified,
            "failed": report.failed,
        },
    )
    return report


async def _poll_one(
    source: _SourceRef, *, db: Database, fetcher: Fetcher, parser: ParsePool, config: PollConfig
) -> tuple[PollState, list[int]]:
    fetched = await fetcher.get(
        source.url,
        etag=source.etag,
        last_modified=source.last_modified,
        public_only=not source.trusted,
    )
    if fetched.error is not None:
        return _failure(source, config, fetched.status, fetched.error, fetched.retry_after), []
    polled_at = utcnow()
    if fetched.not_modified:
        return _success(source, config, fetched, polled_at, keep_validators=True), []
    parsed = await parser.parse(fetched.body, fetched.moved_to or source.url, fetched.content_type)
    if parsed.error is not None:
        return _failure(source, config, fetched.status, parsed.error, None), []
    inserted = await db.run(
        insert_new_articles,
        source_id=source.id,
        articles=[_new_article(e) for e in parsed.entries],
        first_seen_at=polled_at,
    )
    stored = dict(inserted)
    teasers = [(stored[e.url], e) for e in parsed.entries if e.is_teaser and e.url in stored]
    if teasers:
        await _complete_teasers(
            teasers, db=db, fetcher=fetcher, parser=parser, public_only=not source.trusted
        )
    return _success(source, config, fetched, polled_at, keep_validators=False), list(
        stored.values()
    )


def _new_article(entry: ParsedEntry) -> NewArticle:
    return NewArticle(
        url=entry.url,
        guid=entry.guid,
        title=entry.title,
        language=entry.language,
        published_at=entry.published_at,
        body_text=entry.body_text,
        content_hash=entry.content_hash,
    )


async def _complete_teasers(
    teasers: list[tuple[int, ParsedEntry]],
    *,
    db: Database,
    fetcher: Fetcher,
    parser: ParsePool,
    public_only: bool,
) -> None:
    """Fetch the article page of teaser-only entries and keep its main text when it is longer.
    A failure here keeps the teaser: the article is already stored."""
    for article_id, entry in teasers:
        page = await fetcher.get(entry.url, public_only=public_only)
        if page.error is not None or not page.body:
            log.info("article page not fetched", extra={"url": entry.url, "error": page.error})
            continue
        text = await parser.extract(page.body, entry.url)
        if text and len(text) >= max(MIN_EXTRACTED_CHARS, len(entry.body_text)):
            await db.run(
                replace_body,
                article_id=article_id,
                body_text=text,
                content_hash=content_hash(nfkc(entry.title), text),
            )


async def _group_stories(
    db: Database, parser: ParsePool, new_ids: list[int], since: datetime
) -> None:
    """Give every new article a story id (its own, or that of an earlier near-duplicate)."""
    rows = await db.run(recent_titles, since=since)
    fresh = set(new_ids)
    titled = [Titled(r.id, r.source_id, r.title, r.story_id) for r in rows]
    known = [t for t in titled if t.id not in fresh]
    new = [t for t in titled if t.id in fresh]
    assigned = await parser.group_stories(known, new)
    await db.run(set_story_ids, story_of=assigned)


def _success(
    source: _SourceRef,
    config: PollConfig,
    fetched: FetchResult,
    polled_at: datetime,
    *,
    keep_validators: bool,
) -> PollState:
    return PollState(
        source_id=source.id,
        polled_at=polled_at,
        next_poll_at=polled_at + config.interval,
        status=fetched.status,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        moved_to=fetched.moved_to,
        keep_validators=keep_validators,
    )


def _failure(
    source: _SourceRef,
    config: PollConfig,
    status: int | None,
    error: str,
    retry_after: float | None,
) -> PollState:
    """Exponential back-off per source (interval × 2^errors, capped), never sooner than the
    server's Retry-After."""
    now = utcnow()
    delay = min(config.interval * (2 ** min(source.error_count + 1, 16)), config.max_backoff)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    log.warning("source failed", extra={"source_id": source.id, "url": source.url, "error": error})
    return PollState(
        source_id=source.id,
        polled_at=now,
        next_poll_at=now + delay,
        status=status,
        error_count=source.error_count + 1,
        error=error,
    )
