"""The poster role: of several `ainews run` processes sharing one database, one posts.

Polling and summarising are shared work (claimed row by row, see `storage.claims`); scheduled
posting — the daily briefing, the weekly report, DM bundles, source announcements — and
retention run on exactly one process at a time: the holder of the `poster` lease. The holder
renews it well within its time to live; when it dies or stops renewing, another process takes
the lease over at its next renewal. The per-destination claim of each briefing stays the second
guard, so even two processes that both believed themselves the poster would not post twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from storage.claims import drop_lease, hold_lease
from storage.db import Database

log = logging.getLogger(__name__)

POSTER = "poster"
# The default time to live (AINEWS_POSTER_LEASE): another process takes over once it has passed
# without renewal; the holder renews four times within it.
TTL = timedelta(seconds=60)


class PosterRole:
    def __init__(
        self,
        db: Database,
        *,
        owner: str,
        clock: Callable[[], datetime],
        ttl: timedelta = TTL,
        on_takeover: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.owner = owner
        self.clock = clock
        self.ttl = ttl
        self.on_takeover = on_takeover
        self.held = False

    @property
    def renew_every(self) -> timedelta:
        return self.ttl / 4

    async def renew(self) -> bool:
        """Take or keep the role; False while another live process holds it."""
        state = await self.db.run(
            hold_lease, name=POSTER, owner=self.owner, now=self.clock(), ttl=self.ttl
        )
        if state.held != self.held:
            log.info(
                "poster role taken" if state.held else "poster role held elsewhere",
                extra={"owner": self.owner, "holder": state.holder},
            )
        if state.taken_over and self.on_takeover is not None:
            self.on_takeover()
        self.held = state.held
        return state.held

    async def release(self) -> None:
        """Give the role up at shutdown, so another process posts without waiting for TTL."""
        if self.held:
            await self.db.run(drop_lease, name=POSTER, owner=self.owner)
            self.held = False
