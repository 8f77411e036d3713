"""`ainews run`: the scheduler decides what is due; the jobs and the publishing core do the work.

- poll (then summarise what it found) every AINEWS_POLL_INTERVAL minutes, first run at start;
  coalesced, one instance at a time, so a slow pass is never stacked behind itself; after each
  poll, sources disabled or recovered are announced once in every destination's channel;
- the daily briefing at AINEWS_BRIEFING_TIME in AINEWS_TIMEZONE, built once and published to
  every enabled destination (console file, Slack, Discord), each retried with back-off until it
  succeeds or the day ends; a three-hour misfire grace lets a bot that was down at 08:30 and is
  back by 11:30 still post (the database claim keeps it to once per destination and day);
- the weekly report of the last complete ISO week at AINEWS_WEEKLY_DAY AINEWS_WEEKLY_TIME
  (default Monday 09:00), published the same way, once per destination and week;
- DM bundles for every platform, every AINEWS_DM_INTERVAL minutes or after the briefing;
- retention at 04:00 local: bodies older than AINEWS_RETENTION_DAYS emptied, articles older
  than AINEWS_SUMMARY_RETENTION_DAYS deleted with their summaries;
- with several processes on one database, all poll and summarise (each source and article
  claimed by one), but posting — briefing, weekly report, DMs, announcements — runs on the one
  holding the poster role (`bot/publishing/poster.py`), renewed four times per
  AINEWS_POSTER_LEASE; a process that takes the role over catches up on the day's briefing;
- SIGINT/SIGTERM: the platforms stop taking commands first, then every tracked task — jobs and
  the answers of commands already acked — gets AINEWS_SHUTDOWN_GRACE seconds, then is
  cancelled. Every database write is one transaction, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import App, poll_once, summarize_pending
from bot.platforms.console import ConsolePublisher
from bot.publishing.chat import ChatCore
from bot.publishing.destinations import Destinations
from bot.publishing.notices import SourceAnnouncer
from bot.publishing.platform import Platform
from bot.publishing.ports import Publisher
from bot.publishing.poster import PosterRole
from jobs.daily import build_and_store, latest_complete_day
from jobs.retention import apply_retention
from jobs.weekly import build_and_store_weekly, last_complete_week
from storage.replies import prune_replies

log = logging.getLogger(__name__)

BRIEFING_GRACE = timedelta(hours=3)
REPLY_BUTTONS_LAST = timedelta(days=7)
# Retention runs daily at this local time, when nothing else is scheduled.
RETENTION_AT = dtime(4, 0)


class JobRunner:
    """Runs jobs as tracked tasks, so shutdown can wait for (or cancel) every one of them."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def wrap(
        self, name: str, job: Callable[[], Awaitable[None]]
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        async def tracked() -> None:
            task = asyncio.current_task()
            assert task is not None
            self.tasks.add(task)
            try:
                await job()
            except asyncio.CancelledError:
                # Top of the job's own task, cancelled by `drain` at shutdown: nothing above
                # it needs the exception, and its database writes were each all-or-nothing.
                log.warning("job abandoned at shutdown", extra={"job": name})
            except Exception:
                log.exception("job failed", extra={"job": name})
            finally:
                self.tasks.discard(task)

        return tracked

    def spawn(self, coro: Coroutine[Any, Any, None], name: str = "task") -> None:
        """Run work outside a listener (a command's answer, a share) as a tracked task,
        registered before it starts so that `drain` cannot miss it."""

        async def job() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(self.wrap(name, job)())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self, grace: float) -> None:
        """Wait until no task is left — including tasks that running ones start meanwhile
        (an acked command's answer spawning a repost) — for at most `grace` seconds, then
        cancel what remains."""
        deadline = time.monotonic() + grace
        if self.tasks:
            log.info("waiting for running jobs", extra={"jobs": len(self.tasks)})
        while self.tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait(set(self.tasks), timeout=left)
        pending = set(self.tasks)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


def build_platforms(app: App, core: ChatCore, runner: JobRunner) -> list[Platform]:
    """Every chat platform whose token is configured; they run side by side in one process."""
    platforms = []
    if app.settings.slack_enabled:
        from bot.platforms.slack import build_slack

        platforms.append(build_slack(app, core=core, spawn=runner.spawn))
    if app.settings.discord_enabled:
        from bot.platforms.discord import build_discord

        platforms.append(build_discord(app, core=core, spawn=runner.spawn))
    return platforms


def console_for(app: App, platforms: list[Platform]) -> ConsolePublisher:
    return ConsolePublisher(
        db=app.db,
        directory=app.settings.briefings_dir,
        reports=app.settings.reports_dir,
        lease=app.settings.briefing_lease,
        echo=not platforms,
        metrics=app.metrics,
    )


def destinations_for(app: App, platforms: list[Platform]) -> Destinations:
    """The briefing file always (an archive, printed when no chat platform is enabled), plus
    each platform's channel."""
    console = console_for(app, platforms)
    publishers: list[Publisher] = [console, *(p.thread for p in platforms)]
    return Destinations(
        publishers,
        db=app.db,
        tz=app.settings.tz,
        retry_first=app.settings.publish_retry,
        clock=app.clock,
    )


def announcer_for(app: App, platforms: list[Platform]) -> SourceAnnouncer:
    """Source notices go where the briefing goes: the console archive and each channel."""
    return SourceAnnouncer(
        [console_for(app, platforms), *(p.channel for p in platforms)],
        db=app.db,
        tz=app.settings.tz,
        lease=app.settings.briefing_lease,
        clock=app.clock,
    )


async def run_bot(
    app: App,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[list[Platform]], None] | None = None,
) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM. `ready` gets the started platforms, for
    tests and for callers that need, say, the Slack HTTP port."""
    settings = app.settings
    stop = stop or asyncio.Event()
    runner = JobRunner()
    core = ChatCore(app, spawn=runner.spawn)
    platforms = build_platforms(app, core, runner)
    destinations = destinations_for(app, platforms)
    announcer = announcer_for(app, platforms)
    poster = PosterRole(
        app.db,
        owner=app.instance,
        clock=app.clock,
        ttl=timedelta(seconds=settings.poster_lease),
        on_takeover=app.metrics.takeover_recorder("poster"),
    )
    pipeline = asyncio.Lock()  # the briefing's own poll waits for a running one, not races it

    def poster_only(job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """Scheduled posting runs on the process holding the poster role; the others skip."""

        async def run_if_poster() -> None:
            if await poster.renew():
                await job()
            else:
                log.info("not the poster: skipped", extra={"job": job.__name__})

        return run_if_poster

    async def poll_and_summarize() -> None:
        async with pipeline:
            await poll_once(app)
            if poster.held:
                await announcer.announce()
            await summarize_pending(app)

    async def daily_briefing() -> None:
        await poll_and_summarize()
        day = latest_complete_day(app.clock(), app.briefing_config)
        briefing = await build_and_store(
            db=app.db, day=day, config=app.briefing_config, taxonomy=app.taxonomy, llm=app.llm
        )
        await destinations.publish_all(briefing)
        if settings.dm_schedule == "daily":
            await direct_messages()
        await app.db.run(prune_replies, before=app.clock() - REPLY_BUTTONS_LAST)

    async def weekly_report() -> None:
        await poll_and_summarize()
        week = last_complete_week(app.clock(), settings.tz)
        report = await build_and_store_weekly(
            db=app.db, week=week, config=app.weekly_config, taxonomy=app.taxonomy, llm=app.llm
        )
        await destinations.publish_weekly_all(report)

    async def direct_messages() -> None:
        for platform in platforms:
            sent = await platform.fanout.send()
            app.metrics.record_post(platform.name, "dm", count=sent)

    async def retention() -> None:
        await apply_retention(db=app.db, now=app.clock(), config=app.retention_config)

    async def keep_poster_role() -> None:
        """Renew the role; a process that has just taken it over catches up on what its
        predecessor may have left half done (today's thread, this week's report)."""
        was_poster = poster.held
        if await poster.renew() and not was_poster:
            if _missed_todays_briefing(app):
                runner.spawn(daily_briefing(), name="briefing-catch-up")
            if _missed_this_weeks_report(app):
                runner.spawn(weekly_report(), name="weekly-catch-up")

    scheduler = AsyncIOScheduler(timezone=settings.tz)
    late = int(BRIEFING_GRACE.total_seconds())

    def schedule(
        name: str, job: Callable[[], Awaitable[None]], trigger: Any, *, grace: int, **extra: Any
    ) -> None:
        """One instance at a time, runs that fell behind coalesced into one; `grace`: how late
        a run may start and still run."""
        scheduler.add_job(
            runner.wrap(name, job), trigger, id=name, coalesce=True, max_instances=1,
            misfire_grace_time=grace, **extra,
        )  # fmt: skip

    def daily_at(at: dtime, **day: Any) -> CronTrigger:
        return CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.tz, **day)

    every_poll = IntervalTrigger(minutes=settings.poll_interval, timezone=settings.tz)
    schedule(
        "poll", poll_and_summarize, every_poll, grace=60, next_run_time=datetime.now(settings.tz)
    )
    schedule("briefing", poster_only(daily_briefing), daily_at(settings.briefing_time), grace=late)
    weekly_at = daily_at(settings.weekly_time, day_of_week=settings.weekly_day)
    schedule("weekly", poster_only(weekly_report), weekly_at, grace=late)
    if platforms and settings.dm_schedule == "immediate":
        every_dm = IntervalTrigger(minutes=settings.dm_interval, timezone=settings.tz)
        schedule("direct-messages", poster_only(direct_messages), every_dm, grace=60)
    schedule("retention", poster_only(retention), daily_at(RETENTION_AT), grace=late)
    every_renewal = IntervalTrigger(
        seconds=poster.renew_every.total_seconds(), timezone=settings.tz
    )
    schedule("poster-role", keep_poster_role, every_renewal, grace=1)
    # A catch-up runs "now" (no trigger); APScheduler's default one-second misfire grace
    # would drop it whenever the loop is busy at start-up (platforms connecting).
    if _missed_todays_briefing(app):
        schedule("briefing-catch-up", poster_only(daily_briefing), None, grace=late)
    if _missed_this_weeks_report(app):
        schedule("weekly-catch-up", poster_only(weekly_report), None, grace=late)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[Platform] = []
    try:
        for platform in platforms:
            await platform.intake.start_intake()
            started.append(platform)
        if ready is not None:
            ready(platforms)
        await poster.renew()  # before the catch-ups, which run at once
        scheduler.start()
        # Everything built so far lives as long as the process: moved out of the collector's
        # view, a full collection no longer stops the event loop for a hundred milliseconds.
        gc.collect()
        gc.freeze()
        log.info(
            "ainews running",
            extra={
                "poll_every_min": settings.poll_interval,
                "briefing_at": settings.briefing_time.strftime("%H:%M"),
                "weekly_at": f"{settings.weekly_day} {settings.weekly_time:%H:%M}",
                "timezone": settings.timezone,
                "llm": app.llm is not None,
                "platforms": ",".join(p.name for p in platforms) or "console",
            },
        )
        await stop.wait()
    finally:
        log.info("shutting down")
        for platform in started:  # first: nothing new is acked from here on
            await platform.intake.stop_intake()
        if scheduler.running:
            scheduler.pause()  # no new job starts; running ones get the grace period
        await runner.drain(settings.shutdown_grace)
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await poster.release()
        for platform in reversed(started):
            await platform.intake.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _missed_todays_briefing(app: App) -> bool:
    """Started within the grace period after today's briefing time (the claim decides whether
    it was in fact already posted)."""
    now = app.clock().astimezone(app.settings.tz)
    scheduled = datetime.combine(now.date(), app.settings.briefing_time, tzinfo=app.settings.tz)
    return scheduled <= now < scheduled + BRIEFING_GRACE


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _missed_this_weeks_report(app: App) -> bool:
    """Started within the grace period after this week's report time (the claim decides
    whether it was in fact already posted)."""
    settings = app.settings
    now = app.clock().astimezone(settings.tz)
    day = (
        now.date()
        - timedelta(days=now.weekday())
        + timedelta(days=WEEKDAYS.index(settings.weekly_day))
    )
    scheduled = datetime.combine(day, settings.weekly_time, tzinfo=settings.tz)
    return scheduled <= now < scheduled + BRIEFING_GRACE
