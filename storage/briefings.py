"""Queries behind the daily briefing: the window's summarised articles, and the claim rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.clock import utcnow
from storage.db import insert_or_ignore
from storage.models import Article, Briefing, Source, Summary


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


def claim_briefing(*, session: Session, day: date, destination: str) -> Briefing | None:
    """Claim (day, destination) for posting; None when it is already posted. An earlier claim
    that never finished (crash) is returned again so the caller can resume it."""
    table = Briefing.__table__  # type: ignore[attr-defined]
    claimed = session.execute(
        insert_or_ignore(session, table).values(
            day=day, destination=destination, status="claimed", payload={}, claimed_at=utcnow()
        )
    ).rowcount  # type: ignore[attr-defined]
    briefing = session.exec(
        select(Briefing).where(Briefing.day == day, Briefing.destination == destination)
    ).one()
    if claimed:
        return briefing
    return None if briefing.status == "posted" else briefing


def mark_posted(*, session: Session, briefing_id: int, parent_ref: str | None) -> None:
    briefing = session.get(Briefing, briefing_id)
    if briefing is not None:
        briefing.status = "posted"
        briefing.parent_ref = parent_ref
        briefing.posted_at = utcnow()
        session.add(briefing)
