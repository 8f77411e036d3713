"""A real-HTTP/WebSocket stand-in for Slack: the Web API, Socket Mode and ``response_url``.

The bot reaches Slack only through the real slack_sdk / slack_bolt clients, whose request
encoding, retry handlers and Socket Mode reconnection are part of the behaviour we rely on.
Mocking them would test our beliefs about them, so tests point the real clients at this server
instead: ``AsyncWebClient(base_url=srv.base_url + "/api/")`` for the Web API, and Socket Mode
follows the ``ws://`` URL that ``apps.connections.open`` hands out, exactly as with Slack.

Everything a client sends is recorded (`calls`, `messages`, `responses`, `socket_acks`) and the
``wait_for*`` helpers poll for it against a deadline, so tests never guess with fixed sleeps.
Faults are scripted per method (`rate_limit`, `fail`) and consumed in the order configured.

Replies imitate Slack where client code tends to depend on the detail: HTTP 200 with
``ok: false`` for API errors, 429 with ``Retry-After`` for rate limits, bot versus app-level
tokens, and a subset of Block Kit limits, so a briefing that Slack would reject fails here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TypeGuard, TypeVar
from urllib.parse import urlencode

from aiohttp import WSCloseCode, WSMsgType, web

from bot.demo.local_server import LocalServer
from tests.fakes.waiting import lower_headers, poll

__all__ = [
    "APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "ApiCall",
    "MethodHandler",
    "PayloadType",
    "PostedMessage",
    "ResponsePost",
    "SlackServer",
    "SocketAck",
    "SocketConnection",
    "block_actions_body",
    "block_errors",
    "decode_json_param",
    "events_api_payload",
    "sign_request",
    "slash_command_body",
    "slash_command_payload",
]

TEAM_ID: Final = "T0001"
TEAM_DOMAIN: Final = "ainews-test"
BOT_USER_ID: Final = "U0BOT"
BOT_ID: Final = "B0001"
APP_ID: Final = "A0001"

PayloadType = Literal["slash_commands", "events_api", "interactive"]
MethodHandler = Callable[["ApiCall"], dict[str, Any]]
"""Answers one recorded call with the JSON body to send (``ok`` is not added for you)."""

JSON_PARAMS: Final = frozenset({"blocks", "attachments", "view", "metadata", "unfurls"})
"""Parameters Slack accepts as JSON text inside form bodies; `ApiCall.decoded` parses them."""

_WORKSPACE_TOKEN_PREFIXES: Final = ("xoxb-", "xoxp-")
_APP_TOKEN_PREFIX: Final = "xapp-"
_FIRST_TS: Final = 1_700_000_000
_MESSAGE_BLOCK_LIMIT: Final = 50
_VIEW_BLOCK_LIMIT: Final = 100

_T = TypeVar("_T")


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API call as the server saw it, including calls answered with an error.

    `params` merges the query string, then the form or JSON body (later sources win), with
    values exactly as sent: slack_sdk posts ``chat.postMessage`` as JSON (``blocks`` is a
    list) but form-encoded callers send ``blocks`` as JSON text; `decoded` hides the
    difference. Header names are lower-cased because HTTP treats them case-insensitively.
    """

    method: str
    params: dict[str, Any] = field(hash=False)
    headers: dict[str, str] = field(hash=False)
    at: float
    """`time.monotonic()` at arrival; lets tests measure retry back-off."""
    http_method: str = "POST"

    @property
    def token(self) -> str | None:
        """The bearer token, else a ``token`` parameter (the older way Slack still accepts)."""
        auth = self.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        token = self.params.get("token")
        return token if isinstance(token, str) and token else None

    def decoded(self, name: str, default: Any = None) -> Any:
        """`params[name]` with JSON text parsed (form bodies carry ``blocks`` that way)."""
        if name not in self.params:
            return default
        return decode_json_param(self.params[name])

    @property
    def decoded_params(self) -> dict[str, Any]:
        """All params, with the usual JSON-carrying ones (`JSON_PARAMS`) parsed."""
        return {k: decode_json_param(v) if k in JSON_PARAMS else v for k, v in self.params.items()}


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A message as ``chat.postMessage`` / ``chat.postEphemeral`` stored it.

    `blocks` and `attachments` are decoded whatever encoding the client used, so assertions
    compare structures. `user` is the recipient of an ephemeral message, else ``None``.
    """

    channel: str
    ts: str
    text: str | None
    blocks: list[dict[str, Any]] | None = field(default=None, hash=False)
    thread_ts: str | None = None
    attachments: list[dict[str, Any]] | None = field(default=None, hash=False)
    user: str | None = None
    edited: bool = False
    """True once ``chat.update`` replaced the content."""


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """One POST to a URL from `SlackServer.response_url`, labelled with that URL's name."""

    name: str
    body: dict[str, Any] = field(hash=False)
    headers: dict[str, str] = field(hash=False)
    at: float


@dataclass(frozen=True, slots=True)
class SocketConnection:
    """One accepted Socket Mode WebSocket; `ticket` tells which ``apps.connections.open``
    issued its URL, so a test can check that a reconnect fetched a fresh one."""

    ticket: str
    at: float


@dataclass(frozen=True, slots=True)
class SocketAck:
    """A client's acknowledgement of an envelope; `payload` is ``None`` for a bare ack."""

    envelope_id: str
    payload: dict[str, Any] | None = field(hash=False)
    at: float


@dataclass(slots=True)
class _Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int | None
    """Uses left; ``None`` means every call until `SlackServer.clear_faults`."""


# -- the server ----------------------------------------------------------------------------


class SlackServer(LocalServer):
    """Slack's Web API at ``POST /api/<method>``, Socket Mode at ``/socket-mode`` and
    ``response_url`` endpoints at ``/response/<id>``, on 127.0.0.1:<ephemeral>.

    Methods without a dedicated handler answer ``{"ok": true}`` (and are recorded), so code
    calling something new fails on its assertions, not on a 404. `set_handler` overrides or
    adds a method when a test needs a particular answer.
    """

    def __init__(self, *, shutdown_timeout: float = 0.5) -> None:
        """Create a stopped server; `shutdown_timeout` bounds teardown with requests in flight."""
        super().__init__(shutdown_timeout=shutdown_timeout)
        self.calls: list[ApiCall] = []
        self.messages: list[PostedMessage] = []
        self.ephemeral_messages: list[PostedMessage] = []
        self.home_views: dict[str, dict[str, Any]] = {}
        """The last view published with ``views.publish``, by user id."""
        self.admins: set[str] = set()
        """User ids that ``users.info`` reports as workspace admins."""
        self.valid_tokens: set[str] | None = None
        """When set, any other well-formed token answers ``invalid_auth`` (a revoked token)."""
        self.validate_blocks: bool = True
        """Apply Slack's Block Kit limits (a subset) and answer ``invalid_blocks``."""
        self.latency: float = 0.0
        """Seconds slept before answering each Web API call, for client-timeout tests."""
        self.responses: list[dict[str, Any]] = []
        """JSON bodies posted to response URLs, in arrival order (see `response_posts`)."""
        self.response_posts: list[ResponsePost] = []
        self.socket_connections: list[SocketConnection] = []
        self.socket_sent: list[dict[str, Any]] = []
        """Every envelope or message this server sent over Socket Mode (hello excluded)."""
        self.socket_acks: list[SocketAck] = []
        self._handlers: dict[str, MethodHandler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "conversations.open": self._conversations_open,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "apps.connections.open": self._apps_connections_open,
        }
        self._faults: dict[str, deque[_Fault]] = {}
        self._ts_counter = itertools.count(1)
        self._view_counter = itertools.count(1)
        self._response_urls: dict[str, str] = {}
        self._tickets: set[str] = set()
        self._sockets: list[tuple[SocketConnection, web.WebSocketResponse]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response)
        app.router.add_get("/socket-mode", self._socket)
        app.on_shutdown.append(self._close_sockets_on_shutdown)
        return app

    @property
    def api_url(self) -> str:
        """The ``base_url`` to give ``AsyncWebClient`` (it must end with a slash)."""
        return self.base_url + "/api/"

    # -- scripting -------------------------------------------------------------------------

    def rate_limit(self, method: str, times: int | None = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` (``None``: all) with HTTP 429.

        Slack sends ``Retry-After`` in whole seconds and ``error: ratelimited``; slack_sdk's
        ``AsyncRateLimitErrorRetryHandler`` sleeps that long (plus up to 1 s jitter) and
        retries, while a client without the handler raises ``SlackApiError``.
        """
        self._add_fault(
            method,
            _Fault(
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(retry_after)},
                times,
            ),
        )

    def fail(
        self,
        method: str,
        error: str = "channel_not_found",
        times: int | None = 1,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with ``ok: false`` and `error`.

        `extra` adds fields Slack sends with some errors, e.g. ``{"needed": "chat:write"}``
        for ``missing_scope``. Faults queue behind earlier ones for the same method.
        """
        body = {"ok": False, "error": error, **(extra or {})}
        self._add_fault(method, _Fault(200, body, {}, times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_handler(self, method: str, handler: MethodHandler) -> None:
        """Answer `method` with `handler(call)` (after auth and scripted faults)."""
        self._handlers[method] = handler

    def clear_calls(self) -> None:
        """Forget recorded calls, e.g. between start-up chatter and the step under test."""
        self.calls.clear()

    def response_url(self, name: str = "response") -> str:
        """A fresh ``response_url``; posts to it are recorded under `name`."""
        rid = f"{name}-{uuid.uuid4().hex[:12]}"
        self._response_urls[rid] = name
        return self.url(f"/response/{rid}")

    # -- inspection ------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        """Calls of one API method, in arrival order (faulted ones included)."""
        return [c for c in self.calls if c.method == method]

    def messages_in(self, channel: str) -> list[PostedMessage]:
        return [m for m in self.messages if m.channel == channel]

    def responses_to(self, name: str) -> list[dict[str, Any]]:
        return [p.body for p in self.response_posts if p.name == name]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        """Poll until `count` calls of `method` arrived; return all of them so far.

        Raises `TimeoutError` naming what did arrive, which usually explains the failure.
        """
        return await poll(
            lambda: calls if len(calls := self.calls_to(method)) >= count else None,
            timeout,
            lambda: f"{count} call(s) to {method}; got {[c.method for c in self.calls]}",
        )

    async def wait_for_message(self, count: int = 1, timeout: float = 5.0) -> list[PostedMessage]:
        """Poll until `count` messages were posted (successfully); return them all."""
        return await poll(
            lambda: list(self.messages) if len(self.messages) >= count else None,
            timeout,
            lambda: f"{count} posted message(s); got {len(self.messages)}",
        )

    async def wait_for_response(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll until `count` posts to response URLs arrived; return their bodies."""
        return await poll(
            lambda: list(self.responses) if len(self.responses) >= count else None,
            timeout,
            lambda: f"{count} response_url post(s); got {len(self.responses)}",
        )

    # -- Socket Mode -----------------------------------------------------------------------

    async def wait_for_socket_client(
        self, timeout: float = 5.0, *, count: int = 1
    ) -> SocketConnection:
        """Poll until `count` connections were accepted in all and one is open; return the
        newest open one. ``count=n + 1`` waits out a reconnect after `n` connections."""
        return (await self._open_socket(timeout, count))[0]

    async def send_socket_event(
        self,
        payload_type: PayloadType,
        payload: Mapping[str, Any],
        *,
        envelope_id: str | None = None,
        accepts_response_payload: bool | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send one envelope to the newest connected client and return its envelope_id.

        Like Slack, each envelope goes to a single connection, never to all of them, so a
        reconnecting client does not see duplicates. `accepts_response_payload` defaults as
        Slack's does: true except for ``events_api``, whose envelopes also carry
        ``retry_attempt``/``retry_reason``. Waits up to `timeout` for a client to connect.
        """
        _, ws = await self._open_socket(timeout, 1)
        eid = envelope_id or str(uuid.uuid4())
        accepts = payload_type != "events_api"
        envelope: dict[str, Any] = {
            "envelope_id": eid,
            "type": payload_type,
            "payload": dict(payload),
            "accepts_response_payload": (
                accepts if accepts_response_payload is None else accepts_response_payload
            ),
        }
        if payload_type == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")
        await ws.send_json(envelope)
        self.socket_sent.append(envelope)
        return eid

    async def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        """Poll for the client's ack of `envelope_id`; return its payload (``None`` if bare).

        Slack gives a client 3 seconds to ack; tests usually assert on `SocketAck.at` for that.
        """
        ack = await poll(
            lambda: next((a for a in self.socket_acks if a.envelope_id == envelope_id), None),
            timeout,
            lambda: f"ack of {envelope_id}; got {[a.envelope_id for a in self.socket_acks]}",
        )
        return ack.payload

    async def send_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``{"type": "disconnect"}`` warning to every client; return how many.

        slack_sdk answers it by fetching a new URL and reconnecting before dropping the old one.
        """
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-applink"}}
        open_sockets = [ws for _, ws in self._sockets if not ws.closed]
        for ws in open_sockets:
            await ws.send_json(message)
            self.socket_sent.append(message)
        return len(open_sockets)

    async def disconnect_sockets(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every Socket Mode connection from the server side; return how many.

        Models Slack recycling its WebSocket hosts: slack_sdk sees the close frame and
        reconnects through ``apps.connections.open`` (watch `socket_connections` grow).
        """
        open_sockets = [ws for _, ws in self._sockets if not ws.closed]
        for ws in open_sockets:
            await ws.close(code=code, message=b"server disconnect")
        return len(open_sockets)

    async def _open_socket(
        self, timeout: float, count: int
    ) -> tuple[SocketConnection, web.WebSocketResponse]:
        def newest_open() -> tuple[SocketConnection, web.WebSocketResponse] | None:
            if len(self.socket_connections) < count:
                return None
            return next(((c, ws) for c, ws in reversed(self._sockets) if not ws.closed), None)

        return await poll(
            newest_open,
            timeout,
            lambda: f"Socket Mode client #{count}; {len(self.socket_connections)} connected so far",
        )

    # -- HTTP handlers ---------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        """Record the call, then answer: auth check, scripted fault, method handler."""
        method = request.match_info["method"]
        params, parse_error = await _read_params(request)
        call = ApiCall(
            method=method,
            params=params,
            headers=lower_headers(request),
            at=time.monotonic(),
            http_method=request.method,
        )
        self.calls.append(call)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        if parse_error is not None:
            return web.json_response({"ok": False, "error": parse_error})
        auth_error = self._auth_error(method, call.token)
        if auth_error is not None:
            return web.json_response({"ok": False, "error": auth_error})
        fault = self._take_fault(method)
        if fault is not None:
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        handler = self._handlers.get(method)
        body = handler(call) if handler is not None else {"ok": True}
        return web.json_response(body)

    async def _response(self, request: web.Request) -> web.StreamResponse:
        """Record a ``response_url`` post. Slack takes JSON (or a form ``payload`` field)."""
        name = self._response_urls.get(request.match_info["id"])
        if name is None:
            return web.Response(status=404, text="no_active_hooks", content_type="text/plain")
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                body = json.loads(str((await request.post()).get("payload", "")))
            else:
                body = json.loads(await request.text())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload", content_type="text/plain")
        post = ResponsePost(name, body, lower_headers(request), time.monotonic())
        self.response_posts.append(post)
        self.responses.append(body)
        return web.json_response({"ok": True})

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        """Accept a client holding a ticket from ``apps.connections.open``; greet with hello,
        then record acks until either side closes."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid_ticket", content_type="text/plain")
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        connection = SocketConnection(ticket, time.monotonic())
        self.socket_connections.append(connection)
        entry = (connection, ws)
        self._sockets.append(entry)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": sum(1 for _, s in self._sockets if not s.closed),
                    "debug_info": {
                        "host": "fake-applink-1",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._record_socket_message(msg.data)
        finally:
            self._sockets.remove(entry)
        return ws

    def _record_socket_message(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
            payload = message.get("payload")
            self.socket_acks.append(
                SocketAck(
                    message["envelope_id"],
                    payload if isinstance(payload, dict) else None,
                    time.monotonic(),
                )
            )

    async def _close_sockets_on_shutdown(self, app: web.Application) -> None:
        for _, ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- auth and faults -------------------------------------------------------------------

    def _auth_error(self, method: str, token: str | None) -> str | None:
        """Slack's answers: no token → not_authed, unknown → invalid_auth, and app-level
        (xapp) tokens only for ``apps.connections.open``, which takes nothing else."""
        if not token:
            return "not_authed"
        is_app_token = token.startswith(_APP_TOKEN_PREFIX)
        if not (is_app_token or token.startswith(_WORKSPACE_TOKEN_PREFIXES)):
            return "invalid_auth"
        if self.valid_tokens is not None and token not in self.valid_tokens:
            return "invalid_auth"
        if method == "apps.connections.open":
            return None if is_app_token else "not_allowed_token_type"
        if is_app_token and method != "auth.test":
            return "not_allowed_token_type"
        return None

    def _add_fault(self, method: str, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        self._faults.setdefault(method, deque()).append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                queue.popleft()
        return fault

    # -- method handlers -------------------------------------------------------------------

    def _next_ts(self) -> str:
        """Unique, increasing, Slack-shaped ("1700000000.000100"); sorts as text too."""
        micros = next(self._ts_counter) * 100
        return f"{_FIRST_TS + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _auth_test(self, call: ApiCall) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "AINews Test",
            "user": "ainews",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message_content(
        self, call: ApiCall, block_limit: int = _MESSAGE_BLOCK_LIMIT
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Decode text/blocks/attachments; the second item is an error body, if any."""
        content: dict[str, Any] = {"text": call.params.get("text")}
        for name in ("blocks", "attachments"):
            try:
                value = call.decoded(name)
            except ValueError:
                return content, {"ok": False, "error": f"invalid_{name}_format"}
            if value is not None and not _is_list_of_dicts(value):
                return content, {"ok": False, "error": f"invalid_{name}_format"}
            content[name] = value
        if self.validate_blocks and content["blocks"] is not None:
            errors = block_errors(content["blocks"], limit=block_limit)
            if errors:
                return content, _invalid_blocks(errors)
        return content, None

    def _chat_post_message(self, call: ApiCall) -> dict[str, Any]:
        """Checks Slack's own preconditions (channel, some content, Block Kit limits)."""
        channel = call.params.get("channel")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        content, error = self._message_content(call)
        if error is not None:
            return error
        if not (content["text"] or content["blocks"] or content["attachments"]):
            return {"ok": False, "error": "no_text"}
        thread_ts = call.params.get("thread_ts") or None
        message = PostedMessage(
            channel=str(channel),
            ts=self._next_ts(),
            text=content["text"],
            blocks=content["blocks"],
            thread_ts=thread_ts,
            attachments=content["attachments"],
        )
        self.messages.append(message)
        return {
            "ok": True,
            "channel": message.channel,
            "ts": message.ts,
            "message": _as_json(message),
        }

    def _chat_post_ephemeral(self, call: ApiCall) -> dict[str, Any]:
        channel, user = call.params.get("channel"), call.params.get("user")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not user:
            return {"ok": False, "error": "user_not_found"}
        content, error = self._message_content(call)
        if error is not None:
            return error
        if not (content["text"] or content["blocks"] or content["attachments"]):
            return {"ok": False, "error": "no_text"}
        message = PostedMessage(
            channel=str(channel),
            ts=self._next_ts(),
            text=content["text"],
            blocks=content["blocks"],
            thread_ts=call.params.get("thread_ts") or None,
            attachments=content["attachments"],
            user=str(user),
        )
        self.ephemeral_messages.append(message)
        return {"ok": True, "message_ts": message.ts}

    def _chat_update(self, call: ApiCall) -> dict[str, Any]:
        """Edits a message from `messages` in place; unknown channel/ts → message_not_found."""
        channel, ts = call.params.get("channel"), call.params.get("ts")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        index = next(
            (i for i, m in enumerate(self.messages) if m.channel == channel and m.ts == ts),
            None,
        )
        if index is None:
            return {"ok": False, "error": "message_not_found"}
        content, error = self._message_content(call)
        if error is not None:
            return error
        old = self.messages[index]
        updated = replace(
            old,
            text=content["text"] if "text" in call.params else old.text,
            blocks=content["blocks"] if "blocks" in call.params else old.blocks,
            attachments=(
                content["attachments"] if "attachments" in call.params else old.attachments
            ),
            edited=True,
        )
        self.messages[index] = updated
        return {
            "ok": True,
            "channel": updated.channel,
            "ts": updated.ts,
            "text": updated.text or "",
            "message": _as_json(updated),
        }

    def _conversations_open(self, call: ApiCall) -> dict[str, Any]:
        """One user → their DM ``D<user>``; several → a group DM ``G<users…>``."""
        if call.params.get("channel"):
            return {"ok": True, "no_op": True, "channel": {"id": str(call.params["channel"])}}
        users = [u.strip() for u in str(call.params.get("users") or "").split(",") if u.strip()]
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        channel_id = "D" + users[0] if len(users) == 1 else "G" + "".join(sorted(users))
        return {"ok": True, "channel": {"id": channel_id}}

    def _views_publish(self, call: ApiCall) -> dict[str, Any]:
        user_id = call.params.get("user_id")
        if not user_id:
            return {"ok": False, "error": "invalid_arguments"}
        try:
            view = call.decoded("view")
        except ValueError:
            view = None
        if not isinstance(view, dict) or view.get("type") != "home":
            return {"ok": False, "error": "invalid_arguments"}
        blocks = view.get("blocks")
        if not _is_list_of_dicts(blocks):
            return {"ok": False, "error": "invalid_arguments"}
        if self.validate_blocks:
            errors = block_errors(blocks, limit=_VIEW_BLOCK_LIMIT, pointer="/view/blocks")
            if errors:
                return _invalid_blocks(errors)
        view_id = f"V{next(self._view_counter):010d}"
        published = {
            "id": view_id,
            "team_id": TEAM_ID,
            "type": "home",
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": hashlib.sha1(view_id.encode()).hexdigest()[:16],
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self.home_views[str(user_id)] = published
        return {"ok": True, "view": published}

    def _users_info(self, call: ApiCall) -> dict[str, Any]:
        user_id = call.params.get("user")
        if not user_id:
            return {"ok": False, "error": "user_not_found"}
        uid = str(user_id)
        is_admin = uid in self.admins
        return {
            "ok": True,
            "user": {
                "id": uid,
                "team_id": TEAM_ID,
                "name": uid.lower(),
                "real_name": f"User {uid}",
                "deleted": False,
                "is_admin": is_admin,
                "is_owner": False,
                "is_bot": uid == BOT_USER_ID,
                "tz": "Asia/Tokyo",
                "tz_offset": 32400,
                "profile": {"display_name": uid.lower(), "real_name": f"User {uid}"},
            },
        }

    def _apps_connections_open(self, call: ApiCall) -> dict[str, Any]:
        """A one-connection URL like Slack's ``wss://…/link/?ticket=…&app_id=…``."""
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        ws_base = "ws://" + self.base_url.removeprefix("http://")
        query = urlencode({"ticket": ticket, "app_id": APP_ID})
        return {"ok": True, "url": f"{ws_base}/socket-mode?{query}"}


# -- Block Kit limits ----------------------------------------------------------------------


def block_errors(
    blocks: Sequence[Mapping[str, Any]],
    *,
    limit: int = _MESSAGE_BLOCK_LIMIT,
    pointer: str = "/blocks",
) -> list[str]:
    """Violations of a subset of Block Kit's limits, worded like Slack's ``errors`` list.

    Covers what a news digest can plausibly hit: block count, section/field/header text
    lengths, empty text, context/actions element counts and duplicate or long block_ids.
    """
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(
            f"must provide an array of no more than {limit} items [json-pointer:{pointer}]"
        )
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{pointer}/{i}"
        kind = block.get("type")
        if not isinstance(kind, str):
            errors.append(f"missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if len(block_id) > 255:
                errors.append(f"must be less than 256 characters [json-pointer:{at}/block_id]")
            if block_id in seen_ids:
                errors.append(f"duplicate block_id [json-pointer:{at}/block_id]")
            seen_ids.add(block_id)
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                errors.append(f"must provide either text or fields [json-pointer:{at}]")
            if text is not None:
                errors += _text_errors(text, 3000, f"{at}/text")
            if isinstance(fields, list):
                if len(fields) > 10:
                    errors.append(f"must provide no more than 10 items [json-pointer:{at}/fields]")
                for j, item in enumerate(fields):
                    errors += _text_errors(item, 2000, f"{at}/fields/{j}")
        elif kind == "header":
            text = block.get("text")
            if not isinstance(text, Mapping) or text.get("type") != "plain_text":
                errors.append(f"must be a plain_text object [json-pointer:{at}/text]")
            else:
                errors += _text_errors(text, 150, f"{at}/text")
        elif kind in ("context", "actions"):
            elements = block.get("elements")
            most = 10 if kind == "context" else 25
            if not isinstance(elements, list) or not elements:
                errors.append(f"must provide at least 1 item [json-pointer:{at}/elements]")
            elif len(elements) > most:
                errors.append(
                    f"must provide no more than {most} items [json-pointer:{at}/elements]"
                )
    return errors


def _text_errors(obj: Any, most: int, at: str) -> list[str]:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
        return [f"must be a text object [json-pointer:{at}]"]
    length = len(obj["text"])
    if length == 0:
        return [f"must be more than 0 characters [json-pointer:{at}/text]"]
    if length > most:
        return [f"must be less than {most + 1} characters [json-pointer:{at}/text]"]
    return []


def _invalid_blocks(errors: list[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_blocks",
        "errors": errors,
        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
    }


# -- request signing and payload builders --------------------------------------------------


def sign_request(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack adds to HTTP-mode requests: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``.

    `timestamp` defaults to now; pass an old one to exercise replay protection (Bolt rejects
    requests more than five minutes old).
    """
    ts = int(time.time()) if timestamp is None else timestamp
    base = b"v0:" + str(ts).encode() + b":" + body
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def slash_command_payload(
    text: str,
    *,
    command: str = "/ainews",
    user_id: str = "U123",
    user_name: str = "tester",
    channel_id: str = "C123",
    channel_name: str = "general",
    response_url: str = "http://127.0.0.1:9/response/unset",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    team_id: str = TEAM_ID,
) -> dict[str, str]:
    """The fields of a slash command, all strings, as Slack sends them in HTTP and Socket Mode.

    The default `response_url` points at a closed local port: pass `SlackServer.response_url`
    when the code under test replies through it.
    """
    return {
        "token": "fakeVerificationToken0001",
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def slash_command_body(text: str, **fields: str) -> bytes:
    """`slash_command_payload` form-encoded, the body of an HTTP-mode slash command."""
    return urlencode(slash_command_payload(text, **fields)).encode()


def block_actions_body(
    action_id: str,
    *,
    value: str | None = None,
    user_id: str = "U123",
    channel_id: str | None = "C123",
    response_url: str = "http://127.0.0.1:9/response/unset",
    view_type: str | None = None,
) -> bytes:
    """A button click as Slack posts it in HTTP mode: form-encoded `payload=<json>` of type
    ``block_actions``. `view_type="home"` makes it a click in the App Home tab (no channel, no
    response_url), as Slack sends those."""
    action = {
        "type": "button",
        "action_id": action_id,
        "block_id": uuid.uuid4().hex[:5],
        "text": {"type": "plain_text", "text": "button", "emoji": True},
        "value": value if value is not None else action_id,
        "action_ts": f"{time.time():.6f}",
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "tester", "name": "tester", "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": "fakeVerificationToken0001",
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
        "is_enterprise_install": False,
        "actions": [action],
    }
    if view_type is not None:
        payload["container"] = {"type": "view", "view_id": "V0HOME"}
        payload["view"] = {"id": "V0HOME", "type": view_type, "blocks": []}
    else:
        payload["channel"] = {"id": channel_id, "name": "general"}
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}).encode()


def events_api_payload(
    event: Mapping[str, Any], *, event_id: str | None = None, team_id: str = TEAM_ID
) -> dict[str, Any]:
    """Wrap `event` in the ``event_callback`` envelope an ``events_api`` payload carries."""
    return {
        "token": "fakeVerificationToken0001",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


# -- helpers -------------------------------------------------------------------------------


def decode_json_param(value: Any) -> Any:
    """Parse JSON text (str or bytes); anything else is returned unchanged.

    Raises `ValueError` (``json.JSONDecodeError``) for malformed text, so a caller that sent
    broken ``blocks`` is noticed rather than silently stored as a string.
    """
    if isinstance(value, bytes | str):
        return json.loads(value)
    return value


async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Merge query, then form or JSON body; the second item is Slack's error for bad JSON."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params, None
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return params, "invalid_json"
        if not isinstance(body, dict):
            return params, "invalid_json"
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            params[key] = value.file.read() if isinstance(value, web.FileField) else value
    return params, None


def _is_list_of_dicts(value: Any) -> TypeGuard[list[dict[str, Any]]]:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _as_json(message: PostedMessage) -> dict[str, Any]:
    """The ``message`` object Slack echoes back; keys absent in Slack's reply are omitted."""
    body: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "team": TEAM_ID,
        "text": message.text or "",
        "ts": message.ts,
    }
    if message.blocks is not None:
        body["blocks"] = message.blocks
    if message.attachments is not None:
        body["attachments"] = message.attachments
    if message.thread_ts is not None:
        body["thread_ts"] = message.thread_ts
    if message.edited:
        body["edited"] = {"user": BOT_USER_ID, "ts": message.ts}
    return body
