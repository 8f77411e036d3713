"""One enabled chat platform as the scheduler sees it: its command intake, its briefing-channel
publisher and its DM fan-out — the last two are the core's, built on the platform's ports —
and its briefing channel for plain notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.publishing.fanout import DirectMessageFanout
from bot.publishing.ports import ChannelPort
from bot.publishing.thread import ThreadPublisher


class StartupError(Exception):
    """A platform could not start, worded for an operator in one line naming the variable."""


class Intake(Protocol):
    """Where a platform's commands come in. Shutdown calls `stop_intake` first (nothing new is
    acked), waits for the acked work, then `close`s the clients that work needed."""

    async def start_intake(self) -> None: ...

    async def stop_intake(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    intake: Intake
    thread: ThreadPublisher
    fanout: DirectMessageFanout
    channel: ChannelPort  # plain messages in the briefing channel (source notices)
