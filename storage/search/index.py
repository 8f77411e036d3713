"""Writing the search index: one row per article, from its title, body and summary.

An article is indexed when its summary is stored (the summarize job runs right after every
poll), so its Japanese summary fields are searchable from the start; `ainews reindex` rebuilds
everything. Deleted articles leave the index by cascade (PostgreSQL) or trigger (SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select as select_columns
from sqlalchemy import text
from sqlmodel import Session, col, select

from storage.models import Article, Summary
from storage.search.terms import cjk_chars, index_text

# A word no real text contains: it only marks the end of a field and is deleted again.
PG_FIELD_GAP = "zzainewsfieldgapzz"


@dataclass(frozen=True, slots=True)
class IndexRow:
    article_id: int
    title: str
    keywords: str
    summary: str
    body: str
    chars: str


def build_row(row: Any) -> IndexRow:
    """One article's index row from the columns `index_articles` selects (the summary's are
    None when the article has none)."""
    title = row.title
    keywords = ""
    summary_text = ""
    if row.title_ja is not None:
        title = f"{row.title}\n{row.title_ja}"
        keywords = " ".join(row.keywords or ())
        summary_text = "\n".join([row.overview, *(row.points or ()), row.why_important])
    everything = "\n".join([title, keywords, summary_text, row.body_text])
    return IndexRow(
        article_id=row.id,
        title=index_text(title),
        keywords=index_text(keywords),
        summary=index_text(summary_text),
        body=index_text(row.body_text),
        chars=cjk_chars(everything),
    )


def index_articles(*, session: Session, article_ids: Sequence[int]) -> int:
    """(Re)index these articles; returns how many rows were written. Only the columns the
    index reads are selected, so migration 0010 can rebuild the index with this code while
    columns that later migrations add do not exist yet."""
    if not article_ids:
        return 0
    rows = session.execute(
        select_columns(
            col(Article.id),
            col(Article.title),
            col(Article.body_text),
            col(Summary.title_ja),
            col(Summary.keywords),
            col(Summary.overview),
            col(Summary.points),
            col(Summary.why_important),
        )
        .outerjoin(Summary, col(Summary.article_id) == Article.id)
        .where(col(Article.id).in_(article_ids))
    ).all()
    write_rows(session, [build_row(row) for row in rows])
    return len(rows)


def write_rows(session: Session, rows: list[IndexRow]) -> None:
    if not rows:
        return
    params = [
        {
            "id": r.article_id,
            "title": r.title,
            "keywords": r.keywords,
            "summary": r.summary,
            "body": r.body,
            "chars": r.chars,
        }
        for r in rows
    ]
    ids = [{"id": r.article_id} for r in rows]
    if session.get_bind().dialect.name == "postgresql":
        # `||` numbers the right vector's positions right after the left one's, so the last
        # word of a field and the first of the next would read as a phrase (title_ja ending in
        # "AI" + keywords starting with 規制 = "AI規制"). A placeholder word after each field,
        # deleted once the fields are joined, leaves a gap, as FTS5's separate columns do.
        gap = PG_FIELD_GAP
        session.execute(
            text(
                "INSERT INTO article_search (article_id, document, chars) VALUES (:id, "
                "ts_delete("
                f"setweight(to_tsvector('simple', :title || ' {gap}'), 'A') || "
                f"setweight(to_tsvector('simple', :keywords || ' {gap}'), 'B') || "
                f"setweight(to_tsvector('simple', :summary || ' {gap}'), 'C') || "
                f"setweight(to_tsvector('simple', :body), 'D'), '{gap}'::text), "
                "to_tsvector('simple', :chars)) "
                "ON CONFLICT (article_id) DO UPDATE SET document = EXCLUDED.document, "
                "chars = EXCLUDED.chars"
            ),
            params,
        )
    else:
        session.execute(text("DELETE FROM article_fts WHERE rowid = :id"), ids)
        session.execute(
            text(
                "INSERT INTO article_fts (rowid, title, keywords, summary, body, chars) "
                "VALUES (:id, :title, :keywords, :summary, :body, :chars)"
            ),
            params,
        )


def clear_index(*, session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("DELETE FROM article_search"))
    else:
        session.execute(text("DELETE FROM article_fts"))


def all_article_ids(*, session: Session) -> list[int]:
    return [i for i in session.exec(select(Article.id).order_by(col(Article.id))) if i]
