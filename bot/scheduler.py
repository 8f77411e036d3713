"""`ainews run`: the scheduler decides what is due; the jobs do the work.

- poll (then summarise what it found) every AINEWS_POLL_INTERVAL minutes, first run at start;
  coalesced, one instance at a time, so a slow pass is never stacked behind itself;
- the daily briefing at AINEWS_BRIEFING_TIME in AINEWS_TIMEZONE, with a three-hour misfire
  grace: a bot that was down at 08:30 and is back by 11:30 still posts (the database claim
  keeps it to once per day);
- SIGINT/SIGTERM pause the scheduler, let running jobs finish for AINEWS_SHUTDOWN_GRACE
  seconds, then cancel them. Every database write is one transaction in a worker thread, so
  a cancelled job leaves no half-written row.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import App, briefing_for, poll_once, summarize_pending
from bot.platforms.console import ConsolePublisher
from bot.platforms.slack import SlackBot

log = logging.getLogger(__name__)

BRIEFING_GRACE = timedelta(hours=3)


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
        if not self.tasks:
            return
        log.info("waiting for running jobs", extra={"jobs": len(self.tasks)})
        _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def run_bot(
    app: App, *, stop: asyncio.Event | None = None, ready: Callable[[Any], None] | None = None
) -> None:
    """Run until `stop` is set or SIGINT/SIGTERM. `ready` gets the started Slack adapter (or
    None), for tests and for callers that need its HTTP port."""
    settings = app.settings
    stop = stop or asyncio.Event()
    runner = JobRunner()
    slack = None
    publisher: ConsolePublisher | SlackBot
    if settings.slack_enabled:
        slack = SlackBot(app, spawn=runner.spawn)
        publisher = slack
    else:
        publisher = ConsolePublisher(
            db=app.db, directory=settings.briefings_dir, lease=settings.briefing_lease
        )

    pipeline = asyncio.Lock()  # the briefing's own poll waits for a running one, not races it

    async def poll_and_summarize() -> None:
        async with pipeline:
            await poll_once(app)
            await summarize_pending(app)

    async def daily_briefing() -> None:
        await poll_and_summarize()
        day = datetime.now(settings.tz).date()
        await publisher.publish(await briefing_for(app, day))
        if slack is not None and settings.dm_schedule == "daily":
            await slack.send_subscriptions()

    async def direct_messages() -> None:
        if slack is not None:
            await slack.send_subscriptions()

    scheduler = AsyncIOScheduler(timezone=settings.tz)
    scheduler.add_job(
        runner.wrap("poll", poll_and_summarize),
        IntervalTrigger(minutes=settings.poll_interval, timezone=settings.tz),
        id="poll",
        next_run_time=datetime.now(settings.tz),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=60,
    )
    scheduler.add_job(
        runner.wrap("briefing", daily_briefing),
        CronTrigger(
            hour=settings.briefing_time.hour,
            minute=settings.briefing_time.minute,
            timezone=settings.tz,
        ),
        id="briefing",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=int(BRIEFING_GRACE.total_seconds()),
    )
    if slack is not None and settings.dm_schedule == "immediate":
        scheduler.add_job(
            runner.wrap("direct-messages", direct_messages),
            IntervalTrigger(minutes=settings.dm_interval, timezone=settings.tz),
            id="direct-messages",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=60,
        )
    if _missed_todays_briefing(app):
        scheduler.add_job(runner.wrap("briefing-catch-up", daily_briefing), id="catch-up")

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if slack is not None:
        await slack.start()
    if ready is not None:
        ready(slack)
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
            "timezone": settings.timezone,
            "llm": app.llm is not None,
            "slack": slack is not None,
        },
    )
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        scheduler.pause()  # nothing new starts; running jobs get the grace period
        await runner.drain(settings.shutdown_grace)
        scheduler.shutdown(wait=False)
        if slack is not None:
            await slack.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _missed_todays_briefing(app: App) -> bool:
    """Started within the grace period after today's briefing time (the claim decides whether
    it was in fact already posted)."""
    now = datetime.now(app.settings.tz)
    today = now.date()
    scheduled = datetime.combine(today, app.settings.briefing_time, tzinfo=app.settings.tz)
    return scheduled <= now < scheduled + BRIEFING_GRACE
