"""Queries on sources and their polling state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Article, Source, SourceNotice

HEALTH_WINDOW = timedelta(days=7)  # "items in the last 7 days" of `sources list`
DISABLED = "disabled"
RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A source as the operator describes it (sources.toml, OPML, `ainews sources add`)."""

    url: str
    name: str
    category: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class PollState:
    """What one poll learned about one source, applied in a single UPDATE."""

    source_id: int
    polled_at: datetime
    next_poll_at: datetime
    status: int | None
    etag: str | None = None
    last_modified: str | None = None
    error_count: int = 0
    error: str | None = None
    moved_to: str | None = None
    keep_validators: bool = True
    # Feed health: the first failure of the current streak (None after a success); `disable`
    # is why this failure disables the source (`failures` or `duration`); `recovered_after`
    # is the length of the failure streak this success ends, when it is worth saying.
    failing_since: datetime | None = None
    disable: str | None = None
    recovered_after: int = 0
    # Until when the server asked us (Retry-After) not to come back: the whole host waits,
    # in every process (`storage.claims.release_hosts`). Not stored on the source.
    host_retry_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None


def add_source(
    *,
    session: Session,
    url: str,
    name: str,
    category: str,
    language: str = "en",
    trusted: bool = True,
) -> Source:
    source = Source(url=url, name=name, category=category, language=language, trusted=trusted)
    session.add(source)
    session.flush()
    return source


def add_missing_sources(
    *, session: Session, specs: Iterable[SourceSpec], trusted: bool = True
) -> list[SourceSpec]:
    """Add the specs whose URL is not stored yet; returns the ones added."""
    known = existing_source_urls(session=session)
    added = []
    for spec in specs:
        if spec.url in known:
            continue
        add_source(
            session=session,
            url=spec.url,
            name=spec.name,
            category=spec.category,
            language=spec.language,
            trusted=trusted,
        )
        known.add(spec.url)
        added.append(spec)
    return added


def get_source(*, session: Session, url_or_id: str) -> Source | None:
    if url_or_id.isdigit():
        return session.get(Source, int(url_or_id))
    return session.exec(select(Source).where(Source.url == url_or_id)).first()


def list_sources(*, session: Session) -> list[Source]:
    return list(session.exec(select(Source).order_by(col(Source.id))))


def existing_source_urls(*, session: Session) -> set[str]:
    return set(session.exec(select(Source.url)))


def remove_source_by(*, session: Session, url_or_id: str) -> bool:
    """Delete a source and, by cascade, its articles; False when nothing matches."""
    source = get_source(session=session, url_or_id=url_or_id)
    if source is None:
        return False
    session.delete(source)
    return True


def is_due(now: datetime, *, force: bool = False) -> ColumnElement[bool]:
    """Enabled, and its next poll time has come; forced, any enabled source not polled since
    `now` (the start of the pass: a pass claiming chunk after chunk polls each source once)."""
    enabled: ColumnElement[bool] = col(Source.enabled).is_(True)
    if force:
        return and_(
            enabled,
            or_(col(Source.last_polled_at).is_(None), col(Source.last_polled_at) < now),
        )
    return and_(enabled, or_(col(Source.next_poll_at).is_(None), col(Source.next_poll_at) <= now))


def count_due_sources(*, session: Session, now: datetime, force: bool = False) -> int:
    """How many sources a poll at `now` would take: the CLI's progress bar, counted, not
    loaded (thousands of rows at every `ainews poll`)."""
    return int(
        session.exec(select(func.count()).select_from(Source).where(is_due(now, force=force))).one()
    )


def has_sources(*, session: Session) -> bool:
    return session.exec(select(Source.id).limit(1)).first() is not None


def sources_with_ids(*, session: Session, ids: Sequence[int]) -> list[Source]:
    return list(
        session.exec(select(Source).where(col(Source.id).in_(list(ids))).order_by(col(Source.id)))
    )


def record_poll_states(*, session: Session, states: Sequence[PollState]) -> None:
    """Apply poll outcomes in one bulk UPDATE (a 304 pass over hundreds of sources is one
    statement, not hundreds). Validators change only with a fresh 200 response; a permanent
    redirect moves the source unless another source already has the new URL."""
    rows: list[dict[str, object]] = []
    for state in states:
        row: dict[str, object] = {
            "id": state.source_id,
            "last_polled_at": state.polled_at,
            "next_poll_at": state.next_poll_at,
            "last_status": state.status,
            "error_count": state.error_count,
            "last_error": state.error,
            "claimed_by": None,  # the poll's claim ends with its outcome
            "claimed_until": None,
            "failing_since": state.failing_since,
        }
        if state.succeeded:
            row["last_success_at"] = state.polled_at
        if not state.keep_validators:
            row["etag"] = state.etag
            row["last_modified"] = state.last_modified
        rows.append(row)
    existing = set(
        session.exec(select(Source.id).where(col(Source.id).in_([r["id"] for r in rows])))
    )
    for keys in {tuple(sorted(r)) for r in rows}:  # executemany needs one shape per batch
        batch = [r for r in rows if tuple(sorted(r)) == keys and r["id"] in existing]
        if batch:
            session.execute(update(Source), batch)
    _count_polls(session=session, states=[s for s in states if s.source_id in existing])
    for state in states:
        if state.moved_to and state.source_id in existing:
            taken = session.exec(select(Source.id).where(Source.url == state.moved_to)).first()
            if taken is None:
                session.execute(
                    update(Source)
                    .where(col(Source.id) == state.source_id)
                    .values(url=state.moved_to)
                )


def _count_polls(*, session: Session, states: Sequence[PollState]) -> None:
    """The health counters, incremented in the database (two statements per pass, however
    many sources), and each transition worth announcing stored once as a `SourceNotice`."""
    polled = [s.source_id for s in states]
    if polled:
        session.execute(
            update(Source)
            .where(col(Source.id).in_(polled))
            .values(poll_count=col(Source.poll_count) + 1)
        )
    unchanged = [s.source_id for s in states if s.succeeded and s.status == 304]
    if unchanged:
        session.execute(
            update(Source)
            .where(col(Source.id).in_(unchanged))
            .values(not_modified_count=col(Source.not_modified_count) + 1)
        )
    for state in states:
        if state.disable is not None:
            # Compare-and-set: of two processes recording the same failure, one disables.
            disabled = session.execute(
                update(Source)
                .where(col(Source.id) == state.source_id, col(Source.enabled))
                .values(enabled=False, disabled_at=state.polled_at, disabled_reason=state.disable)
            ).rowcount  # type: ignore[attr-defined]
            if disabled:
                _add_notice(session, state, DISABLED, state.error_count, state.disable)
        elif state.recovered_after:
            _add_notice(session, state, RECOVERED, state.recovered_after, None)


def _add_notice(
    session: Session, state: PollState, kind: str, failures: int, reason: str | None
) -> None:
    table = SourceNotice.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            source_id=state.source_id,
            kind=kind,
            reason=reason,
            failures=failures,
            streak_started_at=state.failing_since or state.polled_at,
            created_at=state.polled_at,
        )
    )


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """A source as `sources list` shows it. `status` is `ok`, `backing_off` (failing, polled
    again later), `disabled` or `never_polled`; `not_modified_share` is the share of polls
    answered 304 (None before the first poll)."""

    source: Source
    status: str
    items_7d: int

    @property
    def not_modified_share(self) -> float | None:
        polls = self.source.poll_count
        return self.source.not_modified_count / polls if polls else None


def health_status(source: Source) -> str:
    if not source.enabled:
        return "disabled"
    if source.error_count > 0:
        return "backing_off"
    return "never_polled" if source.last_polled_at is None else "ok"


def sources_health(*, session: Session, now: datetime) -> list[SourceHealth]:
    """Every source (in id order) with its health and its articles of the last 7 days, dated
    as everywhere else: published, else first seen."""
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    counts = dict(
        session.exec(
            select(Article.source_id, func.count())
            .where(when >= now - HEALTH_WINDOW)
            .group_by(col(Article.source_id))
        ).all()
    )
    return [
        SourceHealth(source, health_status(source), counts.get(source.id or 0, 0))
        for source in list_sources(session=session)
    ]


def enable_source(*, session: Session, url_or_id: str) -> Source | None:
    """Enable a source again with its health counters reset, polled at the next pass (shown
    as never polled until then; the last success is kept); None when nothing matches. A
    disabled notice not yet posted is then no longer posted."""
    source = get_source(session=session, url_or_id=url_or_id)
    if source is None:
        return None
    source.enabled = True
    source.error_count = 0
    source.last_error = None
    source.failing_since = None
    source.poll_count = 0
    source.not_modified_count = 0
    source.disabled_at = None
    source.disabled_reason = None
    source.next_poll_at = None
    source.last_polled_at = None  # 未取得 until the next poll says how it is
    session.add(source)
    session.flush()
    return source


def unhealthy_sources(*, session: Session, min_failures: int = 3) -> list[Source]:
    """Sources that need an operator, for the weekly report's line: disabled after failing
    (first), then enabled ones whose last `min_failures` polls or more all failed, worst first.
    A source the operator switched off by hand has no `disabled_at` and is not listed."""
    return list(
        session.exec(
            select(Source)
            .where(
                or_(
                    col(Source.disabled_at).is_not(None),
                    and_(col(Source.enabled).is_(True), col(Source.error_count) >= min_failures),
                )
            )
            .order_by(col(Source.enabled), col(Source.error_count).desc(), col(Source.id))
        ).all()
    )
