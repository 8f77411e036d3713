"""The Slack adapter: slack-bolt's AsyncApp in Socket Mode or over HTTP. It turns Slack events
into calls of the publishing core (`ChatCore`) and the core's neutral replies into Block Kit,
and implements the core's two ports: the briefing thread and DMs. Nothing else knows Slack.

Every command and button is acknowledged before any work: the listener calls `ack()` at once and
the answer follows through `respond()` (the command's response_url) from a tracked task, so
Slack's 3-second limit holds while a briefing is generated or a poll runs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
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

from bot.app import App
from bot.publishing.chat import Answer, Caller, ChatCore, Shared, Spawn
from bot.publishing.controls import PREFIX
from bot.publishing.fanout import DirectMessageFanout
from bot.publishing.platform import Platform
from bot.publishing.ports import DirectMessagesClosed
from bot.publishing.thread import ThreadPublisher
from bot.render.slack import (
    Block,
    briefing_item_blocks,
    briefing_item_text,
    briefing_parent_blocks,
    briefing_parent_text,
    context,
    escape,
    reply_blocks,
    reply_text,
    section,
    share_blocks,
    weekly_item_blocks,
    weekly_item_text,
    weekly_parent_blocks,
    weekly_parent_text,
)
from handlers.reply import Reply
from jobs.briefing_model import Briefing, BriefingItem
from jobs.weekly_model import WeeklyItem, WeeklyReport
from storage.subscriptions import saved_searches_of, subscribe, subscriptions_of, unsubscribe

log = logging.getLogger(__name__)

PLATFORM = "slack"
TOGGLE_ACTION = "ainews_toggle_subscription"
# Errors meaning "this user cannot get a DM from us", as opposed to a passing failure.
DM_REFUSED = frozenset(
    {"cannot_dm_bot", "user_disabled", "user_not_found", "not_allowed", "messages_tab_disabled"}
)
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]+)(?:\|[^>]*)?>")


def unwrap_links(text: str) -> str:
    """Slack sends a typed URL as `<https://…|label>`; commands want the URL itself."""
    return _SLACK_LINK.sub(r"\1", text)


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


class SlackThread:
    """The core's `ThreadPort` on Slack: the parent in the channel, items under `thread_ts`."""

    def __init__(self, client: AsyncWebClient, channel: str) -> None:
        self.client = client
        self.channel = channel

    @property
    def destination(self) -> str:
        return f"slack:{self.channel}"

    async def post_parent(self, briefing: Briefing) -> str:
        response = await self.client.chat_postMessage(
            channel=self.channel,
            blocks=briefing_parent_blocks(briefing),
            text=briefing_parent_text(briefing),
            unfurl_links=False,
        )
        return str(response["ts"])

    async def post_item(self, parent: str, item: BriefingItem, heading: str) -> str:
        response = await self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=parent,
            blocks=briefing_item_blocks(item, heading),
            text=briefing_item_text(item),
            unfurl_links=False,
        )
        return str(response["ts"])

    async def edit_parent(self, parent: str, briefing: Briefing) -> None:
        await self.client.chat_update(
            channel=self.channel,
            ts=parent,
            blocks=briefing_parent_blocks(briefing),
            text=briefing_parent_text(briefing),
        )

    async def post_notice(self, notice: Reply) -> str:
        """The core's `ChannelPort`: one message in the channel, outside any thread."""
        response = await self.client.chat_postMessage(
            channel=self.channel,
            blocks=reply_blocks(notice),
            text=reply_text(notice),
            unfurl_links=False,
        )
        return str(response["ts"])

    async def post_weekly_parent(self, report: WeeklyReport) -> str:
        response = await self.client.chat_postMessage(
            channel=self.channel,
            blocks=weekly_parent_blocks(report),
            text=weekly_parent_text(report),
            unfurl_links=False,
        )
        return str(response["ts"])

    async def post_weekly_item(self, parent: str, item: WeeklyItem) -> str:
        response = await self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=parent,
            blocks=weekly_item_blocks(item),
            text=weekly_item_text(item),
            unfurl_links=False,
        )
        return str(response["ts"])

    async def edit_weekly_parent(self, parent: str, report: WeeklyReport) -> None:
        await self.client.chat_update(
            channel=self.channel,
            ts=parent,
            blocks=weekly_parent_blocks(report),
            text=weekly_parent_text(report),
        )


class SlackDirectMessages:
    """The core's `DirectMessagePort` on Slack."""

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def open_dm(self, user_id: str) -> str:
        try:
            opened = await self.client.conversations_open(users=user_id)
        except SlackApiError as exc:
            raise _refusal(exc) from exc
        return str(opened["channel"]["id"])

    async def send_bundle(self, channel: str, bundle: Reply) -> None:
        try:
            await self.client.chat_postMessage(
                channel=channel,
                blocks=reply_blocks(bundle),
                text=reply_text(bundle),
                unfurl_links=False,
            )
        except SlackApiError as exc:
            raise _refusal(exc) from exc


def _refusal(exc: SlackApiError) -> Exception:
    error = str(exc.response.get("error", "")) if exc.response is not None else ""
    return DirectMessagesClosed(error) if error in DM_REFUSED else exc


class SlackBot:
    """Listeners and lifecycle. `core` answers every command; this class only translates."""

    def __init__(self, app: App, *, client: AsyncWebClient, core: ChatCore, spawn: Spawn) -> None:
        settings = app.settings
        self.app = app
        self.client = client
        self.core = core
        self.spawn = spawn
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
        self._site: web.TCPSite | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._accepting = True
        self.http_port: int | None = None
        self._register()

    # ── lifecycle ────────────────────────────────────────────────────────────────────────────

    async def start_intake(self) -> None:
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
        self._site = web.TCPSite(self._runner, settings.http_host, settings.http_port)
        await self._site.start()
        self.http_port = self._runner.addresses[0][1]
        log.info(
            "slack listening",
            extra={"mode": "http", "host": settings.http_host, "port": self.http_port},
        )

    async def stop_intake(self) -> None:
        """Take no new commands; what was acked is still answered (the web client stays)."""
        self._accepting = False
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        await self.stop_intake()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _http_events(self, request: web.Request) -> web.Response:
        if not self._accepting:
            return web.Response(status=503, text="shutting down")
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # ── listeners: ack, then hand the work to a tracked task ────────────────────────────────

    def _register(self) -> None:
        bolt = self.bolt
        bolt.command("/ainews")(self._on_command)
        bolt.action(re.compile(f"^{re.escape(PREFIX)}"))(self._on_control)
        bolt.action(TOGGLE_ACTION)(self._on_toggle)
        bolt.event("app_mention")(self._on_mention)
        bolt.event("app_home_opened")(self._on_home_opened)

    async def _on_command(
        self, ack: Callable[..., Awaitable[None]], command: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        self.spawn(self._answer_command(command, respond))

    async def _answer_command(self, command: dict[str, Any], respond: Any) -> None:
        caller = await self._caller(command["user_id"], command.get("channel_id"))
        answer = await self.core.command(caller, unwrap_links(command.get("text", "")))
        await self._respond(respond, answer)

    async def _respond(self, respond: Any, answer: Answer, *, replace: bool = False) -> None:
        reply = answer.reply
        await respond(
            blocks=reply_blocks(reply, controls=answer.controls),
            text=reply_text(reply),
            response_type="ephemeral" if reply.ephemeral else "in_channel",
            replace_original=replace,
        )

    async def _on_control(
        self, ack: Callable[..., Awaitable[None]], body: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        self.spawn(self._answer_control(body, respond))

    async def _answer_control(self, body: dict[str, Any], respond: Any) -> None:
        channel = (body.get("channel") or {}).get("id")
        caller = await self._caller(body["user"]["id"], channel)
        result = await self.core.action(caller, body["actions"][0]["action_id"])
        if isinstance(result, Shared):
            await self.client.chat_postMessage(
                channel=result.channel_id or self.app.settings.slack_channel or "",
                blocks=share_blocks(result.reply, result.user_id),
                text=reply_text(result.reply),
                unfurl_links=False,
            )
            return
        await self._respond(respond, result, replace=not result.reply.error)

    async def _caller(self, user_id: str, channel_id: str | None) -> Caller:
        return Caller(PLATFORM, user_id, channel_id, await self._is_admin(user_id))

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

    async def _on_mention(self, ack: Callable[..., Awaitable[None]], event: dict[str, Any]) -> None:
        await ack()
        self.spawn(self._answer_mention(event))

    async def _answer_mention(self, event: dict[str, Any]) -> None:
        words = unwrap_links(event.get("text", "")).split()
        question = " ".join(w for w in words if not w.startswith("<@"))
        caller = await self._caller(event.get("user", ""), event["channel"])
        answer = await self.core.command(caller, f"ask {question}")
        await self.client.chat_postMessage(
            channel=event["channel"],
            thread_ts=event.get("thread_ts") or event["ts"],
            blocks=reply_blocks(answer.reply),
            text=reply_text(answer.reply),
            unfurl_links=False,
        )

    # ── App Home: the user's subscriptions as toggles ───────────────────────────────────────

    async def _on_home_opened(
        self, ack: Callable[..., Awaitable[None]], event: dict[str, Any]
    ) -> None:
        await ack()
        if event.get("tab", "home") == "home":
            self.spawn(self.publish_home(event["user"]))

    async def _on_toggle(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        self.spawn(self._toggle(body["user"]["id"], body["actions"][0]["value"]))

    async def _toggle(self, user: str, slug: str) -> None:
        if slug not in self.app.taxonomy.slugs:
            return
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
                        "style": "danger" if on else "primary",
                    },
                }
            )
        blocks += await self._saved_search_blocks(user)
        await self.client.views_publish(user_id=user, view={"type": "home", "blocks": blocks})

    async def _saved_search_blocks(self, user: str) -> list[Block]:
        """The user's saved searches under the toggles: managed by command (they are typed)."""
        saved = await self.app.db.run(saved_searches_of, platform=PLATFORM, user_id=user)
        listed = "\n".join(f"{n}. {escape(s.text)}" for n, s in enumerate(saved, start=1))
        return [
            section(f"*保存検索*\n{listed or 'まだありません。'}"),
            context(
                '`/ainews subscribe query:"検索語"` で登録、'
                "`/ainews unsubscribe 番号` でやめられます。"
            ),
        ]


def build_slack(app: App, *, core: ChatCore, spawn: Spawn) -> Platform:
    """The Slack platform: one web client shared by the listeners and both ports."""
    settings = app.settings
    assert settings.slack_bot_token is not None and settings.slack_channel is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
        retry_handlers=[RetryAfterHandler(max_retry_count=5)],
    )
    channel = SlackThread(client, settings.slack_channel)
    thread = ThreadPublisher(
        channel,
        db=app.db,
        lease=settings.briefing_lease,
        pace=settings.slack_post_interval,  # Slack allows about one message per second
        metrics=app.metrics,
    )
    core.add_thread(PLATFORM, thread)
    return Platform(
        name=PLATFORM,
        intake=SlackBot(app, client=client, core=core, spawn=spawn),
        thread=thread,
        fanout=DirectMessageFanout(SlackDirectMessages(client), db=app.db, taxonomy=app.taxonomy),
        channel=channel,
    )
