"""The poll job: fetch every due source concurrently, parse off the loop, store what is new,
group near-duplicate stories, record each source's outcome, and then fetch the article pages of
teaser-only entries, a few per source and newest first. One bad source fails alone."""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import FIRST_COMPLETED
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobs.feed_parse import ParsedEntry
from jobs.fetch import Fetcher, FetchResult
from jobs.parse_pool import ParsePool
from jobs.stories import STORY_WINDOW, Titled
from jobs.text import MAX_BODY_CHARS, content_hash, nfkc
from storage.articles import (
    FAILED,
    FETCHED,
    NewArticle,
    PageToFetch,
    count_waiting_pages,
    insert_new_articles,
    recent_titles,
    record_page,
    set_story_ids,
    waiting_pages,
)
from storage.claims import claim_due_sources, host_of, release_hosts, release_sources
from storage.clock import utcnow
from storage.db import Database, GroupCommit
from storage.models import Source
from storage.sources import PollState, record_poll_states, sources_with_ids

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=24)
MIN_EXTRACTED_CHARS = 200
FULLTEXT_PER_POLL = 20
DISABLE_AFTER_FAILURES = 10
DISABLE_AFTER = timedelta(days=3)
# A success ending at least this many failures in a row is announced: the source had been
# visibly backing off (8 intervals and more between polls), not failing once by chance.
RECOVERY_NOTICE_AFTER = 3
# Article pages requested at once from one source: on top of the connector's per-host limit,
# a publisher sees at most this many of our page requests in flight.
PAGES_AT_ONCE = 2
# Sources claimed at a time, and chunks polled at once: processes sharing a database take
# turns by chunk; two in flight keep the fetcher busy while one chunk waits for its slowest.
CLAIM_CHUNK = 200
CHUNKS_IN_FLIGHT = 2
# The scheduler starts the next pass one interval after this one *started*, so a source polled
# later in the pass (its fetch took time, others went first) is not quite due then, and would wait
# for the pass after: polled every other interval. A pass takes the sources due within this share
# of an interval, so each is polled at the next pass.
DUE_EARLY = 0.1


@dataclass(frozen=True, slots=True)
class PollConfig:
    """`fulltext_per_poll`: article pages fetched per source and poll (newest first); a
    backlog is completed over later polls. 0 fetches none, and teasers are then summarised as
    they are. A source failing `disable_after_failures` polls in a row, or for
    `disable_after` since its first failure, is disabled (0 / None: never by that rule)."""

    interval: timedelta
    max_backoff: timedelta = MAX_BACKOFF
    fulltext_per_poll: int = FULLTEXT_PER_POLL
    claim_chunk: int = CLAIM_CHUNK
    disable_after_failures: int = DISABLE_AFTER_FAILURES
    disable_after: timedelta | None = DISABLE_AFTER


@dataclass(slots=True)
class PollReport:
    """Counts printed by `ainews poll --json`. `pages_waiting` counts every article still
    waiting for its page after this poll, in all sources. `seconds`: how long each phase took
    (wall time): `feeds` (claiming, fetching, parsing and storing every feed, overlapped),
    `stories` (grouping the new articles), `pages` (article pages); what an operator reads
    first when a poll takes longer than its interval."""

    sources: int = 0
    new: int = 0
    not_modified: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_waiting: int = 0
    claims_taken_over: int = 0
    disabled: list[dict[str, Any]] = field(default_factory=list)
    recovered: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": self.sources,
            "new": self.new,
            "not_modified": self.not_modified,
            "failed": self.failed,
            "errors": self.errors,
            "pages_fetched": self.pages_fetched,
            "pages_failed": self.pages_failed,
            "pages_waiting": self.pages_waiting,
            "disabled": self.disabled,
            "recovered": self.recovered,
            "seconds": self.seconds,
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
    failing_since: datetime | None

    @classmethod
    def of(cls, source: Source) -> _SourceRef:
        assert source.id is not None
        return cls(
            source.id, source.name, source.url, source.etag, source.last_modified,
            source.error_count, source.trusted, source.failing_since,
        )  # fmt: skip


Progress = Callable[[], None]
Clock = Callable[[], datetime]


async def poll_sources(
    *,
    db: Database,
    fetcher: Fetcher,
    parser: ParsePool,
    config: PollConfig,
    force: bool = False,
    on_source_done: Progress | None = None,
    clock: Clock = utcnow,
    owner: str = "ainews",
) -> PollReport:
    """One pass over the due sources (all enabled ones with `force`). Article pages are
    fetched only after every feed has been polled, so a slow publisher's pages never delay
    another source's feed. `clock` is "now": due times, first-seen dates, back-off.

    The sources are claimed for `owner` a few hosts at a time (`storage.claims`), at most
    `CHUNKS_IN_FLIGHT` chunks of about `config.claim_chunk` sources in flight, so processes
    sharing the database share the work and poll each source once per interval. A chunk's
    outcomes are recorded as soon as it is done, which ends its claims and gives its hosts
    back; a process that died mid-poll leaves claims that expire after one interval."""
    now = clock()
    started = time.monotonic()
    report = PollReport()
    sources: list[_SourceRef] = []
    claimed_ids: list[int] = []
    states: list[PollState] = []
    recorded: set[int] = set()
    new_ids: list[int] = []
    store = GroupCommit(db, insert_new_articles)

    async def one(source: _SourceRef) -> None:
        try:
            state, ids = await _poll_one(
                source, store=store, fetcher=fetcher, parser=parser, config=config, clock=clock
            )
        except Exception as exc:  # a bug must not cost the other sources their poll
            log.exception("poll crashed", extra={"source_id": source.id, "url": source.url})
            state = _failure(source, config, None, f"internal error: {exc!r}", None, clock())
            ids = []
        states.append(state)
        new_ids.extend(ids)
        if state.error is not None:
            report.failed += 1
            report.errors.append({"source": source.name, "url": source.url, "error": state.error})
        elif state.status == 304:
            report.not_modified += 1
        if state.disable is not None:
            report.disabled.append({"id": source.id, "source": source.name, "why": state.disable})
        elif state.recovered_after:
            report.recovered.append({"id": source.id, "source": source.name})
        if on_source_done is not None:
            on_source_done()

    async def claim_chunk() -> list[_SourceRef]:
        claimed = await db.run(
            claim_due_sources,
            owner=owner,
            now=now,
            lease=config.interval,
            force=force,
            limit=config.claim_chunk,
            due_early=config.interval * DUE_EARLY,
        )
        if claimed.taken_over:
            log.warning("took over expired poll claims", extra={"sources": claimed.taken_over})
        report.claims_taken_over += claimed.taken_over
        claimed_ids.extend(claimed.ids)
        rows = await db.run(sources_with_ids, ids=claimed.ids) if claimed.ids else []
        chunk = [_SourceRef.of(s) for s in rows]
        sources.extend(chunk)
        return chunk

    async def record(chunk: list[_SourceRef] | None, *, to_the_end: bool = False) -> None:
        """Record the outcomes in hand (of `chunk`, or all) and give their hosts back, with
        the time a host asked us (Retry-After) to wait until, if one did."""
        mine = {s.id for s in chunk} if chunk is not None else {s.id for s in sources}
        done = [st for st in states if st.source_id in mine and st.source_id not in recorded]
        recorded.update(st.source_id for st in done)
        host_of_source = {s.id: host_of(s.url) for s in sources if s.id in mine}
        hosts: dict[str, datetime | None] = dict.fromkeys(host_of_source.values())
        for state in done:
            if state.host_retry_at is not None:
                host = host_of_source[state.source_id]
                hosts[host] = max(filter(None, (hosts[host], state.host_retry_at)))
        run = db.run_to_the_end if to_the_end else db.run
        await run(record_poll_states, states=done)
        await run(release_hosts, owner=owner, hosts=hosts, now=clock())

    async def poll_chunk(chunk: list[_SourceRef]) -> None:
        await asyncio.gather(*(one(s) for s in chunk))
        await record(chunk)

    in_flight: set[asyncio.Task[None]] = set()
    try:
        while chunk := await claim_chunk():
            parser.warm_up()
            in_flight.add(asyncio.create_task(poll_chunk(chunk)))
            if len(in_flight) >= CHUNKS_IN_FLIGHT:
                done, in_flight = await asyncio.wait(in_flight, return_when=FIRST_COMPLETED)
                for task in done:
                    task.result()
        await asyncio.gather(*in_flight)
    except BaseException:
        # Stopped (SIGTERM past the grace period): what was polled is recorded, and the
        # claims of the rest are given back, so another process polls them now rather than
        # after the lease; finished even as the task is being cancelled.
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        await record(None, to_the_end=True)
        await db.run_to_the_end(
            release_sources, owner=owner, ids=[i for i in claimed_ids if i not in recorded]
        )
        raise
    report.sources = len(sources)
    report.new = len(new_ids)
    phase = report.seconds
    phase["feeds"] = _since(started)
    started = time.monotonic()
    if new_ids:
        await _group_stories(db, parser, sorted(new_ids), since=now - STORY_WINDOW)
    phase["stories"] = _since(started)
    started = time.monotonic()
    # A source whose feed failed (429, 503, timeouts…) is not sent page requests as well; its
    # waiting articles wait for a poll that succeeds.
    healthy = {s.source_id for s in states if s.error is None}
    await _fetch_pages(
        [s for s in sources if s.id in healthy],
        db=db,
        fetcher=fetcher,
        parser=parser,
        per_source=config.fulltext_per_poll,
        report=report,
    )
    report.pages_waiting = await db.run(count_waiting_pages)
    phase["pages"] = _since(started)
    log.info(
        "poll finished",
        extra={
            "sources": report.sources,
            "new": report.new,
            "not_modified": report.not_modified,
            "failed": report.failed,
            "pages_fetched": report.pages_fetched,
            "pages_failed": report.pages_failed,
            "pages_waiting": report.pages_waiting,
            "disabled": len(report.disabled),
            "recovered": len(report.recovered),
            **{f"{name}_s": value for name, value in phase.items()},
        },
    )
    return report


async def _poll_one(
    source: _SourceRef,
    *,
    store: GroupCommit[list[tuple[str, int]]],
    fetcher: Fetcher,
    parser: ParsePool,
    config: PollConfig,
    clock: Clock,
) -> tuple[PollState, list[int]]:
    fetched = await fetcher.get(
        source.url,
        etag=source.etag,
        last_modified=source.last_modified,
        public_only=not source.trusted,
    )
    if fetched.error is not None:
        return _failure(
            source, config, fetched.status, fetched.error, fetched.retry_after, clock()
        ), []
    polled_at = clock()
    if fetched.not_modified:
        return _success(source, config, fetched, polled_at, keep_validators=True), []
    parsed = await parser.parse(fetched.body, fetched.moved_to or source.url, fetched.content_type)
    if parsed.error is not None:
        return _failure(source, config, fetched.status, parsed.error, None, clock()), []
    if parsed.replacements:
        log.warning(
            "feed had undecodable bytes",
            extra={
                "source_id": source.id,
                "encoding": parsed.encoding,
                "replacements": parsed.replacements,
            },
        )
    fulltext = config.fulltext_per_poll > 0
    inserted = await store(
        source_id=source.id,
        articles=[_new_article(e, fetch_page=fulltext) for e in parsed.entries],
        first_seen_at=polled_at,
    )
    return _success(source, config, fetched, polled_at, keep_validators=False), [
        article_id for _, article_id in inserted
    ]


def _new_article(entry: ParsedEntry, *, fetch_page: bool) -> NewArticle:
    return NewArticle(
        url=entry.url,
        guid=entry.guid,
        title=entry.title,
        language=entry.language,
        published_at=entry.published_at,
        body_text=entry.body_text,
        content_hash=entry.content_hash,
        canonical_url=entry.canonical_url,
        wants_page=fetch_page and entry.is_teaser,
    )


async def _fetch_pages(
    sources: list[_SourceRef],
    *,
    db: Database,
    fetcher: Fetcher,
    parser: ParsePool,
    per_source: int,
    report: PollReport,
) -> None:
    """The article pages of teaser-only entries: at most `per_source` per source, newest
    first, `PAGES_AT_ONCE` at a time per source; the rest wait for the next polls (a
    podcast's 730-item backlog is not 730 requests to one publisher at once)."""
    pages = await db.run(waiting_pages, source_ids=[s.id for s in sources], per_source=per_source)
    if not pages:
        return
    by_source: defaultdict[int, list[PageToFetch]] = defaultdict(list)
    for page in pages:
        by_source[page.source_id].append(page)
    trusted = {s.id: s.trusted for s in sources}
    record = GroupCommit(db, record_page)

    async def one_source(source_id: int, todo: list[PageToFetch]) -> None:
        gate = asyncio.Semaphore(PAGES_AT_ONCE)

        async def one(page: PageToFetch) -> None:
            async with gate:
                status = await _complete_page(
                    page,
                    record=record,
                    fetcher=fetcher,
                    parser=parser,
                    public_only=not trusted[source_id],
                )
            if status == FETCHED:
                report.pages_fetched += 1
            else:
                report.pages_failed += 1

        await asyncio.gather(*(one(p) for p in todo))

    await asyncio.gather(*(one_source(sid, todo) for sid, todo in by_source.items()))


async def _complete_page(
    page: PageToFetch,
    *,
    record: GroupCommit[None],
    fetcher: Fetcher,
    parser: ParsePool,
    public_only: bool,
) -> str:
    """Fetch one article's page and keep its main text when longer than the teaser. Fetched or
    failed, the article is then summarisable: a failure keeps the teaser, never the wait."""
    body: str | None = None
    try:
        fetched = await fetcher.get(page.url, public_only=public_only)
        if fetched.error is not None or not fetched.body:
            status = FAILED
            log.info(
                "article page not fetched",
                extra={"article_id": page.article_id, "url": page.url, "error": fetched.error},
            )
        else:
            status = FETCHED
            text = await parser.extract(fetched.body, page.url)
            if text and len(text) >= max(MIN_EXTRACTED_CHARS, len(page.body_text)):
                body = text[:MAX_BODY_CHARS]
    except Exception:  # one page's bug must not keep the others or the poll report waiting
        log.exception("article page failed", extra={"article_id": page.article_id})
        status, body = FAILED, None
    await record(
        article_id=page.article_id,
        status=status,
        body_text=body,
        content_hash=None if body is None else content_hash(nfkc(page.title), body),
    )
    return status


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


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


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
        recovered_after=source.error_count if source.error_count >= RECOVERY_NOTICE_AFTER else 0,
    )


def _failure(
    source: _SourceRef,
    config: PollConfig,
    status: int | None,
    error: str,
    retry_after: float | None,
    now: datetime,
) -> PollState:
    """Exponential back-off per source (interval × 2^errors, capped), never sooner than the
    server's Retry-After; disabled once the failures reach the count or the duration."""
    delay = min(config.interval * (2 ** min(source.error_count + 1, 16)), config.max_backoff)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    failures = source.error_count + 1
    failing_since = source.failing_since or now
    disable = None
    if config.disable_after_failures and failures >= config.disable_after_failures:
        disable = "failures"
    elif config.disable_after is not None and now - failing_since >= config.disable_after:
        disable = "duration"
    log.warning(
        "source failed",
        extra={
            "source_id": source.id,
            "url": source.url,
            "error": error,
            "failures": failures,
            "disabled": disable,
        },
    )
    return PollState(
        source_id=source.id,
        polled_at=now,
        next_poll_at=now + delay,
        status=status,
        error_count=failures,
        error=error,
        failing_since=failing_since,
        disable=disable,
        host_retry_at=now + timedelta(seconds=retry_after) if retry_after is not None else None,
    )
