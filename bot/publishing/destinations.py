"""Every enabled destination gets the day's briefing in the same run: the console file, the
Slack channel, the Discord channel. Each is published on its own — one platform being down
never holds up the others — and a failed publish is retried with back-off until it succeeds or
the day is over. The next day's briefing says what happened. A destination that another process
is posting is checked again at the first retry interval until it is posted: should that process
die mid-thread, its claim's lease runs out and this one finishes the thread. The week's report
goes the same way, retried until the end of the week it is published in (its log lines say
`week=`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta, tzinfo
from functools import partial

from bot.publishing.ports import Publisher
from jobs.briefing_model import Briefing
from jobs.weekly_model import WeeklyReport
from storage.briefings import DAILY, WEEKLY, briefing_outcome
from storage.clock import utcnow
from storage.db import Database

log = logging.getLogger(__name__)


class Destinations:
    def __init__(
        self,
        publishers: Sequence[Publisher],
        *,
        db: Database,
        tz: tzinfo,
        retry_first: float = 60.0,
        retry_max: float = 30 * 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.publishers = tuple(publishers)
        self.db = db
        self.tz = tz
        self.retry_first = retry_first
        self.retry_max = retry_max
        self.clock = clock

    def get(self, destination: str) -> Publisher | None:
        return next((p for p in self.publishers if p.destination == destination), None)

    async def publish_all(self, briefing: Briefing) -> dict[str, bool]:
        """Publish to every destination concurrently; returns destination → published."""
        results = await asyncio.gather(
            *(self.publish_with_retry(p, briefing) for p in self.publishers)
        )
        return {p.destination: ok for p, ok in zip(self.publishers, results, strict=True)}

    async def publish_with_retry(self, publisher: Publisher, briefing: Briefing) -> bool:
        """True once published (or found already published); False when the day ended first."""
        briefing = replace(briefing, notes=await self.notes_for(publisher, briefing.day))
        deadline = datetime.combine(briefing.day + timedelta(days=1), time(0), tzinfo=self.tz)
        return await self._with_retry(
            publisher,
            lambda: publisher.publish(briefing),
            deadline,
            {"day": str(briefing.day)},
            claim=(DAILY, briefing.day),
        )

    async def publish_weekly_all(self, report: WeeklyReport) -> dict[str, bool]:
        """The week's report to every destination, each retried like the briefing until the
        end of the week it is published in."""
        deadline = datetime.combine(report.end + timedelta(days=8), time(0), tzinfo=self.tz)
        results = await asyncio.gather(
            *(
                self._with_retry(
                    p,
                    partial(p.publish_weekly, report),
                    deadline,
                    {"week": report.week},
                    claim=(WEEKLY, report.start),
                )
                for p in self.publishers
            )
        )
        return {p.destination: ok for p, ok in zip(self.publishers, results, strict=True)}

    async def _with_retry(
        self,
        publisher: Publisher,
        publish: Callable[[], Awaitable[bool]],
        deadline: datetime,
        what: dict[str, str],
        *,
        claim: tuple[str, date],
    ) -> bool:
        failures = 0
        while True:
            try:
                if await publish() or await self._posted(publisher, claim):
                    return True
                # Another process holds the claim. Should it die mid-thread, its lease runs
                # out and a later attempt here takes the claim over and posts what is missing.
                if self.clock() + timedelta(seconds=self.retry_first) >= deadline:
                    return False
                await asyncio.sleep(self.retry_first)
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                wait = min(self.retry_first * 2 ** (failures - 1), self.retry_max)
                retry_at = self.clock() + timedelta(seconds=wait)
                if retry_at >= deadline:
                    log.error(
                        "briefing not published today",
                        extra={
                            **what,
                            "destination": publisher.destination,
                            "failures": failures,
                            "error": f"{type(exc).__name__}: {exc}"[:300],
                        },
                    )
                    return False
                log.warning(
                    "briefing publish will be retried",
                    extra={
                        **what,
                        "destination": publisher.destination,
                        "failures": failures,
                        "retry_in_s": round(wait, 1),
                    },
                )
                await asyncio.sleep(wait)

    async def _posted(self, publisher: Publisher, claim: tuple[str, date]) -> bool:
        kind, day = claim
        outcome = await self.db.run(
            briefing_outcome, day=day, destination=publisher.destination, kind=kind
        )
        return outcome is not None and outcome.status == "posted"

    async def notes_for(self, publisher: Publisher, day: date) -> tuple[str, ...]:
        """What to tell readers about the previous day's publish to this destination."""
        previous = day - timedelta(days=1)
        outcome = await self.db.run(
            briefing_outcome, day=previous, destination=publisher.destination
        )
        if outcome is None or (outcome.status == "posted" and outcome.attempts == 0):
            return ()
        label = previous.isoformat()
        if outcome.status != "posted":
            reason = f"（{outcome.last_error}）" if outcome.last_error else ""
            return (
                f"前日（{label}）のブリーフィングは {outcome.attempts}回試みましたが、"
                f"投稿できませんでした{reason}。",
            )
        when = outcome.posted_at.astimezone(self.tz).strftime("%H:%M") if outcome.posted_at else ""
        return (
            f"前日（{label}）のブリーフィングは {outcome.attempts}回の失敗の後、"
            f"{when} に投稿されました。",
        )
