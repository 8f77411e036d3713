"""Queries on summaries: the cache lookup and the insert."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Summary
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


def save_summary(*, session: Session, summary: Summary) -> bool:
    """Insert unless the article got a summary meanwhile (another job or process: the unique
    article_id decides); True if stored."""
    table = Summary.__table__  # type: ignore[attr-defined]
    values = summary.model_dump(exclude={"id"})
    result = session.execute(insert_or_ignore(session, table).values(**values))
    stored = bool(result.rowcount)  # type: ignore[attr-defined]
    if stored:  # searchable with its Japanese summary from now on, in the same transaction
        index_articles(session=session, article_ids=[summary.article_id])
    return stored
