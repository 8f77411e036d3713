"""Queries on summaries: the cache lookup and the insert."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.models import Summary


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
    """Insert unless the article got a summary meanwhile (another process); True if stored."""
    taken = session.exec(select(Summary.id).where(Summary.article_id == summary.article_id)).first()
    if taken is not None:
        return False
    session.add(summary)
    return True
