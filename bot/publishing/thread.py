"""The briefing thread, for every platform: claim the day for the destination, post the parent,
post each item and record it, mark the briefing posted. A run that stopped midway (crash,
deploy, platform outage) is resumed by the next one from the stored payload, with only the
posts that are missing, so no item is lost or doubled."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.publishing.ports import ThreadPort
from jobs.briefing_model import Briefing, from_payload, to_payload
from storage.briefings import (
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
            return await self._publish(briefing)

    async def repost(self, briefing: Briefing) -> bool:
        """Post `briefing` again although it was posted (admin's `post-digest`). A claim in
        progress is left alone: that run is finishing the thread."""
        async with self._lock:
            await self.db.run(
                forget_posted_briefing, day=briefing.day, destination=self.destination
            )
            return await self._publish(briefing)

    async def _publish(self, briefing: Briefing) -> bool:
        db = self.db
        claim = await db.run(
            claim_briefing,
            day=briefing.day,
            destination=self.destination,
            payload=to_payload(briefing),
            lease_seconds=self.lease,
            on_takeover=self.metrics.takeover_recorder("briefing") if self.metrics else None,
        )
        if claim is None or claim.id is None:
            log.info(
                "briefing not ours to post",
                extra={"day": str(briefing.day), "destination": self.destination},
            )
            return False
        stored = from_payload(claim.payload)
        # What to say above the thread is decided at each attempt (it may report this run's own
        # retries); the items are exactly those of the stored payload.
        stored = replace(stored, notes=briefing.notes)
        try:
            await self._post(claim.id, claim.parent_ref, stored)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            attempts = await db.run(record_failure, briefing_id=claim.id, error=_describe(exc))
            log.warning(
                "briefing publish failed",
                extra={
                    "day": str(briefing.day),
                    "destination": self.destination,
                    "attempt": attempts,
                    "error": _describe(exc),
                },
            )
            raise
        log.info(
            "briefing posted",
            extra={"day": str(briefing.day), "destination": self.destination},
        )
        return True

    async def _post(self, claim_id: int, parent: str | None, briefing: Briefing) -> None:
        db = self.db
        resumed = parent is not None
        if parent is None:
            parent = await self.port.post_parent(briefing)
            self._count("parent")
            await db.run(set_parent_ref, briefing_id=claim_id, parent_ref=parent)
        done = await db.run(posted_items, briefing_id=claim_id)
        for section in briefing.sections:
            for item in section.items:
                if item.number in done:
                    continue
                if self.pace:
                    await asyncio.sleep(self.pace)
                ref = await self.port.post_item(parent, item, section.heading)
                self._count("item")
                await db.run(
                    record_post, briefing_id=claim_id, item_no=item.number, message_ref=ref
                )
        if resumed:
            await self.port.edit_parent(parent, briefing)
        await db.run(mark_posted, briefing_id=claim_id, parent_ref=parent)

    def _count(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.record_post(self.destination, kind)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
