"""The briefing thread, for every platform: claim the document for the destination, post the
parent, post each item and record it, mark it posted. A run that stopped midway (crash, deploy,
platform outage) is resumed by the next one from the stored payload, with only the posts that
are missing, so no item is lost or doubled.

Two documents go through this one loop: the daily briefing (claimed by its day) and the weekly
report (claimed by its week's Monday, kind `weekly`). What differs between them is only which
port methods draw the parent and the items (`_Thread`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from bot.publishing.ports import ThreadPort
from jobs.briefing_model import Briefing, from_payload, to_payload
from jobs.weekly_model import WeeklyReport, weekly_from_payload, weekly_to_payload
from storage.briefings import (
    DAILY,
    WEEKLY,
    claim_briefing,
    forget_posted_briefing,
    mark_posted,
    posted_items,
    record_failure,
    record_post,
    set_parent_ref,
)
from storage.db import Database

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Thread:
    """One document as posts: the parent, then each numbered item under it."""

    post_parent: Callable[[], Awaitable[str]]
    items: Sequence[tuple[int, Callable[[str], Awaitable[str]]]]
    edit_parent: Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Document:
    kind: str
    day: date
    label: str  # for logs: the day, or the week
    payload: dict[str, Any]
    thread: Callable[[dict[str, Any]], _Thread]  # the posts of the *stored* payload


class ThreadPublisher:
    """A `Publisher` for one channel of one platform, built on that platform's `ThreadPort`.

    Publishing is serialised per destination in this process (the database claim does it across
    processes), so `post-digest` during the scheduled run waits instead of racing it."""

    def __init__(
        self,
        port: ThreadPort,
        *,
        db: Database,
        lease: float,
        pace: float = 0.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.port = port
        self.db = db
        self.lease = lease
        self.pace = pace
        self.metrics = metrics
        self._lock = asyncio.Lock()

    @property
    def destination(self) -> str:
        return self.port.destination

    async def publish(self, briefing: Briefing) -> bool:
        async with self._lock:
            return await self._publish(self._daily(briefing))

    async def publish_weekly(self, report: WeeklyReport) -> bool:
        """The week's report as a thread, once per destination and week."""
        async with self._lock:
            return await self._publish(self._weekly(report))

    async def repost(self, briefing: Briefing) -> bool:
        """Post `briefing` again although it was posted (admin's `post-digest`). A claim in
        progress is left alone: that run is finishing the thread."""
        async with self._lock:
            await self.db.run(
                forget_posted_briefing, day=briefing.day, destination=self.destination
            )
            return await self._publish(self._daily(briefing))

    def _daily(self, briefing: Briefing) -> _Document:
        port = self.port

        def thread(payload: dict[str, Any]) -> _Thread:
            # What to say above the thread is decided at each attempt (it may report this run's
            # own retries); the items are exactly those of the stored payload.
            stored = replace(from_payload(payload), notes=briefing.notes)
            return _Thread(
                post_parent=partial(port.post_parent, stored),
                items=[
                    (item.number, partial(port.post_item, item=item, heading=section.heading))
                    for section in stored.sections
                    for item in section.items
                ],
                edit_parent=partial(port.edit_parent, briefing=stored),
            )

        return _Document(DAILY, briefing.day, str(briefing.day), to_payload(briefing), thread)

    def _weekly(self, report: WeeklyReport) -> _Document:
        port = self.port

        def thread(payload: dict[str, Any]) -> _Thread:
            stored = weekly_from_payload(payload)
            return _Thread(
                post_parent=partial(port.post_weekly_parent, stored),
                items=[
                    (item.number, partial(port.post_weekly_item, item=item))
                    for item in stored.items
                ],
                edit_parent=partial(port.edit_weekly_parent, report=stored),
            )

        return _Document(WEEKLY, report.start, report.week, weekly_to_payload(report), thread)

    async def _publish(self, document: _Document) -> bool:
        db = self.db
        where = {"kind": document.kind, "day": document.label, "destination": self.destination}
        claim = await db.run(
            claim_briefing,
            kind=document.kind,
            day=document.day,
            destination=self.destination,
            payload=document.payload,
            lease_seconds=self.lease,
            on_takeover=self.metrics.takeover_recorder("briefing") if self.metrics else None,
        )
        if claim is None or claim.id is None:
            log.info("briefing not ours to post", extra=where)
            return False
        try:
            await self._post(claim.id, claim.parent_ref, document.thread(claim.payload))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempts = await db.run(record_failure, briefing_id=claim.id, error=_describe(exc))
            log.warning(
                "briefing publish failed",
                extra={**where, "attempt": attempts, "error": _describe(exc)},
            )
            raise
        log.info("briefing posted", extra=where)
        return True

    async def _post(self, claim_id: int, parent: str | None, thread: _Thread) -> None:
        db = self.db
        resumed = parent is not None
        if parent is None:
            parent = await thread.post_parent()
            self._count("parent")
            await db.run(set_parent_ref, briefing_id=claim_id, parent_ref=parent)
        done = await db.run(posted_items, briefing_id=claim_id)
        for number, post_item in thread.items:
            if number in done:
                continue
            if self.pace:
                await asyncio.sleep(self.pace)
            ref = await post_item(parent)
            self._count("item")
            await db.run(record_post, briefing_id=claim_id, item_no=number, message_ref=ref)
        if resumed:
            await thread.edit_parent(parent)
        await db.run(mark_posted, briefing_id=claim_id, parent_ref=parent)

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_post(self.destination, kind)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
