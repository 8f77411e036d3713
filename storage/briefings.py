"""Queries behind the daily briefing and the weekly report: the window's summarised articles,
the claim rows and the stored documents. Both documents use the same rows, told apart by
`kind` (`DAILY`, or `WEEKLY` keyed by the week's Monday)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from storage.clock import ensure_utc, utcnow
from storage.db import insert_or_ignore
from storage.models import Article, Briefing, BriefingPost, DailyBriefing, Source, Summary

# The claim time of a claim released by its poster (`record_failure`): free for anyone at once.
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
DAILY = "daily"
WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class Candidate:
    article: Article
    source: Source
    summary: Summary


def candidates_between(*, session: Session, start: datetime, end: datetime) -> list[Candidate]:
    """Summarised articles whose publication time (first-seen time when undated) is in
    [start, end)."""
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    rows = session.exec(
        select(Article, Source, Summary)
        .join(Source, col(Source.id) == Article.source_id)
        .join(Summary, col(Summary.article_id) == Article.id)
        .where(when >= start, when < end)
        .order_by(col(Article.id))
    ).all()
    return [Candidate(a, s, m) for a, s, m in rows]


def unsummarised_between(*, session: Session, start: datetime, end: datetime) -> int:
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    return session.exec(
        select(func.count())
        .select_from(Article)
        .outerjoin(Summary, col(Summary.article_id) == Article.id)
        .where(when >= start, when < end, col(Summary.id).is_(None))
    ).one()


def claim_briefing(
    *,
    session: Session,
    day: date,
    destination: str,
    payload: dict[str, Any],
    lease_seconds: float,
    on_takeover: Callable[[], None] | None = None,
    kind: str = DAILY,
) -> Briefing | None:
    """Claim (day, destination) for posting, or None when that is not ours to do: already
    posted, or being posted by a live process (its heartbeat is newer than the lease). A claim
    whose poster stopped (crash) is taken over, so the thread resumes; the stored payload is
    what gets posted. `on_takeover` is called when this call took over a claim whose lease ran
    out — not one its poster released after a failure — for the metrics: many takeovers mean
    posters dying, or a lease shorter than the pause between two posts."""
    now = utcnow()
    table = Briefing.__table__  # type: ignore[attr-defined]
    # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING, which
    # read as "inserted" let every process claim a briefing already claimed or posted.
    inserted = (
        session.execute(
            insert_or_ignore(session, table)
            .values(
                kind=kind,
                day=day,
                destination=destination,
                status="claimed",
                payload=payload,
                claimed_at=now,
            )
            .returning(table.c.id)
        ).first()
        is not None
    )
    briefing = session.exec(
        select(Briefing).where(
            Briefing.kind == kind, Briefing.day == day, Briefing.destination == destination
        )
    ).one()
    if inserted:
        return briefing
    if briefing.status == "posted":
        return None
    held_since = ensure_utc(briefing.claimed_at)
    if held_since > now - timedelta(seconds=lease_seconds):
        return None
    taken = session.execute(  # compare-and-set: one taker wins
        update(Briefing)
        .where(col(Briefing.id) == briefing.id, col(Briefing.claimed_at) == briefing.claimed_at)
        .values(claimed_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not taken:
        return None
    if on_takeover is not None and held_since != RELEASED:
        on_takeover()
    return briefing


def heartbeat(*, session: Session, briefing_id: int) -> None:
    session.execute(
        update(Briefing).where(col(Briefing.id) == briefing_id).values(claimed_at=utcnow())
    )


def set_parent_ref(*, session: Session, briefing_id: int, parent_ref: str) -> None:
    session.execute(
        update(Briefing)
        .where(col(Briefing.id) == briefing_id)
        .values(parent_ref=parent_ref, claimed_at=utcnow())
    )


def posted_items(*, session: Session, briefing_id: int) -> set[int]:
    return set(
        session.exec(select(BriefingPost.item_no).where(BriefingPost.briefing_id == briefing_id))
    )


def record_post(*, session: Session, briefing_id: int, item_no: int, message_ref: str) -> None:
    table = BriefingPost.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            briefing_id=briefing_id, item_no=item_no, message_ref=message_ref, posted_at=utcnow()
        )
    )
    heartbeat(session=session, briefing_id=briefing_id)


def forget_posted_briefing(
    *, session: Session, day: date, destination: str, kind: str = DAILY
) -> bool:
    """Drop a *posted* briefing's claim so that it can be posted again (`post-digest`). A claim
    whose posting is in progress is kept: deleting it would let a second thread start."""
    briefing = session.exec(
        select(Briefing).where(
            Briefing.kind == kind,
            Briefing.day == day,
            Briefing.destination == destination,
            Briefing.status == "posted",
        )
    ).first()
    if briefing is None:
        return False
    session.execute(delete(BriefingPost).where(col(BriefingPost.briefing_id) == briefing.id))
    session.delete(briefing)
    return True


def record_failure(*, session: Session, briefing_id: int, error: str) -> int:
    """Count a failed attempt and release the lease at once, so the retry (by this process or
    another) resumes the thread without waiting for the lease to expire. Returns the attempts."""
    briefing = session.get(Briefing, briefing_id)
    if briefing is None:
        return 0
    briefing.attempts += 1
    briefing.last_error = error[:2000]
    briefing.claimed_at = RELEASED
    session.add(briefing)
    return briefing.attempts


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a day's briefing went for one destination, for the next briefing to report."""

    status: str
    attempts: int
    last_error: str | None
    posted_at: datetime | None


def briefing_outcome(
    *, session: Session, day: date, destination: str, kind: str = DAILY
) -> Outcome | None:
    briefing = session.exec(
        select(Briefing).where(
            Briefing.kind == kind, Briefing.day == day, Briefing.destination == destination
        )
    ).first()
    if briefing is None:
        return None
    posted = ensure_utc(briefing.posted_at) if briefing.posted_at else None
    return Outcome(briefing.status, briefing.attempts, briefing.last_error, posted)


def daily_briefing(*, session: Session, day: date, kind: str = DAILY) -> dict[str, Any] | None:
    row = session.exec(
        select(DailyBriefing).where(DailyBriefing.kind == kind, DailyBriefing.day == day)
    ).first()
    return row.payload if row is not None else None


def save_daily_briefing(
    *, session: Session, day: date, payload: dict[str, Any], replace: bool, kind: str = DAILY
) -> dict[str, Any]:
    """Store the day's briefing; with `replace=False` a briefing stored a moment earlier (by
    another request or process) wins and is returned instead."""
    table = DailyBriefing.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            kind=kind, day=day, payload=payload, built_at=utcnow()
        )
    )
    row = session.exec(
        select(DailyBriefing).where(DailyBriefing.kind == kind, DailyBriefing.day == day)
    ).one()
    if replace and row.payload != payload:
        row.payload = payload
        row.built_at = utcnow()
        session.add(row)
    return row.payload


def mark_posted(*, session: Session, briefing_id: int, parent_ref: str | None) -> None:
    briefing = session.get(Briefing, briefing_id)
    if briefing is not None:
        briefing.status = "posted"
        briefing.parent_ref = parent_ref or briefing.parent_ref
        briefing.posted_at = utcnow()
        session.add(briefing)


def category_counts_between(*, session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Summarised articles per category whose time (published, else first seen) is in
    [start, end): the counts the weekly report's カテゴリー別動向 states."""
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    rows = session.exec(
        select(Summary.category, func.count())
        .select_from(Article)
        .join(Summary, col(Summary.article_id) == Article.id)
        .where(when >= start, when < end)
        .group_by(col(Summary.category))
    ).all()
    return {str(category): int(n) for category, n in rows}
