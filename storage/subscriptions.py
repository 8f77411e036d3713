"""Per-user subscriptions — categories and saved searches — and what each user has already
been sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from storage.clock import ensure_utc, utcnow
from storage.db import insert_or_ignore
from storage.models import Article, DeliveryCursor, SavedSearch, Source, Subscription, Summary
from storage.search.query import SearchQuery, search
from storage.search.terms import normalise, parse_query_text


def subscribe(*, session: Session, platform: str, user_id: str, categories: Iterable[str]) -> None:
    table = Subscription.__table__  # type: ignore[attr-defined]
    for category in categories:
        session.execute(
            insert_or_ignore(session, table).values(
                platform=platform, user_id=user_id, category=category, created_at=utcnow()
            )
        )
    _start_cursor(session, platform, user_id)
    _reopen_dms(session, platform, user_id)


def unsubscribe(
    *, session: Session, platform: str, user_id: str, categories: Iterable[str] | None
) -> int:
    """Remove the given categories (all when None); returns how many were removed."""
    statement = delete(Subscription).where(
        col(Subscription.platform) == platform, col(Subscription.user_id) == user_id
    )
    if categories is not None:
        statement = statement.where(col(Subscription.category).in_(list(categories)))
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def subscriptions_of(*, session: Session, platform: str, user_id: str) -> list[str]:
    return list(
        session.exec(
            select(Subscription.category).where(
                Subscription.platform == platform, Subscription.user_id == user_id
            )
        )
    )


def _start_cursor(session: Session, platform: str, user_id: str) -> None:
    """A new subscriber starts from now: they get what is summarised after subscribing."""
    newest = session.exec(select(func.coalesce(func.max(Summary.id), 0))).one()
    table = DeliveryCursor.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            platform=platform, user_id=user_id, last_summary_id=newest, updated_at=utcnow()
        )
    )


def _reopen_dms(session: Session, platform: str, user_id: str) -> None:
    """Subscribing again is the user's way of saying their DMs are open now."""
    session.execute(
        update(DeliveryCursor)
        .where(col(DeliveryCursor.platform) == platform, col(DeliveryCursor.user_id) == user_id)
        .values(dm_closed_at=None, dm_closed_notice=False)
    )


def mark_dms_closed(*, session: Session, platform: str, user_id: str) -> None:
    """The platform refused to deliver a DM: stop bundling for this user (no retry every
    interval) and tell them once, in their next command reply."""
    session.execute(
        update(DeliveryCursor)
        .where(col(DeliveryCursor.platform) == platform, col(DeliveryCursor.user_id) == user_id)
        .values(dm_closed_at=utcnow(), dm_closed_notice=True)
    )


def take_dm_notice(*, session: Session, platform: str, user_id: str) -> bool:
    """True once after the user's DMs were found closed; the notice is then cleared."""
    result = session.execute(
        update(DeliveryCursor)
        .where(
            col(DeliveryCursor.platform) == platform,
            col(DeliveryCursor.user_id) == user_id,
            col(DeliveryCursor.dm_closed_notice).is_(True),
        )
        .values(dm_closed_notice=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PendingItem:
    summary_id: int
    article_id: int
    title: str
    url: str
    source: str
    category: str
    overview: str
    importance: int
    published: datetime
    by_category: bool  # in one of the user's categories
    queries: tuple[str, ...] = ()  # the user's saved searches that found it (`SavedQuery.text`)


def pending_deliveries(*, session: Session, platform: str) -> dict[str, list[PendingItem]]:
    """For each subscriber whose DMs are open, the summaries newer than their cursor that are
    in their categories or found by one of their saved searches — each story once, saying why
    it is there. A saved search only looks at summaries made after it was saved."""
    cursors: dict[str, int] = {}
    closed: set[str] = set()
    for cursor in session.exec(select(DeliveryCursor).where(DeliveryCursor.platform == platform)):
        cursors[cursor.user_id] = cursor.last_summary_id
        if cursor.dm_closed_at is not None:
            closed.add(cursor.user_id)
    wanted: defaultdict[str, set[str]] = defaultdict(set)
    for sub in session.exec(select(Subscription).where(Subscription.platform == platform)):
        if sub.user_id not in closed:
            wanted[sub.user_id].add(sub.category)
    saved: defaultdict[str, list[SavedSearch]] = defaultdict(list)
    for search_row in session.exec(
        select(SavedSearch).where(SavedSearch.platform == platform).order_by(col(SavedSearch.id))
    ):
        if search_row.user_id not in closed:
            saved[search_row.user_id].append(search_row)
    users = set(wanted) | set(saved)
    if not users:
        return {}
    oldest = min(cursors.get(user, 0) for user in users)
    rows = session.exec(
        select(Summary, Article, Source)
        .join(Article, col(Article.id) == Summary.article_id)
        .join(Source, col(Source.id) == Article.source_id)
        .where(col(Summary.id) > oldest)
        .order_by(col(Summary.id))
    ).all()
    matcher = _SavedSearchMatcher(session, [(summary, article) for summary, article, _ in rows])
    bundles: dict[str, list[PendingItem]] = {}
    for user in sorted(users):
        after = cursors.get(user, 0)
        categories = wanted.get(user, set())
        found: dict[str, tuple[int, set[int]]] = {}  # saved search → (its floor, stories)
        for row in saved.get(user, []):
            floor = max(after, row.after_summary_id)
            found[SavedQuery.of(row).text] = (floor, matcher.stories(row, after=floor))
        seen_stories: set[int] = set()
        items = []
        for summary, article, source in rows:
            if not summary.id or summary.id <= after:
                continue
            story = article.story_id or article.id or 0
            queries = tuple(
                text
                for text, (floor, stories) in found.items()
                if summary.id > floor and story in stories
            )
            by_category = summary.category in categories
            if not (by_category or queries) or story in seen_stories:
                continue
            seen_stories.add(story)
            items.append(
                PendingItem(
                    summary_id=summary.id,
                    article_id=article.id or 0,
                    title=summary.title_ja,
                    url=article.url,
                    source=source.name,
                    category=summary.category,
                    overview=summary.overview,
                    importance=summary.importance,
                    published=ensure_utc(article.published_at or article.first_seen_at),
                    by_category=by_category,
                    queries=queries,
                )
            )
        if items:
            bundles[user] = items
    return bundles


# More than the search engine ever ranks at once: every story it finds.
_EVERY_MATCH = 10_000


class _SavedSearchMatcher:
    """Which stories among the pending summaries a saved search finds, asked of the search
    engine itself (`storage.search.query.search`, as `/ainews search` asks it), so that an
    alert finds exactly what searching would. The search is narrowed to articles dated from
    the oldest pending one on; its hits count by story, as search results do (one per story),
    so a second outlet's report of a story the query finds is found too. Identical searches
    over the same summaries (several users saving one query) are asked once."""

    def __init__(self, session: Session, rows: list[tuple[Summary, Article]]) -> None:
        self.session = session
        self.rows = rows
        self.cache: dict[tuple[str, str, str, datetime], set[int]] = {}

    def stories(self, saved: SavedSearch, *, after: int) -> set[int]:
        """The stories `saved` finds among the summaries newer than `after`."""
        candidates = [
            article
            for summary, article in self.rows
            if (summary.id or 0) > after
            and (not saved.category or summary.category == saved.category)
        ]
        if not candidates:
            return set()
        since = min(ensure_utc(a.published_at or a.first_seen_at) for a in candidates)
        key = (normalise(saved.query), saved.category, saved.source, since)
        if key not in self.cache:
            query = SearchQuery(
                text=parse_query_text(saved.query),
                category=saved.category or None,
                source=saved.source or None,
                since=since,
                limit=_EVERY_MATCH,
            )
            hits = [hit.article_id for hit in search(session=self.session, query=query).hits]
            self.cache[key] = _stories_of(self.session, hits)
        return self.cache[key]


def _stories_of(session: Session, article_ids: list[int]) -> set[int]:
    if not article_ids:
        return set()
    rows = session.exec(
        select(Article.id, Article.story_id).where(col(Article.id).in_(article_ids))
    ).all()
    return {story_id or article_id or 0 for article_id, story_id in rows}


def advance_cursor(*, session: Session, platform: str, user_id: str, last_summary_id: int) -> None:
    cursor = session.exec(
        select(DeliveryCursor).where(
            DeliveryCursor.platform == platform, DeliveryCursor.user_id == user_id
        )
    ).first()
    if cursor is None:
        cursor = DeliveryCursor(platform=platform, user_id=user_id)
    cursor.last_summary_id = max(cursor.last_summary_id, last_summary_id)
    cursor.updated_at = utcnow()
    session.add(cursor)


# ── saved searches ──────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SavedQuery:
    id: int
    query: str
    category: str | None = None
    source: str | None = None

    @classmethod
    def of(cls, row: SavedSearch) -> SavedQuery:
        return cls(row.id or 0, row.query, row.category or None, row.source or None)

    @property
    def text(self) -> str:
        """The search as it is typed (`GPU category:infra`): how it is listed, named in a DM
        bundle, and one way to unsubscribe from it."""
        parts = [self.query]
        if self.category:
            parts.append(f"category:{self.category}")
        if self.source:
            parts.append(
                f'source:"{self.source}"' if " " in self.source else f"source:{self.source}"
            )
        return " ".join(parts)

    def same_search(self, query: str, category: str | None, source: str | None) -> bool:
        """Equal as searches: the engine ignores case and width (NFKC) and extra spaces."""
        return (
            " ".join(normalise(self.query).split()) == " ".join(normalise(query).split())
            and self.category == (category or None)
            and normalise(self.source or "") == normalise(source or "")
        )


SaveResult = Literal["saved", "exists", "full"]


def save_search(
    *,
    session: Session,
    platform: str,
    user_id: str,
    query: str,
    category: str | None,
    source: str | None,
    limit: int,
) -> SaveResult:
    """Save a search for the user unless they have it already or have `limit` of them. It
    delivers only what is summarised from now on, whatever the user's cursor says."""
    existing = saved_searches_of(session=session, platform=platform, user_id=user_id)
    if any(s.same_search(query, category, source) for s in existing):
        return "exists"
    if len(existing) >= limit:
        return "full"
    newest = session.exec(select(func.coalesce(func.max(Summary.id), 0))).one()
    table = SavedSearch.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            platform=platform,
            user_id=user_id,
            query=query,
            category=category or "",
            source=source or "",
            after_summary_id=newest,
            created_at=utcnow(),
        )
    )
    _start_cursor(session, platform, user_id)
    _reopen_dms(session, platform, user_id)
    return "saved"


def saved_searches_of(*, session: Session, platform: str, user_id: str) -> list[SavedQuery]:
    """The user's saved searches in the order they were saved (their numbers in the list)."""
    rows = session.exec(
        select(SavedSearch)
        .where(SavedSearch.platform == platform, SavedSearch.user_id == user_id)
        .order_by(col(SavedSearch.id))
    )
    return [SavedQuery.of(row) for row in rows]


def remove_saved_searches(
    *, session: Session, platform: str, user_id: str, ids: Iterable[int]
) -> int:
    statement = delete(SavedSearch).where(
        col(SavedSearch.platform) == platform,
        col(SavedSearch.user_id) == user_id,
        col(SavedSearch.id).in_(list(ids)),
    )
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def unsubscribe_all(*, session: Session, platform: str, user_id: str) -> int:
    """Every category and saved search of the user, in one transaction; how many there were."""
    ids = [s.id for s in saved_searches_of(session=session, platform=platform, user_id=user_id)]
    removed = unsubscribe(session=session, platform=platform, user_id=user_id, categories=None)
    return removed + remove_saved_searches(
        session=session, platform=platform, user_id=user_id, ids=ids
    )
