"""Queries on articles: insert-if-new, story grouping, article pages still to fetch, and what
summarising and briefing read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Select, Table, bindparam, func, or_, update
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Article, Source, Summary

# Article.page_status: the feed gave a teaser and the article's page is still to be fetched,
# was fetched (its main text kept when longer), or could not be fetched (the teaser stays).
WAITING = "waiting"
FETCHED = "fetched"
FAILED = "failed"

# Bind parameters per IN list: far below every backend's limit, for a feed of thousands.
_CHUNK = 500
T = TypeVar("T")


def entry_key(guid: str | None, url: str) -> str:
    """An entry's identity within its source: its guid when it has one, else its link (with
    the fragment, which is all that tells a diary's posts apart). The prefix keeps a guid that
    happens to equal another entry's link from colliding with it."""
    return f"id:{guid}" if guid else f"link:{url}"


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An entry as the poller hands it over. `canonical_url` None: not used to find this
    article in other sources. `wants_page`: the text is a teaser; the page is fetched later
    (see `waiting_pages`) and the article is not summarised before that."""

    url: str
    guid: str | None
    title: str
    language: str
    published_at: datetime | None
    body_text: str
    content_hash: str
    canonical_url: str | None = None
    wants_page: bool = False

    @property
    def entry_key(self) -> str:
        return entry_key(self.guid, self.url)


@dataclass(frozen=True, slots=True)
class TitleRow:
    id: int
    source_id: int
    title: str
    story_id: int | None


@dataclass(frozen=True, slots=True)
class PageToFetch:
    article_id: int
    source_id: int
    url: str
    title: str
    body_text: str


@dataclass(frozen=True, slots=True)
class _Known:
    id: int
    source_id: int
    entry_key: str
    url: str
    title: str
    guid: str | None
    canonical_url: str | None


def _table() -> Table:
    return Article.__table__  # type: ignore[attr-defined, no-any-return]


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


@cache
def _known_statements() -> tuple[Select[Any], Select[Any]]:
    """The two lookups of `_known_rows`, built once: the poller runs them for every feed, and
    building a statement with `in_(values)` coerces each value into a bind parameter of its own
    (most of a lookup's CPU), where an expanding parameter takes the list as it is."""
    table = _table()
    columns = [table.c[name] for name in _Known.__slots__]
    by_key = sql_select(*columns).where(
        table.c.source_id == bindparam("source_id"),
        table.c.entry_key.in_(bindparam("keys", expanding=True)),
    )
    by_canonical = sql_select(*columns).where(
        table.c.canonical_url.in_(bindparam("canonicals", expanding=True))
    )
    return by_key, by_canonical


def _known_rows(
    session: Session, source_id: int, keys: Sequence[str], canonicals: Sequence[str]
) -> list[_Known]:
    """Rows of this source with one of `keys`, and rows of any source with one of
    `canonicals`."""
    by_key, by_canonical = _known_statements()
    rows: dict[int, _Known] = {}
    for part in _chunks(keys):
        found = session.execute(by_key, {"source_id": source_id, "keys": list(part)})
        rows.update((r[0], _Known(*r)) for r in found.all())
    for part in _chunks(canonicals):
        found = session.execute(by_canonical, {"canonicals": list(part)})
        rows.update((r[0], _Known(*r)) for r in found.all())
    return list(rows.values())


def _legacy_key(article: NewArticle) -> str | None:
    """The key this entry had before links kept their fragment (migration 0005), when the two
    differ: a guid-less entry whose link has a fragment."""
    if article.guid or "#" not in article.url:
        return None
    return entry_key(None, article.url.partition("#")[0])


def insert_new_articles(
    *, session: Session, source_id: int, articles: Sequence[NewArticle], first_seen_at: datetime
) -> list[tuple[str, int]]:
    """Store the entries not seen before and return (url, id) of the rows inserted.

    An entry is known when its source has its `entry_key`. It is the same article as another
    source's when they share `canonical_url`, and is then not stored again. When two entries of
    this source share a canonical URL, that URL names a page, not an article: both keep it NULL
    (cleared on the row stored earlier too), so neither is lost nor matched elsewhere.

    Rows stored before fragments were kept are repaired in place rather than duplicated: a
    known entry gets its link with the fragment, and a guid-less one keyed by the bare page
    URL is taken over by the entry of the same title. The unique constraints decide under a
    race (`ON CONFLICT DO NOTHING`): another process's row for the same entry or canonical URL
    wins, and this one is skipped."""
    if not articles:
        return []
    legacy = {a.entry_key: k for a in articles if (k := _legacy_key(a)) is not None}
    keys = sorted({a.entry_key for a in articles} | set(legacy.values()))
    canonicals = sorted({a.canonical_url for a in articles if a.canonical_url})
    known = _known_rows(session, source_id, keys, canonicals)
    mine = {k.entry_key: k for k in known if k.source_id == source_id}
    # canonical URL -> who has it: a stored row, or the index of a row about to be inserted.
    claims: dict[str, _Known | int] = {
        k.canonical_url: k for k in known if k.canonical_url is not None
    }
    shared: set[str] = set()
    unshare: set[int] = set()
    repairs: dict[int, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for article in articles:
        key = article.entry_key
        if key in mine:
            stored = mine[key]
            if stored.id and article.url.startswith(stored.url + "#"):
                repairs[stored.id] = _repair(article)
            continue
        old = mine.get(legacy.get(key, ""))
        if old is not None and old.guid is None and old.title == article.title:
            repairs[old.id] = _repair(article) | {"entry_key": key}
            mine[key] = mine.pop(old.entry_key)
            continue
        canonical = article.canonical_url
        if canonical is not None:
            owner = claims.get(canonical)
            if isinstance(owner, _Known) and owner.source_id != source_id:
                continue  # the same article, already stored from another source
            if canonical in shared or owner is not None:
                shared.add(canonical)
                if isinstance(owner, _Known):
                    unshare.add(owner.id)
                elif owner is not None:
                    rows[owner]["canonical_url"] = None
                    rows[owner]["page_status"] = None
                canonical = None
            else:
                claims[canonical] = len(rows)
        mine[key] = _Known(0, source_id, key, article.url, article.title, article.guid, canonical)
        rows.append(
            {
                "source_id": source_id,
                "entry_key": key,
                "url": article.url,
                "canonical_url": canonical,
                "guid": article.guid,
                "title": article.title,
                "language": article.language,
                "published_at": article.published_at,
                "first_seen_at": first_seen_at,
                "body_text": article.body_text,
                "content_hash": article.content_hash,
                "page_status": WAITING if article.wants_page and canonical else None,
            }
        )
    if unshare:
        session.execute(
            update(Article).where(col(Article.id).in_(unshare)).values(canonical_url=None)
        )
    for article_id, values in repairs.items():
        session.execute(update(Article).where(col(Article.id) == article_id).values(**values))
    if not rows:
        return []
    table = _table()
    statement = insert_or_ignore(session, table).returning(table.c.url, table.c.id)
    return [(row[0], row[1]) for row in session.execute(statement, rows)]


def _repair(article: NewArticle) -> dict[str, Any]:
    """New values for a row stored before links kept their fragment. Its canonical URL is
    only ever cleared here: setting one could collide with another row's."""
    values: dict[str, Any] = {"url": article.url}
    if article.canonical_url is None:
        values["canonical_url"] = None
    return values


def waiting_pages(
    *, session: Session, source_ids: Sequence[int], per_source: int
) -> list[PageToFetch]:
    """Per source, the `per_source` newest articles still waiting for their page (undated ones
    by their first-seen time): what one poll may fetch from that publisher."""
    if not source_ids or per_source <= 0:
        return []
    table = _table()
    when = func.coalesce(table.c.published_at, table.c.first_seen_at)
    rank = (
        func.row_number()
        .over(partition_by=table.c.source_id, order_by=(when.desc(), table.c.id.desc()))
        .label("rank")
    )
    ranked = (
        sql_select(
            table.c.id, table.c.source_id, table.c.url, table.c.title, table.c.body_text, rank
        )
        .where(table.c.page_status == WAITING, table.c.source_id.in_(source_ids))
        .subquery()
    )
    rows = session.execute(
        sql_select(ranked)
        .where(ranked.c.rank <= per_source)
        .order_by(ranked.c.source_id, ranked.c.rank)
    ).all()
    return [PageToFetch(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def record_page(
    *,
    session: Session,
    article_id: int,
    status: str,
    body_text: str | None = None,
    content_hash: str | None = None,
) -> None:
    """The outcome of an article's page: `status` FETCHED or FAILED, and the page's main text
    when it replaces the teaser. The article becomes summarisable either way."""
    values: dict[str, Any] = {"page_status": status}
    if body_text is not None and content_hash is not None:
        values |= {"body_text": body_text, "content_hash": content_hash}
    session.execute(update(Article).where(col(Article.id) == article_id).values(**values))


def count_waiting_pages(*, session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(Article).where(col(Article.page_status) == WAITING)
    ).one()


def _not_waiting() -> Any:
    return or_(col(Article.page_status).is_(None), col(Article.page_status) != WAITING)


def recent_titles(*, session: Session, since: datetime) -> list[TitleRow]:
    rows = session.exec(
        select(Article.id, Article.source_id, Article.title, Article.story_id)
        .where(col(Article.first_seen_at) >= since)
        .order_by(col(Article.id))
    ).all()
    return [TitleRow(id=r[0], source_id=r[1], title=r[2], story_id=r[3]) for r in rows if r[0]]


def set_story_ids(*, session: Session, story_of: dict[int, int]) -> None:
    """One executemany of a Core UPDATE: the ORM's bulk update by primary key computes an
    identity key per row, a third of a large poll's story step."""
    if story_of:
        table = _table()
        statement = (
            update(table)
            .where(table.c.id == bindparam("article_id"))
            .values(story_id=bindparam("story"))
        )
        session.execute(
            statement,
            [{"article_id": article_id, "story": story} for article_id, story in story_of.items()],
        )


def model_titles_near(
    *, session: Session, article_ids: Sequence[int], window: timedelta
) -> list[TitleRow]:
    """The Japanese titles the model wrote, for articles first seen within `window` of the
    given ones (which are included), in id order: what cross-language grouping compares."""
    if not article_ids:
        return []
    first, last = session.exec(
        select(func.min(Article.first_seen_at), func.max(Article.first_seen_at)).where(
            col(Article.id).in_(list(article_ids))
        )
    ).one()
    if first is None or last is None:
        return []
    rows = session.exec(
        select(Article.id, Article.source_id, Summary.title_ja, Article.story_id)
        .join(Summary, col(Summary.article_id) == Article.id)
        .where(
            col(Summary.method) == "llm",
            col(Article.first_seen_at) >= first - window,
            col(Article.first_seen_at) <= last + window,
        )
        .order_by(col(Article.id))
    ).all()
    return [TitleRow(id=r[0], source_id=r[1], title=r[2], story_id=r[3]) for r in rows if r[0]]


def merge_stories(*, session: Session, into: dict[int, int]) -> int:
    """Move every article of each story `s` into story `into[s]` (whole stories move, so an
    English story's near-duplicates follow it into the Japanese one). Returns articles moved."""
    moved = 0
    for story, target in into.items():
        if story == target:
            continue
        result = session.execute(
            update(Article)
            .where(
                or_(
                    col(Article.story_id) == story,
                    (col(Article.id) == story) & col(Article.story_id).is_(None),
                )
            )
            .values(story_id=target)
        )
        moved += int(getattr(result, "rowcount", 0) or 0)
    return moved


def articles_with_sources(*, session: Session, ids: Sequence[int]) -> list[tuple[Article, Source]]:
    """The given articles with their sources, oldest first."""
    rows = session.exec(
        select(Article, Source)
        .join(Source, col(Source.id) == Article.source_id)
        .where(col(Article.id).in_(list(ids)))
        .order_by(col(Article.id))
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
    """Articles still to summarise (not waiting for their page), claimed or not."""
    return session.exec(
        select(func.count())
        .select_from(Article)
        .outerjoin(Summary, col(Summary.article_id) == Article.id)
        .where(col(Summary.id).is_(None), _not_waiting())
    ).one()
