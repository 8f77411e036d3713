"""The Slack adapter: slack-bolt's AsyncApp in Socket Mode or over HTTP, the briefing thread,
DM bundles and the App Home tab. It translates Slack payloads to the neutral handlers and the
neutral replies to Block Kit; nothing else in the bot knows about Slack.

Commands are acknowledged before any work: the listener calls `ack()` at once and the answer
follows through `respond()` (the command's response_url) from a tracked background task, so
Slack's 3-second limit holds while a briefing is generated or a poll runs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import App, handler_context
from bot.render.slack import (
    SHARE_ACTION,
    Block,
    briefing_item_blocks,
    briefing_item_text,
    briefing_parent_blocks,
    briefing_parent_text,
    escape,
    reply_blocks,
    reply_text,
    section,
)
from handlers.ask import handle_ask
from handlers.commands import handle_command
from handlers.reply import Reply
from jobs.briefing_model import Briefing, from_payload, to_payload
from storage.briefings import (
    claim_briefing,
    forget_briefing,
    mark_posted,
    posted_items,
    record_post,
    set_parent_ref,
)
from storage.subscriptions import (
    PendingItem,
    advance_cursor,
    pending_deliveries,
    subscribe,
    subscriptions_of,
    unsubscribe,
)

log = logging.getLogger(__name__)

PLATFORM = "slack"
TOGGLE_ACTION = "ainews_toggle_subscription"
MAX_DM_ITEMS = 15


class RetryAfterHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's rate-limit handler, but waiting the whole Retry-After: the stock one reads
    only the header's first character from the async client ("30" waits 3 s)."""

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("rate-limit retry without a response")
        raw = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        value = raw[0] if isinstance(raw, list) else raw
        try:
            wait = float(value) if value is not None else 1.0
        except ValueError:
            wait = 1.0
        state.next_attempt_requested = True
        await asyncio.sleep(wait + random.random() * 0.2)
        state.increment_current_attempt()


class SlackBot:
    def __init__(self, app: App, *, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        settings = app.settings
        assert settings.slack_bot_token is not None and settings.slack_channel is not None
        self.app = app
        self.channel = settings.slack_channel
        self.spawn = spawn
        self.client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
            retry_handlers=[RetryAfterHandler(max_retry_count=5)],
        )
        secret = settings.slack_signing_secret
        self.bolt = AsyncApp(
            client=self.client,
            signing_secret=secret.get_secret_value() if secret else None,
            request_verification_enabled=secret is not None,
            # Our listeners only ack and hand the work to a task, so bolt may answer Slack as
            # soon as they return instead of polling for the ack every 10 ms.
            process_before_response=True,
            logger=logging.getLogger("slack_bolt"),
        )
        self._admins = settings.admins
        self._admin_cache: dict[str, bool] = {}
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.http_port: int | None = None
        self._register()

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        settings = self.app.settings
        if settings.slack_app_token is not None:
            self._socket = AsyncSocketModeHandler(
                self.bolt, settings.slack_app_token.get_secret_value(), web_client=self.client
            )
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack connected", extra={"mode": "socket"})
            return
        web_app = web.Application()
        web_app.router.add_post("/slack/events", self._http_events)
        web_app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(web_app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, settings.http_host, settings.http_port).start()
        self.http_port = self._runner.addresses[0][1]
        log.info(
            "slack listening",
            extra={"mode": "http", "host": settings.http_host, "port": self.http_port},
        )

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
        if self._runner is not None:
            await self._runner.cleanup()

    async def _http_events(self, request: web.Request) -> web.Response:
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # ── listeners ────────────────────────────────────────────────────────────────────────────

    def _register(self) -> None:
        bolt = self.bolt
        bolt.command("/ainews")(self._on_command)
        bolt.action(SHARE_ACTION)(self._on_share)
        bolt.action(TOGGLE_ACTION)(self._on_toggle)
        bolt.event("app_mention")(self._on_mention)
        bolt.event("app_home_opened")(self._on_home_opened)

    async def _on_command(
        self, ack: Callable[..., Awaitable[None]], command: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        self.spawn(self._answer_command(command, respond))

    async def _answer_command(self, command: dict[str, Any], respond: Any) -> None:
        text = command.get("text", "")
        try:
            reply = await self._run_command(command["user_id"], command.get("channel_id"), text)
        except Exception:
            log.exception("command failed", extra={"text": text})
            reply = Reply(
                title="エラーが発生しました。しばらくしてからもう一度お試しください。", error=True
            )
        if reply.action == "post-digest":
            self.spawn(self._repost_today())
        await respond(
            blocks=reply_blocks(reply, share_value=text),
            text=reply_text(reply),
            response_type="ephemeral" if reply.ephemeral else "in_channel",
        )

    async def _run_command(self, user_id: str, channel_id: str | None, text: str) -> Reply:
        ctx = handler_context(
            self.app,
            user_id=user_id,
            channel_id=channel_id,
            is_admin=await self._is_admin(user_id),
        )
        return await handle_command(
            ctx, text, briefing_config=self.app.briefing_config, platform=PLATFORM
        )

    async def _is_admin(self, user_id: str) -> bool:
        if user_id in self._admins:
            return True
        if user_id not in self._admin_cache:
            try:
                info = await self.client.users_info(user=user_id)
                user = info.get("user") or {}
                self._admin_cache[user_id] = bool(user.get("is_admin") or user.get("is_owner"))
            except SlackApiError as exc:
                log.warning("users.info failed", extra={"user": user_id, "error": str(exc)})
                return False
        return self._admin_cache[user_id]

    async def _on_share(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        text = body["actions"][0]["value"]
        channel = (body.get("channel") or {}).get("id") or self.channel
        user = body["user"]["id"]
        self.spawn(self._share(user, channel, text))

    async def _share(self, user: str, channel: str, text: str) -> None:
        reply = await self._run_command(user, channel, text)
        blocks = [section(f"<@{user}> が共有しました"), *reply_blocks(reply)]
        await self.client.chat_postMessage(channel=channel, blocks=blocks, text=reply_text(reply))

    async def _on_mention(self, ack: Callable[..., Awaitable[None]], event: dict[str, Any]) -> None:
        await ack()
        self.spawn(self._answer_mention(event))

    async def _answer_mention(self, event: dict[str, Any]) -> None:
        question = " ".join(w for w in event.get("text", "").split() if not w.startswith("<@"))
        reply = await handle_ask(handler_context(self.app, user_id=event.get("user")), question)
        await self.client.chat_postMessage(
            channel=event["channel"],
            thread_ts=event.get("thread_ts") or event["ts"],
            blocks=reply_blocks(reply),
            text=reply_text(reply),
        )

    async def _on_home_opened(
        self, ack: Callable[..., Awaitable[None]], event: dict[str, Any]
    ) -> None:
        await ack()
        if event.get("tab", "home") == "home":
            self.spawn(self.publish_home(event["user"]))

    async def _on_toggle(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        user = body["user"]["id"]
        slug = body["actions"][0]["value"]
        self.spawn(self._toggle(user, slug))

    async def _toggle(self, user: str, slug: str) -> None:
        current = await self.app.db.run(subscriptions_of, platform=PLATFORM, user_id=user)
        change = unsubscribe if slug in current else subscribe
        await self.app.db.run(change, platform=PLATFORM, user_id=user, categories=[slug])
        await self.publish_home(user)

    async def publish_home(self, user: str) -> None:
        current = set(await self.app.db.run(subscriptions_of, platform=PLATFORM, user_id=user))
        blocks: list[Block] = [
            section(
                "*ainews — カテゴリー購読*\n購読したカテゴリーの新着をDMでまとめてお届けします。"
            )
        ]
        for category in self.app.taxonomy.categories:
            on = category.slug in current
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": f"{'✅' if on else '⬜'} {escape(category.label)}",
                    },
                    "accessory": {
                        "type": "button",
                        "action_id": TOGGLE_ACTION,
                        "value": category.slug,
                        "text": {"type": "plain_text", "text": "解除" if on else "購読"},
                        **({"style": "danger"} if on else {"style": "primary"}),
                    },
                }
            )
        await self.client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})

    # ── the daily briefing thread ────────────────────────────────────────────────────────────

    @property
    def destination(self) -> str:
        return f"slack:{self.channel}"

    async def publish(self, briefing: Briefing) -> bool:
        """Post the briefing as a thread, once per channel and day. A claim left by a stopped
        poster is resumed with only the replies that are missing, from the stored payload."""
        db = self.app.db
        claim = await db.run(
            claim_briefing,
            day=briefing.day,
            destination=self.destination,
            payload=to_payload(briefing),
            lease_seconds=self.app.settings.briefing_lease,
        )
        if claim is None or claim.id is None:
            log.info("briefing not ours to post", extra={"day": str(briefing.day)})
            return False
        briefing = from_payload(claim.payload)
        parent = claim.parent_ref
        if parent is None:
            response = await self.client.chat_postMessage(
                channel=self.channel,
                blocks=briefing_parent_blocks(briefing),
                text=briefing_parent_text(briefing),
                unfurl_links=False,
            )
            parent = str(response["ts"])
            await db.run(set_parent_ref, briefing_id=claim.id, parent_ref=parent)
        done = await db.run(posted_items, briefing_id=claim.id)
        interval = self.app.settings.slack_post_interval
        for section_ in briefing.sections:
            for item in section_.items:
                if item.number in done:
                    continue
                await asyncio.sleep(interval)  # Slack allows about one message per second
                response = await self.client.chat_postMessage(
                    channel=self.channel,
                    thread_ts=parent,
                    blocks=briefing_item_blocks(item, section_.heading),
                    text=briefing_item_text(item),
                    unfurl_links=False,
                )
                await db.run(
                    record_post,
                    briefing_id=claim.id,
                    item_no=item.number,
                    message_ref=str(response["ts"]),
                )
        await db.run(mark_posted, briefing_id=claim.id, parent_ref=parent)
        log.info("briefing posted", extra={"day": str(briefing.day), "channel": self.channel})
        return True

    async def _repost_today(self) -> None:
        from bot.app import briefing_for

        day = datetime.now(self.app.settings.tz).date()
        await self.app.db.run(forget_briefing, day=day, destination=self.destination)
        await self.publish(await briefing_for(self.app, day))

    # ── DM bundles ───────────────────────────────────────────────────────────────────────────

    async def send_subscriptions(self) -> int:
        """One DM per subscriber with everything new in their categories; returns DMs sent."""
        bundles = await self.app.db.run(pending_deliveries, platform=PLATFORM)
        sent = 0
        for user, items in bundles.items():
            try:
                opened = await self.client.conversations_open(users=user)
                channel = opened["channel"]["id"]
                await self.client.chat_postMessage(
                    channel=channel,
                    blocks=self._bundle_blocks(items),
                    text=f"購読カテゴリーの新着 {len(items)}件",
                    unfurl_links=False,
                )
            except SlackApiError as exc:
                log.warning("dm failed", extra={"user": user, "error": str(exc)})
                continue
            await self.app.db.run(
                advance_cursor,
                platform=PLATFORM,
                user_id=user,
                last_summary_id=max(i.summary_id for i in items),
            )
            sent += 1
        return sent

    def _bundle_blocks(self, items: list[PendingItem]) -> list[Block]:
        shown = sorted(items, key=lambda i: (-i.importance, i.summary_id))[:MAX_DM_ITEMS]
        blocks: list[Block] = [section(f"*購読カテゴリーの新着 {len(items)}件*")]
        for item in shown:
            label = self.app.taxonomy.get(item.category).label
            blocks.append(
                section(
                    f"<{item.url}|{escape(item.title)}>\n{escape(label)} ・ {escape(item.source)}\n"
                    f"{escape(item.overview)}"
                )
            )
        if len(items) > len(shown):
            blocks.append(section(f"ほか{len(items) - len(shown)}件"))
        return blocks
