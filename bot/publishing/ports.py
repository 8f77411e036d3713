"""The small ports a platform adapter implements, and the `Publisher` every destination is.

Refs (`str`) are the platform's own: a Slack `ts`, a Discord message or thread id (or both,
joined). The core stores them and hands them back; it never looks inside.
"""

from __future__ import annotations

from typing import Protocol

from handlers.reply import Reply
from jobs.briefing_model import Briefing, BriefingItem
from jobs.weekly_model import WeeklyItem, WeeklyReport


class DirectMessagesClosed(Exception):
    """The platform refused a DM to this user (closed DMs, blocked bot, left the server)."""


class Publisher(Protocol):
    """A destination of the daily briefing: a console file, a Slack or a Discord channel."""

    @property
    def destination(self) -> str:
        """`console`, `slack:C123`, `discord:456`: the key of the once-per-day claim."""
        ...

    async def publish(self, briefing: Briefing) -> bool:
        """Publish once; False when it was not ours to publish (already done, or in progress
        elsewhere). Raises when the platform failed, so the caller can retry."""
        ...

    async def publish_weekly(self, report: WeeklyReport) -> bool:
        """The same for the week's report, once per destination and week."""
        ...


class ThreadPort(Protocol):
    @property
    def destination(self) -> str: ...

    async def post_parent(self, briefing: Briefing) -> str:
        """Post the parent message (and open its thread); returns the ref items go under."""
        ...

    async def post_item(self, parent: str, item: BriefingItem, heading: str) -> str:
        """Post one item into the parent's thread; returns the item message's ref."""
        ...

    async def edit_parent(self, parent: str, briefing: Briefing) -> None:
        """Redraw the parent from `briefing` (a resumed thread's parent is made current)."""
        ...

    async def post_weekly_parent(self, report: WeeklyReport) -> str:
        """The weekly report's parent: its overview. Returns the ref its items go under."""
        ...

    async def post_weekly_item(self, parent: str, item: WeeklyItem) -> str:
        """One of the week's items into the parent's thread."""
        ...

    async def edit_weekly_parent(self, parent: str, report: WeeklyReport) -> None:
        """Redraw the weekly parent (a resumed thread's parent is made current)."""
        ...


class DirectMessagePort(Protocol):
    @property
    def platform(self) -> str: ...

    async def open_dm(self, user_id: str) -> str:
        """The DM channel with the user; raises DirectMessagesClosed when refused."""
        ...

    async def send_bundle(self, channel: str, bundle: Reply) -> None:
        """Send one bundle; raises DirectMessagesClosed when refused."""
        ...


class ChannelPort(Protocol):
    """A plain message in the briefing channel (source notices): no thread, no buttons."""

    @property
    def destination(self) -> str:
        """The same key as the destination's `Publisher`: `console`, `slack:C123`, …"""
        ...

    async def post_notice(self, notice: Reply) -> str:
        """Post one message; returns its ref. Raises when the platform failed."""
        ...
