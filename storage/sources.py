"""Queries on sources and their polling state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, update
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
    error_count: int = 0
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
        }
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
    for state in states:
        if state.moved_to and state.source_id in existing:
            taken = session.exec(select(Source.id).where(Source.url == state.moved_to)).first()
            if taken is None:
                session.execute(
                    update(Source)
                    .where(col(Source.id) == state.source_id)
                    .values(url=state.moved_to)
                )


def unhealthy_sources(*, session: Session, min_failures: int = 3) -> list[Source]:
    """Enabled sources whose last `min_failures` polls or more all failed, worst first: the
    weekly report's line about feeds that need an operator. (Kept to this one function so that
    a notion of disabled sources can replace the rule in one place.)"""
    return list(
        session.exec(
            select(Source)
            .where(col(Source.enabled).is_(True), col(Source.error_count) >= min_failures)
            .order_by(col(Source.error_count).desc(), col(Source.id))
        ).all()
    )
