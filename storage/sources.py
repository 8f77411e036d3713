"""Queries on sources and their polling state."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from storage.models import Source


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
    error: str | None = None
    moved_to: str | None = None
    keep_validators: bool = True


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


def due_sources(*, session: Session, now: datetime, force: bool = False) -> list[Source]:
    """Enabled sources whose next poll time has come (all enabled ones when forced)."""
    query = select(Source).where(col(Source.enabled))
    if not force:
        query = query.where(
            or_(col(Source.next_poll_at).is_(None), col(Source.next_poll_at) <= now)
        )
    return list(session.exec(query.order_by(col(Source.id))))


def record_poll_states(*, session: Session, states: Iterable[PollState]) -> None:
    """Apply poll outcomes. Errors bump `error_count` (it drives the back-off); a success resets
    it. Validators are replaced only by a fresh 200 response."""
    for state in states:
        source = session.get(Source, state.source_id)
        if source is None:  # removed while the poll ran
            continue
        source.last_polled_at = state.polled_at
        source.next_poll_at = state.next_poll_at
        source.last_status = state.status
        if state.error is None:
            source.error_count = 0
            source.last_error = None
        else:
            source.error_count += 1
            source.last_error = state.error
        if not state.keep_validators:
            source.etag = state.etag
            source.last_modified = state.last_modified
        if state.moved_to and state.moved_to != source.url:
            taken = session.exec(select(Source.id).where(Source.url == state.moved_to)).first()
            if taken is None:
                source.url = state.moved_to
        session.add(source)
