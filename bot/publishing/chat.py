"""The command flow every platform shares: who is asking → handler → stored reply → controls,
plus the buttons (share and page by stored id) and the typed effects of a reply.

An adapter turns its platform's event into a `Caller` and the command text, calls `command` or
`action`, and renders what comes back. It decides nothing about commands itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.app import App, handler_context
from bot.publishing.controls import Control, Page, Share, parse_action, reply_controls
from bot.publishing.fanout import DMS_CLOSED_NOTICE
from bot.publishing.thread import ThreadPublisher
from handlers.commands import handle_command
from handlers.filters import with_page
from handlers.reply import Reply, RepostBriefing, reply_from_payload, reply_to_payload
from jobs.daily import stored_briefing
from storage.replies import load_reply, store_reply
from storage.subscriptions import take_dm_notice

log = logging.getLogger(__name__)

FAILED = Reply(title="エラーが発生しました。しばらくしてからもう一度お試しください。", error=True)
EXPIRED = Reply(
    title="このボタンは使えなくなりました",
    text="もう一度コマンドを実行してください。",
    error=True,
)


@dataclass(frozen=True, slots=True)
class Caller:
    platform: str
    user_id: str
    channel_id: str | None = None
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply to show the caller, with the buttons to draw under it."""

    reply: Reply
    controls: tuple[Control, ...] = ()


@dataclass(frozen=True, slots=True)
class Shared:
    """A stored reply to post in the channel, as the sharing user saw it."""

    reply: Reply
    user_id: str
    channel_id: str | None


Spawn = Callable[[Coroutine[Any, Any, None]], None]


class ChatCore:
    def __init__(
        self,
        app: App,
        *,
        spawn: Spawn,
        threads: Mapping[str, ThreadPublisher] | None = None,
    ) -> None:
        """`threads` maps a platform to its briefing-channel publisher (for `post-digest`)."""
        self.app = app
        self.spawn = spawn
        self.threads = dict(threads or {})

    def add_thread(self, platform: str, thread: ThreadPublisher) -> None:
        """Where `post-digest` from `platform` publishes: that platform's briefing channel."""
        self.threads[platform] = thread

    async def command(self, caller: Caller, text: str) -> Answer:
        started = time.monotonic()
        try:
            return await self._command(caller, " ".join(text.split()))
        finally:
            self.app.metrics.record_command(
                platform=caller.platform, text=text, seconds=time.monotonic() - started
            )

    async def _command(self, caller: Caller, text: str) -> Answer:
        try:
            ctx = handler_context(
                self.app,
                platform=caller.platform,
                user_id=caller.user_id,
                channel_id=caller.channel_id,
                is_admin=caller.is_admin,
            )
            reply = await handle_command(
                ctx,
                text,
                briefing_config=self.app.briefing_config,
                weekly_config=self.app.weekly_config,
            )
            if reply.effect is not None:
                self._carry_out(caller, reply.effect)
            if await self.app.db.run(
                take_dm_notice, platform=caller.platform, user_id=caller.user_id
            ):
                reply = reply.with_notice(DMS_CLOSED_NOTICE)
            return await self._answer(caller, text, reply)
        except Exception:
            log.exception("command failed", extra={"platform": caller.platform, "text": text})
            return Answer(FAILED)

    async def action(self, caller: Caller, value: str) -> Answer | Shared:
        """A button: 前へ / 次へ re-run the stored command on another page; チャンネルに共有
        returns the stored reply itself (the model is not asked again)."""
        action = parse_action(value)
        if action is None:
            return Answer(EXPIRED)
        stored = await self.app.db.run(load_reply, reply_id=action.reply_id)
        if stored is None or (stored.platform, stored.user_id) != (caller.platform, caller.user_id):
            return Answer(EXPIRED)
        if isinstance(action, Share):
            reply = replace(reply_from_payload(stored.payload), ephemeral=False, notices=())
            return Shared(reply, caller.user_id, caller.channel_id)
        assert isinstance(action, Page)
        return await self.command(caller, with_page(stored.command, action.page))

    async def _answer(self, caller: Caller, text: str, reply: Reply) -> Answer:
        if reply.error or not (reply.shareable or reply.paging):
            return Answer(reply)
        reply_id = await self.app.db.run(
            store_reply,
            platform=caller.platform,
            user_id=caller.user_id,
            command=text,
            payload=reply_to_payload(reply),
        )
        return Answer(reply, reply_controls(reply, reply_id))

    def _carry_out(self, caller: Caller, effect: RepostBriefing) -> None:
        thread = self.threads.get(caller.platform)
        if thread is None:
            log.warning("no briefing channel for repost", extra={"platform": caller.platform})
            return
        self.spawn(self._repost(thread, effect))

    async def _repost(self, thread: ThreadPublisher, effect: RepostBriefing) -> None:
        app = self.app
        briefing = await stored_briefing(
            db=app.db,
            day=effect.day,
            config=app.briefing_config,
            taxonomy=app.taxonomy,
            llm=app.llm,
            now=app.clock(),
        )
        if briefing is None:
            log.warning("no briefing to repost", extra={"day": str(effect.day)})
            return
        await thread.repost(briefing)
