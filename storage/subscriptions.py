"""Per-user category subscriptions and what each user has already been sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from storage.clock import utcnow
from storage.db import insert_or_ignore
from storage.models import Article, DeliveryCursor, Source, Subscription, Summary


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


def pending_deliveries(*, session: Session, platform: str) -> dict[str, list[PendingItem]]:
    """For each subscriber whose DMs are open, the summaries in their categories newer than
    their cursor."""
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
    if not wanted:
        return {}
    oldest = min((cursors.get(user, 0) for user in wanted), default=0)
    rows = session.exec(
        select(Summary, Article, Source)
        .join(Article, col(Article.id) == Summary.article_id)
        .join(Source, col(Source.id) == Article.source_id)
        .where(col(Summary.id) > oldest)
        .order_by(col(Summary.id))
    ).all()
    bundles: dict[str, list[PendingItem]] = {}
    for user, categories in wanted.items():
        after = cursors.get(user, 0)
        seen_stories: set[int] = set()
        items = []
        for summary, article, source in rows:
            story = article.story_id or article.id or 0
            if summary.id and summary.id > after and summary.category in categories:
                if story in seen_stories:
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
                    )
                )
        if items:
            bundles[user] = items
    return bundles


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
