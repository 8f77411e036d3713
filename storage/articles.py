"""Queries on articles: insert-if-new, story grouping, and what summarising and briefing read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Article, Source, Summary


@dataclass(frozen=True, slots=True)
class NewArticle:
    url: str
    guid: str | None
    title: str
    language: str
    published_at: datetime | None
    body_text: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class TitleRow:
    id: int
    source_id: int
    title: str
    story_id: int | None


def insert_new_articles(
    *, session: Session, source_id: int, articles: Sequence[NewArticle], first_seen_at: datetime
) -> list[tuple[str, int]]:
    """Store the articles not seen before (by normalised URL, or GUID within the source) and
    return (url, id) of the rows inserted."""
    if not articles:
        return []
    urls = [a.url for a in articles]
    guids = [a.guid for a in articles if a.guid]
    known = session.exec(
        select(Article.url, Article.guid, Article.source_id).where(
            or_(
                col(Article.url).in_(urls),
                and_(col(Article.source_id) == source_id, col(Article.guid).in_(guids)),
            )
        )
    ).all()
    known_urls = {row[0] for row in known}
    known_guids = {row[1] for row in known if row[2] == source_id and row[1]}
    rows: list[dict[str, Any]] = []
    for article in articles:
        if article.url in known_urls or (article.guid and article.guid in known_guids):
            continue
        known_urls.add(article.url)
        if article.guid:
            known_guids.add(article.guid)
        rows.append(
            {
                "source_id": source_id,
                "url": article.url,
                "guid": article.guid,
                "title": article.title,
                "language": article.language,
                "published_at": article.published_at,
                "first_seen_at": first_seen_at,
                "body_text": article.body_text,
                "content_hash": article.content_hash,
            }
        )
    if not rows:
        return []
    table = Article.__table__  # type: ignore[attr-defined]
    statement = insert_or_ignore(session, table).returning(table.c.url, table.c.id)
    return [(row[0], row[1]) for row in session.execute(statement, rows)]


def replace_body(*, session: Session, article_id: int, body_text: str, content_hash: str) -> None:
    session.execute(
        update(Article)
        .where(col(Article.id) == article_id)
        .values(body_text=body_text, content_hash=content_hash)
    )


def recent_titles(*, session: Session, since: datetime) -> list[TitleRow]:
    rows = session.exec(
        select(Article.id, Article.source_id, Article.title, Article.story_id)
        .where(col(Article.first_seen_at) >= since)
        .order_by(col(Article.id))
    ).all()
    return [TitleRow(id=r[0], source_id=r[1], title=r[2], story_id=r[3]) for r in rows if r[0]]


def set_story_ids(*, session: Session, story_of: dict[int, int]) -> None:
    """Bulk UPDATE by primary key (one executemany)."""
    if story_of:
        session.execute(
            update(Article),
            [{"id": article_id, "story_id": story_id} for article_id, story_id in story_of.items()],
        )


def articles_without_summary(*, session: Session, limit: int) -> list[tuple[Article, Source]]:
    rows = session.exec(
        select(Article, Source)
        .join(Source, col(Source.id) == Article.source_id)
        .outerjoin(Summary, col(Summary.article_id) == Article.id)
        .where(col(Summary.id).is_(None))
        .order_by(col(Article.id))
        .limit(limit)
    ).all()
    return [(a, s) for a, s in rows]


def count_articles(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(Article)).one()


def story_sizes(*, session: Session, story_ids: set[int]) -> dict[int, int]:
    """Number of distinct sources that reported each story."""
    if not story_ids:
        return {}
    rows = session.exec(
        select(Article.story_id, func.count(func.distinct(Article.source_id)))
        .where(col(Article.story_id).in_(story_ids))
        .group_by(col(Article.story_id))
    ).all()
    return {int(story): int(count) for story, count in rows if story is not None}


def newest_article_time(*, session: Session) -> datetime | None:
    """Publication time of the newest dated article."""
    return session.exec(select(func.max(Article.published_at))).one()


def count_unsummarised(*, session: Session) -> int:
    return session.exec(
        select(func.count())
        .select_from(Article)
        .outerjoin(Summary, col(Summary.article_id) == Article.id)
        .where(col(Summary.id).is_(None))
    ).one()
