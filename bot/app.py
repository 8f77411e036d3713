"""Composition root: builds every long-lived object under one `async with` and closes them in
reverse order. Nothing else creates clients; no client exists at import time."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.sources_file import load_sources_toml
from jobs.llm import LLM
from storage.clock import utcnow
from storage.db import Database
from storage.migrate import upgrade_to_head
from storage.sources import add_missing_sources, has_sources
from storage.taxonomy import Taxonomy

if TYPE_CHECKING:
    # Imported where they are used: fetching (aiohttp, feedparser, the parser pool) by
    # `open_app(fetching=True)`, a third of the start-up of a command that only reads the
    # database; the jobs by the functions that run them, so `ainews poll` does not pay for the
    # briefing, the summariser, retention and the weekly report.
    from bot.metrics import Metrics
    from handlers.context import HandlerContext
    from jobs.briefing import BriefingConfig
    from jobs.briefing_model import Briefing
    from jobs.fetch import Fetcher
    from jobs.parse_pool import ParsePool
    from jobs.poll import PollConfig, PollReport, Progress
    from jobs.retention import RetentionConfig
    from jobs.summarize import SummarizeConfig, SummarizeReport
    from jobs.weekly import WeeklyConfig

log = logging.getLogger(__name__)


def instance_name() -> str:
    """Host, pid and a random suffix: unique among processes, also across a pid reused after
    a restart, and readable in the claims an operator looks at."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(slots=True)
class App:
    settings: Settings
    db: Database
    taxonomy: Taxonomy
    fetcher: Fetcher | None = None
    parser: ParsePool | None = None
    llm: LLM | None = None
    clock: Callable[[], datetime] = utcnow  # tests pass their own: nothing reads the date itself
    # This process among those sharing the database: the owner of its claims and leases.
    instance: str = field(default_factory=instance_name)
    _metrics: Metrics | None = None

    @property
    def poll_config(self) -> PollConfig:
        from jobs.poll import PollConfig

        return PollConfig(
            interval=timedelta(minutes=self.settings.poll_interval),
            fulltext_per_poll=self.settings.fulltext_per_poll,
            disable_after_failures=self.settings.disable_after_failures,
            disable_after=self.settings.disable_after,
        )

    @property
    def summarize_config(self) -> SummarizeConfig:
        from jobs.summarize import SummarizeConfig

        return SummarizeConfig(
            max_article_tokens=self.settings.max_article_tokens,
            max_output_tokens=self.settings.max_output_tokens,
            tz=self.settings.tz,
            resummarize_per_run=self.settings.resummarize_per_run,
        )

    @property
    def briefing_config(self) -> BriefingConfig:
        from jobs.briefing import BriefingConfig

        return BriefingConfig(
            tz=self.settings.tz,
            briefing_time=self.settings.briefing_time,
            size=self.settings.briefing_size,
            max_output_tokens=self.settings.max_output_tokens,
        )

    @property
    def retention_config(self) -> RetentionConfig:
        from jobs.retention import RetentionConfig

        return RetentionConfig(
            body_days=self.settings.retention_days,
            summary_days=self.settings.summary_retention_days,
        )

    @property
    def metrics(self) -> Metrics:
        """This app's own metrics registry, made on first use: a one-shot command that counts
        nothing does not import prometheus-client."""
        if self._metrics is None:
            from bot.metrics import Metrics

            self._metrics = Metrics()
        return self._metrics

    @property
    def weekly_config(self) -> WeeklyConfig:
        from jobs.weekly import WeeklyConfig

        return WeeklyConfig(
            tz=self.settings.tz,
            size=self.settings.weekly_size,
            # The overview is four sections in one answer: twice a summary's output.
            max_output_tokens=2 * self.settings.max_output_tokens,
        )

    def require_fetching(self) -> tuple[Fetcher, ParsePool]:
        if self.fetcher is None or self.parser is None:
            raise RuntimeError("app opened without fetching")
        return self.fetcher, self.parser


async def open_database(settings: Settings) -> Database:
    """Engine plus schema: migrations run on every start-up (a no-op when current)."""
    db = Database(settings.database_url)
    await asyncio.to_thread(upgrade_to_head, db.engine)
    return db


@asynccontextmanager
async def open_app(
    settings: Settings,
    *,
    fetching: bool = False,
    llm: bool = False,
    seed: bool = True,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[App]:
    """Open what a command needs. `fetching` adds the HTTP session and the parser pool; `llm`
    adds the OpenAI client when a key is configured; `clock` is what "now" means to handlers,
    the briefing schedule and the publishing core (tests pass a fixed one)."""
    async with AsyncExitStack() as stack:
        taxonomy = Taxonomy.load(settings.categories_file)
        db = await open_database(settings)
        stack.callback(db.dispose)
        app = App(settings=settings, db=db, taxonomy=taxonomy, clock=clock)
        if seed and settings.sources_file.exists() and not await db.run(has_sources):
            specs = load_sources_toml(settings.sources_file, taxonomy)
            added = await db.run(add_missing_sources, specs=specs)
            log.info(
                "sources seeded", extra={"file": str(settings.sources_file), "added": len(added)}
            )
        if fetching:
            from jobs.fetch import open_fetcher
            from jobs.parse_pool import ParsePool
            from jobs.public_only import PublicOnly

            # Chat-added sources go through the public-only policy unless the operator allows
            # private addresses; nothing else configures it.
            public_only = None if settings.allow_private_sources else PublicOnly()
            app.fetcher = await stack.enter_async_context(
                open_fetcher(
                    user_agent=settings.user_agent,
                    request_timeout=settings.fetch_timeout,
                    max_bytes=settings.max_feed_bytes,
                    limit=settings.poll_concurrency,
                    limit_per_host=settings.poll_per_host,
                    public_only=public_only,
                )
            )
            app.parser = await stack.enter_async_context(ParsePool(settings.parse_workers))
        if llm and settings.openai_api_key is not None:
            app.llm = await stack.enter_async_context(_openai(settings, db, clock, app.metrics))
        yield app


@asynccontextmanager
async def _openai(
    settings: Settings, db: Database, clock: Callable[[], datetime], metrics: Metrics
) -> AsyncIterator[LLM]:
    from openai import AsyncOpenAI

    from bot.llm import OpenAIChat, TokenBudget
    from bot.tokens import load_counter

    assert settings.openai_api_key is not None
    client = AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )
    counter = await asyncio.to_thread(
        load_counter, settings.model, settings.tiktoken_cache_dir or settings.var_dir / "tiktoken"
    )
    budget = TokenBudget(
        db=db, daily_limit=settings.daily_token_budget, tz=settings.tz, clock=clock
    )
    try:
        yield OpenAIChat(
            client=client,
            model=settings.model,
            tokens=counter,
            budget=budget,
            on_usage=metrics.record_llm_usage,
        )
    finally:
        await client.close()


async def poll_once(
    app: App, *, force: bool = False, progress: Progress | None = None
) -> PollReport:
    from jobs.poll import poll_sources

    fetcher, parser = app.require_fetching()
    started = time.monotonic()
    report = await poll_sources(
        db=app.db,
        fetcher=fetcher,
        parser=parser,
        config=app.poll_config,
        force=force,
        on_source_done=progress,
        owner=app.instance,
        clock=app.clock,
    )
    app.metrics.record_poll(report, time.monotonic() - started)
    return report


async def summarize_pending(app: App, *, progress: Progress | None = None) -> SummarizeReport:
    from jobs.summarize import Summarizer

    summarizer = Summarizer(
        db=app.db,
        taxonomy=app.taxonomy,
        config=app.summarize_config,
        llm=app.llm,
        clock=app.clock,
        owner=app.instance,
    )
    report = await summarizer.run(progress)
    app.metrics.record_summaries(report)
    return report


async def briefing_for(app: App, day: date) -> Briefing:
    from jobs.briefing import build_briefing

    return await build_briefing(
        db=app.db, day=day, config=app.briefing_config, taxonomy=app.taxonomy, llm=app.llm
    )


def handler_context(
    app: App,
    *,
    platform: str = "cli",
    user_id: str | None = None,
    channel_id: str | None = None,
    is_admin: bool = False,
) -> HandlerContext:
    """The context a handler gets for one command."""
    from handlers.context import HandlerContext

    settings = app.settings
    return HandlerContext(
        db=app.db,
        taxonomy=app.taxonomy,
        tz=settings.tz,
        now=app.clock(),
        llm=app.llm,
        max_prompt_tokens=settings.max_article_tokens * 2,
        max_output_tokens=settings.max_output_tokens,
        platform=platform,
        user_id=user_id,
        channel_id=channel_id,
        is_admin=is_admin,
        allow_private_sources=settings.allow_private_sources,
        ask_limit=settings.ask_limit,
        ask_window=timedelta(minutes=settings.ask_window),
        model_prices=settings.model_prices,
        daily_token_budget=settings.daily_token_budget,
    )


async def reindex(app: App, *, progress: Progress | None = None, batch: int = 500) -> int:
    """Rebuild the search index from the stored articles and summaries."""
    from storage.search.index import all_article_ids, clear_index, index_articles

    ids = await app.db.run(all_article_ids)
    await app.db.run(clear_index)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        await app.db.run(index_articles, article_ids=chunk)
        if progress is not None:
            for _ in chunk:
                progress()
    return len(ids)
