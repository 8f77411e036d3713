"""Queries on summaries: the cache lookup, the insert, and re-summarising budget fallbacks."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Article, Source, Summary, SummaryOutcome
from storage.search.index import index_articles


def cached_summary(
    *, session: Session, content_hash: str, model: str, prompt_version: str
) -> Summary | None:
    """A summary already made for identical content with the same model and prompt."""
    return session.exec(
        select(Summary)
        .where(
            Summary.content_hash == content_hash,
            Summary.model == model,
            Summary.prompt_version == prompt_version,
        )
        .order_by(col(Summary.id))
        .limit(1)
    ).first()


def save_summary(
    *, session: Session, summary: Summary, outcome: SummaryOutcome | None = None
) -> bool:
    """Insert unless the article got a summary meanwhile (another job or process: the unique
    article_id decides); True if stored. `outcome` is recorded only with a stored summary, so
    `ainews stats` never counts the loser of a race."""
    table = Summary.__table__  # type: ignore[attr-defined]
    values = summary.model_dump(exclude={"id"})
    # RETURNING, not rowcount, which psycopg reports as -1 for INSERT … ON CONFLICT DO NOTHING.
    stored = (
        session.execute(
            insert_or_ignore(session, table).values(**values).returning(table.c.id)
        ).first()
        is not None
    )
    if stored:  # searchable with its Japanese summary from now on, in the same transaction
        index_articles(session=session, article_ids=[summary.article_id])
        if outcome is not None:
            session.add(outcome)
    return stored


def budget_fallbacks(
    *, session: Session, causes: Collection[str], before: datetime, limit: int
) -> list[tuple[Article, Source, Summary]]:
    """Extractive summaries made before `before` for one of `causes`, newest article first:
    the ones worth the model's time when a later day has budget left."""
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    rows = session.exec(
        select(Article, Source, Summary)
        .join(Summary, col(Summary.article_id) == Article.id)
        .join(Source, col(Source.id) == Article.source_id)
        .where(
            Summary.method == "extractive",
            col(Summary.fallback).in_(causes),
            Summary.created_at < before,
        )
        .order_by(when.desc(), col(Article.id).desc())
        .limit(limit)
    ).all()
    return [(a, s, m) for a, s, m in rows]


def replace_fallback(
    *, session: Session, summary_id: int, summary: Summary, outcome: SummaryOutcome
) -> bool:
    """Put `summary`'s fields into the stored fallback `summary_id`, unless another run did it
    first (compare-and-set on the fallback being extractive still); True if replaced. The row
    keeps its id, so a DM bundle that already carried the article does not carry it again."""
    values = summary.model_dump(exclude={"id", "article_id", "created_at"})
    replaced = session.execute(
        update(Summary)
        .where(col(Summary.id) == summary_id, col(Summary.method) == "extractive")
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    if replaced:
        index_articles(session=session, article_ids=[summary.article_id])
        session.add(outcome)
    return bool(replaced)


def set_fallback(*, session: Session, summary_id: int, cause: str) -> None:
    """A fallback that the model could not improve on later: its new cause keeps it from
    being tried again."""
    session.execute(update(Summary).where(col(Summary.id) == summary_id).values(fallback=cause))
