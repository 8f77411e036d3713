"""Source notices, for every destination: a feed disabled after failing, a feed back after a
run of failures. The poll stores each notice once (storage.sources); this core posts every
pending one to each destination's channel, claiming it first (storage.notices), so several
processes and restarts say it once per destination. A platform that fails keeps its notices
pending for the next pass; the others are not held up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo

from bot.publishing.ports import ChannelPort
from handlers.sources import source_notice_reply
from storage.clock import utcnow
from storage.db import Database
from storage.notices import (
    claim_source_notice,
    mark_source_notice_posted,
    pending_source_notices,
    release_source_notice,
)

log = logging.getLogger(__name__)

# News older than this is not posted to a destination that missed it (one configured later).
NOTICE_WINDOW = timedelta(days=7)


class SourceAnnouncer:
    def __init__(
        self,
        ports: Sequence[ChannelPort],
        *,
        db: Database,
        tz: tzinfo,
        lease: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ports = tuple(ports)
        self.db = db
        self.tz = tz
        self.lease = lease
        self.clock = clock

    async def announce(self) -> int:
        """Post what is pending to every destination concurrently; returns messages posted."""
        posted = await asyncio.gather(*(self._announce_to(port) for port in self.ports))
        return sum(posted)

    async def _announce_to(self, port: ChannelPort) -> int:
        destination = port.destination
        pending = await self.db.run(
            pending_source_notices, destination=destination, since=self.clock() - NOTICE_WINDOW
        )
        posted = 0
        for item in pending:
            notice_id = item.notice.id
            assert notice_id is not None
            claimed = await self.db.run(
                claim_source_notice,
                notice_id=notice_id,
                destination=destination,
                now=self.clock(),
                lease_seconds=self.lease,
            )
            if not claimed:
                continue
            try:
                ref = await port.post_notice(
                    source_notice_reply(item.notice, item.source, tz=self.tz)
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.db.run(
                    release_source_notice, notice_id=notice_id, destination=destination
                )
                log.warning(
                    "source notice not posted; retried after the next poll",
                    extra={
                        "destination": destination,
                        "notice_id": notice_id,
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                    },
                )
                return posted  # the platform is failing: the rest wait with this one
            await self.db.run(
                mark_source_notice_posted,
                notice_id=notice_id,
                destination=destination,
                message_ref=ref,
                now=self.clock(),
            )
            log.info(
                "source notice posted",
                extra={
                    "destination": destination,
                    "notice_id": notice_id,
                    "source_id": item.source.id,
                    "kind": item.notice.kind,
                },
            )
            posted += 1
        return posted
