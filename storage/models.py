"""SQLModel tables. Every datetime column is aware UTC (see storage.clock)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.clock import utcnow


class Source(SQLModel, table=True):
    """A feed and its polling state (validators, schedule, and the last error shown to admins)."""

    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    url: str = Field(max_length=2000, unique=True)
    category: str = Field(max_length=40)
    language: str = Field(default="en", max_length=8)
    enabled: bool = Field(default=True)
    trusted: bool = Field(default=True, description="added by the operator, may be loopback")
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    next_poll_at: datetime | None = Field(default=None, index=True)
    last_polled_at: datetime | None = None
    last_status: int | None = None
    error_count: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow)
    # The process polling it now, until when (see storage.claims): several processes sharing
    # one database poll each source once per interval, and a dead one's claim expires.
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = None
    # Feed health (`sources list`, disabling): counted since the source was added or last
    # re-enabled; `error_count` above is the consecutive failures, `failing_since` the first
    # of them.
    poll_count: int = Field(default=0)
    not_modified_count: int = Field(default=0)
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = Field(default=None, max_length=20)


class Article(SQLModel, table=True):
    """One entry of one feed.

    Identity within a source is `entry_key` (see `storage.articles.entry_key`): the entry's
    guid when it has one, else its link with the fragment kept, since diaries give every post
    of a day the same page URL with its own `#fragment`. `url` is what readers are shown and
    need not be unique: the link as the feed gave it (normalised, fragment kept), or the
    feed's site link for an entry without one. `canonical_url` (no fragment, no tracking
    parameters) finds the same article in another source; it is unique so that
    `INSERT … ON CONFLICT DO NOTHING` keeps two processes from storing one article twice, and
    NULL (which never conflicts) when it does not name this article alone: no link of its own,
    or shared by entries of one feed. `story_id` groups near-duplicates from different sources
    (it is the id of the story's first article).

    An undated entry keeps `published_at` None and is dated by `first_seen_at`, the poll that
    first saw it (`COALESCE(published_at, first_seen_at)` wherever articles are ordered or
    windowed). `page_status` is None when the feed's text is the article, else `waiting` for
    its page, `fetched` or `failed`; a waiting article is not summarised yet."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("source_id", "guid", name="uq_articles_source_guid"),
        UniqueConstraint("source_id", "entry_key", name="uq_articles_source_entry"),
        UniqueConstraint("canonical_url", name="uq_articles_canonical_url"),
        Index("ix_articles_published_at", "published_at"),
        Index("ix_articles_first_seen_at", "first_seen_at"),
        Index("ix_articles_content_hash", "content_hash"),
        Index("ix_articles_page_status", "page_status", "source_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sources.id", index=True, ondelete="CASCADE")
    entry_key: str = Field(max_length=2010)
    url: str = Field(max_length=2000)
    canonical_url: str | None = Field(default=None, max_length=2000)
    guid: str | None = Field(default=None, max_length=2000)
    title: str = Field(sa_column=Column(Text, nullable=False))
    language: str = Field(default="en", max_length=8)
    published_at: datetime | None = None
    first_seen_at: datetime = Field(default_factory=utcnow)
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    content_hash: str = Field(max_length=64)
    story_id: int | None = Field(default=None, index=True)
    page_status: str | None = Field(default=None, max_length=16)
    # The process summarising it now, until when (see storage.claims).
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = None


class Summary(SQLModel, table=True):
    """The briefing fields of one article, by the LLM or by the extractive fallback.

    `fallback` says why an extractive summary is one (`jobs.spend`: no key, the budget, a
    rejected reply, an API error): only budget fallbacks are re-summarised later."""

    __tablename__ = "summaries"
    __table_args__ = (
        Index("ix_summaries_cache", "content_hash", "model", "prompt_version"),
        Index("ix_summaries_fallback", "fallback"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", unique=True, ondelete="CASCADE")
    title_ja: str = Field(sa_column=Column(Text, nullable=False))
    overview: str = Field(sa_column=Column(Text, nullable=False))
    points: list[str] = Field(sa_column=Column(JSON, nullable=False))
    why_important: str = Field(sa_column=Column(Text, nullable=False))
    keywords: list[str] = Field(sa_column=Column(JSON, nullable=False))
    category: str = Field(max_length=40, index=True)
    importance: int = Field(ge=1, le=3)
    method: str = Field(max_length=16, description="llm or extractive")
    model: str = Field(max_length=100)
    prompt_version: str = Field(max_length=20)
    content_hash: str = Field(max_length=64)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    fallback: str | None = Field(default=None, max_length=16)


class Briefing(SQLModel, table=True):
    """A document claimed for one destination: the daily briefing of `day`, or the weekly
    report of the ISO week whose Monday is `day` (`kind`). The unique (kind, day, destination)
    row is the claim that keeps several processes or a restart from posting it twice."""

    __tablename__ = "briefings"
    __table_args__ = (
        UniqueConstraint("kind", "day", "destination", name="uq_briefings_kind_day_destination"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="daily", max_length=16, description="daily or weekly")
    day: date
    destination: str = Field(max_length=200)
    status: str = Field(default="claimed", max_length=16, description="claimed or posted")
    parent_ref: str | None = Field(default=None, max_length=200)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    claimed_at: datetime = Field(default_factory=utcnow)
    posted_at: datetime | None = None
    attempts: int = Field(default=0, description="publish attempts that failed")
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class BriefingPost(SQLModel, table=True):
    """One posted message of a briefing thread; what lets a crashed run resume with only the
    missing replies."""

    __tablename__ = "briefing_posts"
    __table_args__ = (UniqueConstraint("briefing_id", "item_no", name="uq_briefing_posts_item"),)

    id: int | None = Field(default=None, primary_key=True)
    briefing_id: int = Field(foreign_key="briefings.id", index=True, ondelete="CASCADE")
    item_no: int
    message_ref: str = Field(max_length=200)
    posted_at: datetime = Field(default_factory=utcnow)


class TokenUsage(SQLModel, table=True):
    """Tokens spent per LLM call, summed per local day to enforce the daily budget."""

    __tablename__ = "token_usage"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)
    model: str = Field(max_length=100)
    purpose: str = Field(max_length=40)
    prompt_tokens: int
    completion_tokens: int
    created_at: datetime = Field(default_factory=utcnow)


class Subscription(SQLModel, table=True):
    """A user's wish to get a category's new items by direct message."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("platform", "user_id", "category", name="uq_subscriptions_user_category"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=100, index=True)
    category: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


class DeliveryCursor(SQLModel, table=True):
    """The newest summary id already sent to a user: the next bundle starts after it, so a
    restart neither repeats nor skips items."""

    __tablename__ = "delivery_cursors"
    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_delivery_cursor_user"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=100)
    last_summary_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow)
    dm_closed_at: datetime | None = Field(
        default=None, description="the platform refused a DM: no bundles until re-subscribed"
    )
    dm_closed_notice: bool = Field(default=False, description="tell the user in their next reply")


class DailyBriefing(SQLModel, table=True):
    """A day's briefing (or, `kind` weekly, a week's report keyed by its Monday) as built once:
    every destination publishes it and `/ainews digest` (`/ainews weekly`) shows it, so a user's
    request never rebuilds it or spends model tokens on it again."""

    __tablename__ = "daily_briefings"
    __table_args__ = (UniqueConstraint("kind", "day", name="uq_daily_briefings_kind_day"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="daily", max_length=16, description="daily or weekly")
    day: date
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    built_at: datetime = Field(default_factory=utcnow)


class StoredReply(SQLModel, table=True):
    """A reply as the user saw it, so that a button can share or page it by id."""

    __tablename__ = "stored_replies"

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=100)
    command: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)


class CommandUse(SQLModel, table=True):
    """One use of a rate-limited command; counted over a sliding window per user, in the
    database so that several bot processes share the limit."""

    __tablename__ = "command_uses"
    __table_args__ = (Index("ix_command_uses_user", "platform", "user_id", "command", "used_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=100)
    command: str = Field(max_length=20)
    used_at: datetime = Field(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """A named role that one process holds at a time, until `until` unless renewed: the
    poster (scheduled briefings, reports, DMs, announcements, retention) among several
    processes sharing one database."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=100)
    owner: str = Field(max_length=100)
    until: datetime


class TokenBudgetDay(SQLModel, table=True):
    """Tokens committed on one local day by every process: spent, plus reserved by calls in
    flight. A call reserves its worst case with one conditional UPDATE, so processes racing
    for the last tokens cannot together pass the daily budget."""

    __tablename__ = "token_budget_days"

    day: date = Field(primary_key=True)
    committed: int = Field(default=0)


class SummaryOutcome(SQLModel, table=True):
    """How one article's summary was made, kept for `ainews stats` after the summary itself is
    replaced by a re-summary or deleted with its source: by the model, from the cache, or
    extractive and why (`cause`); `reasks` counts the second attempts it cost."""

    __tablename__ = "summary_outcomes"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True, description="local day, as TokenUsage.day")
    article_id: int
    method: str = Field(max_length=16, description="llm, cached or extractive")
    cause: str | None = Field(default=None, max_length=16)
    reasks: int = 0
    resummary: bool = Field(default=False, description="a budget fallback summarised again")
    created_at: datetime = Field(default_factory=utcnow)


class SavedSearch(SQLModel, table=True):
    """A user's saved `/ainews search`: new articles it finds go into their DM bundle, next to
    their categories. `category` and `source` are the search filters, '' for none (not NULL,
    so that the unique constraint also catches the same query saved twice without a filter)."""

    __tablename__ = "saved_searches"
    __table_args__ = (
        UniqueConstraint(
            "platform", "user_id", "query", "category", "source", name="uq_saved_searches_query"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=100, index=True)
    query: str = Field(max_length=200)
    category: str = Field(default="", max_length=40)
    source: str = Field(default="", max_length=200)
    after_summary_id: int = Field(
        default=0, description="the newest summary when saved: only later ones are delivered"
    )
    created_at: datetime = Field(default_factory=utcnow)


class SourceNotice(SQLModel, table=True):
    """A source disabled after failing, or back after a run of failures: said once in the
    briefing channel of every destination. Unique per failure streak, so two processes that
    record the same transition store one notice."""

    __tablename__ = "source_notices"
    __table_args__ = (
        UniqueConstraint("source_id", "kind", "streak_started_at", name="uq_source_notices_streak"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sources.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=20, description="disabled or recovered")
    reason: str | None = Field(default=None, max_length=20, description="failures or duration")
    failures: int
    streak_started_at: datetime
    created_at: datetime = Field(index=True)


class SourceNoticePost(SQLModel, table=True):
    """The claim and record of one notice posted to one destination (`slack:C123`): claimed
    before posting, so a restart or a second process never posts it twice."""

    __tablename__ = "source_notice_posts"

    notice_id: int = Field(foreign_key="source_notices.id", primary_key=True, ondelete="CASCADE")
    destination: str = Field(max_length=200, primary_key=True)
    claimed_at: datetime
    posted_at: datetime | None = None
    message_ref: str | None = Field(default=None, max_length=500)
