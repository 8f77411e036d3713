"""Retention: old article bodies are emptied, and much older articles deleted.

A body is what a summary is made from and what search matches beyond the summary; after
`AINEWS_RETENTION_DAYS` it is dropped (title, link and summary stay, so the article is still
found by its Japanese summary and cited by `ask`). After `AINEWS_SUMMARY_RETENTION_DAYS` the
article goes with its summary. Ages are the article's date: published, else first seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from storage.models import Article
from storage.search.index import index_articles

# Rows per statement: a first run on a database of years deletes in bounded steps.
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Pruned:
    bodies: int
    articles: int


def prune_articles(
    *, session: Session, bodies_before: datetime, articles_before: datetime
) -> Pruned:
    when = func.coalesce(Article.published_at, Article.first_seen_at)
    deleted = 0
    while ids := list(session.exec(select(Article.id).where(when < articles_before).limit(_BATCH))):
        # Summaries, search rows and the rest go with them (ON DELETE CASCADE, or the FTS
        # delete trigger on SQLite).
        session.execute(delete(Article).where(col(Article.id).in_(ids)))
        deleted += len(ids)
    emptied = 0
    while ids := [
        i
        for i in session.exec(
            select(Article.id).where(when < bodies_before, Article.body_text != "").limit(_BATCH)
        )
        if i is not None
    ]:
        session.execute(update(Article).where(col(Article.id).in_(ids)).values(body_text=""))
        index_articles(session=session, article_ids=ids)  # the body's words are gone
        emptied += len(ids)
    return Pruned(bodies=emptied, articles=deleted)
