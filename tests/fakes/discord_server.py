"""A real-HTTP/WebSocket stand-in for Discord: the REST API v10 and the gateway.

The bot reaches Discord only through the real discord.py client, whose request encoding,
rate-limit buckets, gateway handshake and interaction webhooks are behaviour we depend on.
Mocking discord.py would test our beliefs about it, so tests point the real client at this
server over real sockets on 127.0.0.1 instead.

The seams (discord.py 2.7.1; both are class attributes, set them before ``login``):

* REST: ``discord.http.Route.BASE = server.api_url`` (``http://127.0.0.1:<port>/api/v10``).
  Every REST call, including the interaction callbacks and followups that go through
  ``discord.webhook.async_.AsyncWebhookAdapter``, builds its URL from ``Route.BASE`` at call
  time.
* Gateway: ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)``.
  It must be a ``yarl.URL`` (discord.py calls ``.with_query`` on it). A plain ``discord.Client``
  never asks REST for the gateway: ``Client.connect`` goes straight to ``DEFAULT_GATEWAY``, and
  later reconnects use READY's ``resume_gateway_url`` (this server's ``/gateway/resume``) or,
  after a non-resumable INVALID_SESSION, ``DEFAULT_GATEWAY`` again. Only
  ``AutoShardedClient`` (with ``shard_count=None``) reads ``GET /gateway/bot``, whose ``url``
  this server also sets to `gateway_url`; ``GET /gateway`` answers the same but discord.py
  2.7.1 has no caller for it. So: set ``DEFAULT_GATEWAY`` always; ``/gateway/bot`` alone is
  not enough for a plain ``Client``. Both seams are verified in ``tests/test_fake_discord.py``.

What is recorded: every REST call (`calls`, with the status it was answered), channel messages
(`messages`), interaction callbacks/followups/edits (`interaction_responses`, with the messages
they create in `interaction_messages`), command syncs (`command_syncs`), limit violations
(`violations`) and gateway sessions (`gateway_sessions`). The ``wait_for*`` helpers poll for
them against a deadline, so tests never guess with fixed sleeps.

Faults (`rate_limit`, `fail`, `close_dms`) are keyed by route: either discord.py's own
``Route.key`` template, e.g. ``"POST /channels/{channel_id}/messages"`` (which matches every
channel), or a concrete ``"POST /channels/123/messages"`` (that channel only). Faults for one key
are consumed in the order configured.

Replies imitate Discord where client code depends on the detail: snowflake ids, 429 bodies
with ``retry_after`` *and* a ``Via`` header (discord.py treats a 429 without ``Via`` as a
Cloudflare ban and raises instead of retrying), Discord-style ``50035 Invalid Form Body``
errors for message limits, one callback per interaction within ``interaction_timeout`` (3 s
on Discord), and the first followup after a deferral replacing the "thinking" message.
Behaviour worth knowing when writing tests against it:

* discord.py retries a 500/502/504 itself after sleeping ``1 + 2 * attempt`` seconds (up to 5
  attempts); a ``fail(..., status=500)`` therefore costs real seconds. 403/404/400 raise at once.
* A plain ``Client`` dispatches ``on_ready`` only ``guild_ready_timeout`` (default 2 s) after
  the last GUILD_CREATE; pass ``guild_ready_timeout=0.05`` in tests, or wait for
  `wait_for_ready` plus the guild in the client's cache.
* Re-identifying after INVALID_SESSION makes discord.py sleep 5 s (``before_identify_hook``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import math
import re
import time
import uuid
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, Final, Literal, NamedTuple, TypeVar

from aiohttp import WSCloseCode, WSMsgType, web

from bot.demo.local_server import LocalServer
from tests.fakes.waiting import lower_headers, poll

__all__ = [
    "ADMINISTRATOR",
    "APP_FLAGS",
    "APP_ID",
    "BOT_PERMISSIONS",
    "BOT_TOKEN",
    "BOT_USER_ID",
    "EPHEMERAL",
    "FORUM_CHANNEL_ID",
    "GUILD_ID",
    "IS_COMPONENTS_V2",
    "LOADING",
    "MANAGE_GUILD",
    "OWNER_ID",
    "PERMISSIONS_MANAGER",
    "PERMISSIONS_MEMBER",
    "TEXT_CHANNEL_ID",
    "USER_ID",
    "ApiCall",
    "CallbackType",
    "CommandSync",
    "DiscordServer",
    "FakeChannel",
    "FakeGuild",
    "FieldError",
    "GatewaySession",
    "InteractionResponse",
    "PostedMessage",
    "UploadedFile",
    "autocomplete_interaction",
    "command_errors",
    "command_interaction",
    "component_interaction",
    "dm_channel_id",
    "message_errors",
    "snowflake",
    "user_json",
]

# -- identities ----------------------------------------------------------------------------

APP_ID: Final = 1100000000000000001
BOT_USER_ID: Final = 1100000000000000002
"""Distinct from `APP_ID` on purpose (as for older applications; newer ones share the id), so
code that passes the bot's user id where the application id belongs fails here."""
BOT_TOKEN: Final = "fake-discord-bot-token"
"""Any non-empty token is accepted unless `DiscordServer.valid_tokens` is set."""
OWNER_ID: Final = 1000000000000000001
"""Owns the application and the default guild."""
USER_ID: Final = 1000000000000000002
"""An ordinary member of the default guild; the builders' default interaction user."""
GUILD_ID: Final = 1200000000000000001
TEXT_CHANNEL_ID: Final = 1200000000000000002
FORUM_CHANNEL_ID: Final = 1200000000000000003

APP_FLAGS: Final = 1 << 23
"""APPLICATION_COMMAND_BADGE; no GATEWAY_*_LIMITED flags: no privileged intents granted."""

# -- permission bits (strings on the wire) -------------------------------------------------

ADMINISTRATOR: Final = 1 << 3
MANAGE_GUILD: Final = 1 << 5
PERMISSIONS_MEMBER: Final = (
    (1 << 6)  # ADD_REACTIONS
    | (1 << 10)  # VIEW_CHANNEL
    | (1 << 11)  # SEND_MESSAGES
    | (1 << 14)  # EMBED_LINKS
    | (1 << 15)  # ATTACH_FILES
    | (1 << 16)  # READ_MESSAGE_HISTORY
    | (1 << 31)  # USE_APPLICATION_COMMANDS
    | (1 << 35)  # CREATE_PUBLIC_THREADS
    | (1 << 38)  # SEND_MESSAGES_IN_THREADS
)
"""What ``@everyone`` typically holds in a guild text channel."""
PERMISSIONS_MANAGER: Final = PERMISSIONS_MEMBER | MANAGE_GUILD
BOT_PERMISSIONS: Final = PERMISSIONS_MEMBER | (1 << 34)  # + MANAGE_THREADS
"""The bot's ``app_permissions`` in interactions."""

# -- message flags -------------------------------------------------------------------------

EPHEMERAL: Final = 1 << 6
LOADING: Final = 1 << 7
IS_COMPONENTS_V2: Final = 1 << 15

_PRIVILEGED_INTENTS: Final = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, content
_INTENT_GUILDS: Final = 1 << 0
_DISCORD_EPOCH_MS: Final = 1_420_070_400_000
_DM_CHANNEL_BASE: Final = 1300000000000000000
_API_PREFIX: Final = "/api/v10"
_CHANNEL_TEXT, _CHANNEL_DM, _CHANNEL_NEWS = 0, 1, 5
_CHANNEL_PUBLIC_THREAD, _CHANNEL_PRIVATE_THREAD = 11, 12
_CHANNEL_FORUM, _CHANNEL_MEDIA = 15, 16
_THREAD_TYPES: Final = frozenset({10, _CHANNEL_PUBLIC_THREAD, _CHANNEL_PRIVATE_THREAD})
_MESSAGEABLE_TYPES: Final = frozenset({_CHANNEL_TEXT, _CHANNEL_DM, 2, 3, _CHANNEL_NEWS, 13})
_MESSAGEABLE_TYPES_ALL: Final = _MESSAGEABLE_TYPES | _THREAD_TYPES
_SELECT_TYPES: Final = frozenset({3, 5, 6, 7, 8})

_ERROR_MESSAGES: Final[dict[int, str]] = {
    0: "500: Internal Server Error",
    10003: "Unknown Channel",
    10004: "Unknown Guild",
    10008: "Unknown Message",
    10015: "Unknown Webhook",
    10062: "Unknown interaction",
    20012: "You are not authorized to perform this action on this application",
    40060: "Interaction has already been acknowledged.",
    50001: "Missing Access",
    50006: "Cannot send an empty message",
    50007: "Cannot send messages to this user",
    50008: "Cannot send messages in a non-text channel",
    50013: "Missing Permissions",
    50035: "Invalid Form Body",
    50109: "The request body contains invalid JSON.",
    160004: "A thread has already been created for this message",
}

_T = TypeVar("_T")


class CallbackType(IntEnum):
    """Interaction callback types (``POST /interactions/{id}/{token}/callback`` ``type``)."""

    PONG = 1
    MESSAGE = 4
    DEFERRED_MESSAGE = 5
    DEFERRED_UPDATE = 6
    UPDATE_MESSAGE = 7
    AUTOCOMPLETE_RESULT = 8
    MODAL = 9


_ALLOWED_CALLBACKS: Final[dict[int, frozenset[int]]] = {
    1: frozenset({1}),  # PING
    2: frozenset({4, 5, 9}),  # APPLICATION_COMMAND
    3: frozenset({4, 5, 6, 7, 9}),  # MESSAGE_COMPONENT
    4: frozenset({8}),  # APPLICATION_COMMAND_AUTOCOMPLETE
    5: frozenset({4, 5, 6, 7}),  # MODAL_SUBMIT
}


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart request (discord.py names them ``files[i]``)."""

    name: str
    """The form field, ``files[0]``…"""
    filename: str
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(slots=True, eq=False)
class ApiCall:
    """One REST call as the server saw it, recorded on arrival and completed with `status`.

    `path` is below ``/api/v10``. `route` is discord.py's ``Route.key`` template for it
    (``"POST /channels/{channel_id}/messages"``), ``None`` for a path this server does not know
    (answered 404, so an unsupported call shows up here rather than vanishing). `json` is the
    JSON body, or the ``payload_json`` part of a multipart body, whose files are in `files`.
    """

    method: str
    path: str
    route: str | None
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    headers: dict[str, str] = field(repr=False)
    at: float
    """`time.monotonic()` at arrival; lets tests measure retry back-off."""
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None
    """The HTTP status answered; ``None`` while the call is in flight."""

    @property
    def key(self) -> str:
        """The concrete ``"METHOD /path"``, e.g. ``"POST /channels/12/messages"``."""
        return f"{self.method} {self.path}"

    def matches(self, pattern: str) -> bool:
        """True for this call's route template, its concrete key, or a glob of the latter."""
        if pattern in (self.route, self.key):
            return True
        return "*" in pattern and fnmatch.fnmatchcase(self.key, pattern)


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A message this server created: in `DiscordServer.messages` for channel posts (REST and
    forum starter posts), in `DiscordServer.interaction_messages` for interaction replies."""

    id: int
    channel_id: int
    content: str | None
    embeds: list[dict[str, Any]] = field(default_factory=list, hash=False)
    components: list[dict[str, Any]] = field(default_factory=list, hash=False)
    allowed_mentions: dict[str, Any] | None = field(default=None, hash=False)
    message_reference: dict[str, Any] | None = field(default=None, hash=False)
    flags: int = 0
    guild_id: int | None = None
    parent_id: int | None = None
    """The channel above `channel_id` when that is a thread (a text or forum channel)."""
    thread_id: int | None = None
    """The thread started from this message (its id equals the message id, as on Discord)."""
    attachments: list[UploadedFile] = field(default_factory=list, hash=False)
    tts: bool = False
    type: int = 0
    interaction_token: str | None = None
    edited: bool = False
    deleted: bool = False
    at: float = 0.0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred interaction's "thinking…" placeholder, not yet filled in."""
        return bool(self.flags & LOADING)

    @property
    def created_at(self) -> dt.datetime:
        return snowflake_time(self.id)

    def as_json(self, *, attachment_base: str = "http://127.0.0.1/attachments") -> dict[str, Any]:
        """The message object Discord returns (and discord.py's ``Message`` parses)."""
        body: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "type": self.type,
            "content": self.content or "",
            "embeds": [{"type": "rich", **e} for e in self.embeds],
            "components": self.components,
            "attachments": [
                {
                    "id": str(self.id + i + 1),
                    "filename": f.filename,
                    "size": len(f.data),
                    "url": f"{attachment_base}/{self.channel_id}/{self.id}/{f.filename}",
                    "proxy_url": f"{attachment_base}/{self.channel_id}/{self.id}/{f.filename}",
                    "content_type": f.content_type,
                }
                for i, f in enumerate(self.attachments)
            ],
            "author": user_json(BOT_USER_ID),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": self.tts,
            "flags": self.flags,
            "timestamp": self.created_at.isoformat(),
            "edited_timestamp": _iso_now() if self.edited else None,
        }
        if self.guild_id is not None:
            body["guild_id"] = str(self.guild_id)
        if self.message_reference is not None:
            body["message_reference"] = {"type": 0, **self.message_reference}
        if self.interaction_token is not None:
            body["webhook_id"] = str(APP_ID)
            body["application_id"] = str(APP_ID)
        if self.parent_id is not None:
            body["position"] = 0
        return body


@dataclass(frozen=True, slots=True)
class InteractionResponse:
    """Something the bot did with an interaction token, in arrival order.

    `kind` is ``"callback"`` (with its `type`, a `CallbackType` value), ``"followup"``,
    ``"edit"`` or ``"delete"`` (`target` ``"@original"`` or a message id). `payload` is the
    message part: a callback's ``data`` (``{}`` for a bare defer), a followup's or edit's body.
    `ephemeral` is ``flags & 64`` of that payload, except for a followup with
    `replaces_deferred`: Discord shows the first followup after a type-5 defer *in place of*
    the "thinking" message, with the defer's visibility, whatever flags the followup carries.
    """

    token: str
    kind: Literal["callback", "followup", "edit", "delete"]
    payload: dict[str, Any] = field(hash=False)
    type: int | None = None
    message_id: int | None = None
    target: str | None = None
    ephemeral: bool = False
    replaces_deferred: bool = False
    files: list[UploadedFile] = field(default_factory=list, hash=False)
    at: float = 0.0

    @property
    def content(self) -> str | None:
        content = self.payload.get("content")
        return content if isinstance(content, str) else None

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.payload.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.payload.get("components") or [])


@dataclass(frozen=True, slots=True)
class CommandSync:
    """One bulk overwrite of application commands; `guild_id` ``None`` means global."""

    guild_id: int | None
    payload: list[dict[str, Any]] = field(hash=False)
    at: float


@dataclass(slots=True, eq=False)
class GatewaySession:
    """One gateway WebSocket connection. A RESUME opens a new one with the same
    `session_id`, ``resumed=True`` and the resumed session's `identify` (so its intents)."""

    path: str
    query: dict[str, str]
    opened_at: float
    session_id: str | None = None
    identify: dict[str, Any] | None = field(default=None, repr=False)
    resumed: bool = False
    ready: bool = False
    """READY (or RESUMED) and the guilds' GUILD_CREATEs have been sent."""
    seq: int = 0
    heartbeats: int = 0
    received: list[dict[str, Any]] = field(default_factory=list, repr=False)
    sent: list[dict[str, Any]] = field(default_factory=list, repr=False)
    closed: bool = False
    close_code: int | None = None
    """The code this server closed with, else the one the client sent."""

    @property
    def intents(self) -> int | None:
        value = (self.identify or {}).get("intents")
        return value if isinstance(value, int) else None

    @property
    def compressed(self) -> bool:
        return self.query.get("compress") == "zlib-stream"


@dataclass(slots=True, eq=False)
class FakeGuild:
    """A guild sent in GUILD_CREATE; its channels are the `FakeChannel`s with its id."""

    id: int
    name: str = "AINews Test"
    owner_id: int = OWNER_ID
    locale: str = "ja"
    everyone_permissions: int = PERMISSIONS_MEMBER


@dataclass(slots=True, eq=False)
class FakeChannel:
    """A channel or thread. `parent_id` is the category of a guild channel, or the text/forum
    channel of a thread; `recipient_id` is the other user of a DM."""

    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    parent_id: int | None = None
    recipient_id: int | None = None
    position: int = 0
    topic: str | None = None
    owner_id: int | None = None
    last_message_id: int | None = None
    message_count: int = 0
    auto_archive_duration: int = 1440
    applied_tags: list[int] = field(default_factory=list)
    available_tags: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The channel object for REST answers and GUILD_CREATE, shaped by type."""
        if self.type == _CHANNEL_DM:
            return {
                "id": str(self.id),
                "type": self.type,
                "last_message_id": _str_or_none(self.last_message_id),
                "flags": 0,
                "recipients": [user_json(self.recipient_id or 0)],
            }
        body: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": _str_or_none(self.guild_id),
            "name": self.name or f"channel-{self.id}",
            "parent_id": _str_or_none(self.parent_id),
            "last_message_id": _str_or_none(self.last_message_id),
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.type in _THREAD_TYPES:
            created = snowflake_time(self.id).isoformat()
            body.update(
                owner_id=str(self.owner_id or BOT_USER_ID),
                message_count=self.message_count,
                total_message_sent=self.message_count,
                member_count=1,
                applied_tags=[str(t) for t in self.applied_tags],
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": self.auto_archive_duration,
                    "archive_timestamp": created,
                    "locked": False,
                    "create_timestamp": created,
                },
            )
            return body
        body.update(
            position=self.position,
            permission_overwrites=[],
            nsfw=False,
            topic=self.topic,
            default_auto_archive_duration=self.auto_archive_duration,
        )
        if self.type in (_CHANNEL_FORUM, _CHANNEL_MEDIA):
            body.update(
                available_tags=self.available_tags,
                default_reaction_emoji=None,
                default_sort_order=None,
                default_forum_layout=0,
                default_thread_rate_limit_per_user=0,
            )
        return body


class FieldError(NamedTuple):
    """One entry of a ``50035 Invalid Form Body`` answer: dotted `path`, Discord's `code`."""

    path: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(slots=True)
class _Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int | None
    """Uses left; ``None`` means every call until `DiscordServer.clear_faults`."""


@dataclass(slots=True, eq=False)
class _Interaction:
    payload: dict[str, Any]
    sent_at: float
    ack_type: int | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def type(self) -> int:
        return int(self.payload["type"])


@dataclass(slots=True, eq=False)
class _Connection:
    session: GatewaySession
    ws: web.WebSocketResponse
    compressor: Any | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Route(NamedTuple):
    method: str
    template: str
    parts: tuple[str, ...]
    handler: Callable[[ApiCall], Awaitable[web.Response]]
    bot_auth: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


# -- the server ----------------------------------------------------------------------------


class DiscordServer(LocalServer):
    """Discord's REST API under ``/api/v10`` and its gateway at ``/gateway``, on
    127.0.0.1:<ephemeral>. See the module docstring for the seams that point discord.py here.

    By default there is one guild (`GUILD_ID`, owned by `OWNER_ID`) with a text channel
    (`TEXT_CHANNEL_ID`, "ainews") and a forum channel (`FORUM_CHANNEL_ID`, "ainews-forum");
    ``default_guild=False`` starts empty, and `add_guild` / `add_channel` add more.
    """

    def __init__(
        self,
        *,
        heartbeat_interval: int = 41250,
        zlib_stream: bool = False,
        interaction_timeout: float | None = 3.0,
        default_guild: bool = True,
        privileged_intents: int = 0,
        shutdown_timeout: float = 0.5,
    ) -> None:
        """Create a stopped server.

        `heartbeat_interval` (ms) goes into HELLO. `zlib_stream` sends gateway frames as one
        zlib stream when the client asks ``compress=zlib-stream`` (as Discord does); off,
        frames are JSON text, which discord.py also accepts. `interaction_timeout` is how long
        after INTERACTION_CREATE a callback is accepted (Discord: 3 s; ``None``: forever).
        `privileged_intents` are the privileged intent bits the application may request;
        IDENTIFY asking for others is closed with 4014, as Discord does.
        """
        super().__init__(shutdown_timeout=shutdown_timeout)
        self.heartbeat_interval = heartbeat_interval
        self.zlib_stream = zlib_stream
        self.interaction_timeout = interaction_timeout
        self.privileged_intents = privileged_intents
        self.valid_tokens: set[str] | None = None
        """When set, other bot tokens answer 401 (REST) or close 4004 (gateway)."""
        self.latency: float = 0.0
        """Seconds slept before answering each REST call, for client-timeout tests."""
        self.ready_delay: float = 0.0
        """Seconds between IDENTIFY and READY: a slow gateway."""
        self.gateway_accepting: bool = True
        """False answers gateway upgrades with 503: a gateway outage (see `disconnect_all`)."""
        self.ack_heartbeats: bool = True
        """False stops HEARTBEAT_ACKs: a zombied connection that discord.py must notice."""
        self.recommended_shards: int = 1

        self.calls: list[ApiCall] = []
        self.messages: list[PostedMessage] = []
        self.interaction_messages: list[PostedMessage] = []
        self.interaction_responses: list[InteractionResponse] = []
        self.interactions: list[dict[str, Any]] = []
        """Every INTERACTION_CREATE payload sent, in order."""
        self.command_syncs: list[CommandSync] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        """The current commands as returned by Discord, by guild id (``None``: global)."""
        self.violations: list[str] = []
        """Discord limits a request broke (each also answered 400), as readable lines."""
        self.gateway_sessions: list[GatewaySession] = []
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.closed_dm_users: set[int] = set()
        self.users: dict[int, str] = {OWNER_ID: "owner", USER_ID: "member"}
        """Usernames for `user_json`; other ids get ``user<last 4 digits>``."""

        self._faults: dict[str, deque[_Fault]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._connections: list[_Connection] = []
        self._sessions_by_id: dict[str, GatewaySession] = {}
        self._routes: list[_Route] = []
        self._register_routes()
        if default_guild:
            self.add_guild(GUILD_ID)
            self.add_channel(TEXT_CHANNEL_ID, _CHANNEL_TEXT, name="ainews", guild_id=GUILD_ID)
            self.add_channel(
                FORUM_CHANNEL_ID,
                _CHANNEL_FORUM,
                name="ainews-forum",
                guild_id=GUILD_ID,
                position=1,
            )

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", _API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/resume", self._gateway)
        app.on_shutdown.append(self._close_sockets_on_shutdown)
        return app

    @property
    def api_url(self) -> str:
        """The value for ``discord.http.Route.BASE`` (no trailing slash)."""
        return self.base_url + _API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The value for ``DiscordWebSocket.DEFAULT_GATEWAY`` (wrap it in ``yarl.URL``)."""
        return "ws://" + self.base_url.removeprefix("http://") + "/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """READY's ``resume_gateway_url``: a different path, so tests see which one was used."""
        return self.gateway_url + "/resume"

    # -- world setup -----------------------------------------------------------------------

    def add_guild(
        self, guild_id: int, *, name: str = "AINews Test", owner_id: int = OWNER_ID
    ) -> FakeGuild:
        """Add a guild; sessions identifying from now on receive its GUILD_CREATE."""
        guild = FakeGuild(guild_id, name=name, owner_id=owner_id)
        self.guilds[guild_id] = guild
        return guild

    def add_channel(
        self,
        channel_id: int | None,
        type: int,
        *,
        name: str | None = None,
        guild_id: int | None = None,
        parent_id: int | None = None,
        recipient_id: int | None = None,
        position: int = 0,
        available_tags: Sequence[Mapping[str, Any]] = (),
    ) -> FakeChannel:
        """Add a channel (type 0 text, 1 DM, 4 category, 5 news, 11 thread, 15 forum…).

        `channel_id` ``None`` assigns a fresh snowflake. Guild channels added after a session
        identified reach it only through a `dispatch` of CHANNEL_CREATE by the test.
        """
        channel = FakeChannel(
            channel_id if channel_id is not None else snowflake(),
            type,
            name=name,
            guild_id=guild_id,
            parent_id=parent_id,
            recipient_id=recipient_id,
            position=position,
            available_tags=[dict(t) for t in available_tags],
        )
        self.channels[channel.id] = channel
        return channel

    def dm_channel(self, user_id: int) -> FakeChannel:
        """The DM channel with `user_id` (created on first use; id from `dm_channel_id`)."""
        channel_id = dm_channel_id(user_id)
        existing = self.channels.get(channel_id)
        if existing is not None:
            return existing
        return self.add_channel(channel_id, _CHANNEL_DM, recipient_id=user_id)

    def close_dms(self, user_id: int) -> None:
        """Make posts into `user_id`'s DM channel answer 403 code 50007, as Discord does for a
        user who blocked the bot, left every shared guild or turned off server DMs. Opening
        the DM channel still works, as on Discord."""
        self.closed_dm_users.add(user_id)

    def open_dms(self, user_id: int) -> None:
        self.closed_dm_users.discard(user_id)

    def command(self, name: str, guild_id: int | None = None) -> dict[str, Any]:
        """A synced command as Discord returned it (ids included), for the builders.

        Raises `LookupError` listing what was synced, since a test that builds an interaction
        for a command the bot never synced would otherwise fail deep inside discord.py.
        """
        for cmd in self.commands.get(guild_id, []):
            if cmd["name"] == name:
                return cmd
        synced = {gid: [c["name"] for c in cmds] for gid, cmds in self.commands.items()}
        raise LookupError(f"no command {name!r} synced for guild {guild_id}; synced: {synced}")

    def channel_json(self, channel_id: int) -> dict[str, Any]:
        return self.channels[channel_id].as_json()

    def guild_json(self, guild_id: int) -> dict[str, Any]:
        """The GUILD_CREATE payload: guild fields, @everyone role, channels, threads, the bot
        as the one member (Discord always includes the current member)."""
        guild = self.guilds[guild_id]
        channels = [c for c in self.channels.values() if c.guild_id == guild_id]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": [
                {
                    "id": str(guild.id),
                    "name": "@everyone",
                    "permissions": str(guild.everyone_permissions),
                    "position": 0,
                    "color": 0,
                    "colors": {"primary_color": 0},
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.locale,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": snowflake_time(guild.id).isoformat(),
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "members": [_member_json(BOT_USER_ID, permissions=None)],
            "channels": [c.as_json() for c in channels if c.type not in _THREAD_TYPES],
            "threads": [c.as_json() for c in channels if c.type in _THREAD_TYPES],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # -- scripting faults ------------------------------------------------------------------

    def rate_limit(
        self,
        route: str,
        times: int | None = 1,
        retry_after: float = 0.05,
        global_: bool = False,
    ) -> None:
        """Answer the next `times` calls of `route` (``None``: all) with 429.

        The body is Discord's ``{"message", "retry_after", "global"}``; headers carry
        ``Retry-After`` (whole seconds, rounded up, as Discord sends it) and ``Via`` (without
        which discord.py assumes a Cloudflare ban and raises). A route-level limit adds the
        ``X-RateLimit-*`` bucket headers with ``Remaining: 0`` and ``Scope: user``; a global one
        ``X-RateLimit-Global: true`` and ``Scope: global``. discord.py sleeps ``retry_after``
        from the body (not the header) and retries, up to 5 attempts in all, blocking every
        route while a global limit lasts.
        """
        headers = {"Retry-After": str(max(1, math.ceil(retry_after))), "Via": "1.1 google"}
        if global_:
            headers.update({"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"})
        else:
            headers.update(_bucket_headers(route, remaining=0, reset_after=retry_after))
            headers["X-RateLimit-Scope"] = "user"
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": global_,
        }
        self._add_fault(route, _Fault(429, body, headers, times))

    def fail(
        self,
        route: str,
        status: int = 500,
        code: int | None = None,
        message: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` calls of `route` (``None``: all) with a Discord error.

        `code` defaults to 0 for 5xx and 50013 (Missing Permissions) for 403; `message` to
        Discord's text for the code, e.g. ``fail(route, 403, 50007)`` answers "Cannot send
        messages to this user". discord.py raises ``Forbidden`` / ``NotFound`` /
        ``HTTPException`` at once, but retries 5xx after 1, 3, 5… seconds.
        """
        if code is None:
            code = 50013 if status == 403 else 0
        text = message or _ERROR_MESSAGES.get(code) or f"{status}: Error"
        self._add_fault(route, _Fault(status, {"message": text, "code": code}, {}, times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def clear_calls(self) -> None:
        """Forget recorded calls, e.g. the start-up chatter before the step under test."""
        self.calls.clear()

    # -- inspection ------------------------------------------------------------------------

    def calls_to(self, pattern: str) -> list[ApiCall]:
        """Calls matching a route template, a concrete key or a glob (see `ApiCall.matches`)."""
        return [c for c in self.calls if c.matches(pattern)]

    def messages_in(self, channel_id: int, *, include_deleted: bool = False) -> list[PostedMessage]:
        return [
            m
            for m in self.messages
            if m.channel_id == channel_id and (include_deleted or not m.deleted)
        ]

    def message(self, message_id: int) -> PostedMessage:
        """The current state of a channel or interaction message (edits applied)."""
        for m in itertools.chain(self.messages, self.interaction_messages):
            if m.id == message_id:
                return m
        raise LookupError(f"no message {message_id}")

    def responses_to(self, token: str) -> list[InteractionResponse]:
        return [r for r in self.interaction_responses if r.token == token]

    async def wait_for(self, pattern: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:
        """Poll until `count` answered calls match `pattern`; return all of them so far.

        Raises `TimeoutError` naming what did arrive, which usually explains the failure.
        """
        return await poll(
            lambda: (
                calls
                if len(calls := [c for c in self.calls_to(pattern) if c.status is not None])
                >= count
                else None
            ),
            timeout,
            lambda: f"{count} call(s) to {pattern}; got {[c.key for c in self.calls]}",
        )

    async def wait_for_message(
        self, count: int = 1, channel: int | None = None, timeout: float = 5.0
    ) -> list[PostedMessage]:
        """Poll until `count` channel messages were created (in `channel`, if given)."""

        def probe() -> list[PostedMessage] | None:
            found = self.messages if channel is None else self.messages_in(channel)
            return list(found) if len(found) >= count else None

        return await poll(
            probe,
            timeout,
            lambda: (
                f"{count} message(s) in {channel or 'any channel'}; got "
                f"{[(m.channel_id, (m.content or '')[:30]) for m in self.messages]}"
                f"; violations {self.violations}"
            ),
        )

    async def wait_for_interaction_response(
        self, token: str, count: int = 1, timeout: float = 5.0
    ) -> list[InteractionResponse]:
        """Poll until the bot did `count` things with interaction `token`; return them all."""
        return await poll(
            lambda: found if len(found := self.responses_to(token)) >= count else None,
            timeout,
            lambda: (
                f"{count} response(s) to interaction {token}; got "
                f"{[(r.kind, r.type) for r in self.responses_to(token)]}"
                f"; violations {self.violations}"
            ),
        )

    async def wait_for_ready(self, timeout: float = 5.0, count: int = 1) -> GatewaySession:
        """Poll until `count` sessions identified and got READY plus their GUILD_CREATEs;
        return the newest. ``count=2`` waits out a re-identify after a dropped session."""
        return await poll(
            lambda: (
                ready[-1]
                if len(ready := [s for s in self.gateway_sessions if s.ready and not s.resumed])
                >= count
                else None
            ),
            timeout,
            lambda: f"{count} READY session(s); sessions {self.gateway_sessions}",
        )

    async def wait_for_resumed(self, timeout: float = 5.0, count: int = 1) -> GatewaySession:
        """Poll until `count` connections resumed a session (RESUMED sent); return the newest."""
        return await poll(
            lambda: (
                resumed[-1]
                if len(resumed := [s for s in self.gateway_sessions if s.ready and s.resumed])
                >= count
                else None
            ),
            timeout,
            lambda: f"{count} resumed session(s); sessions {self.gateway_sessions}",
        )

    # -- gateway control -------------------------------------------------------------------

    async def send_interaction(
        self, payload: Mapping[str, Any], *, timeout: float = 5.0, every_session: bool = False
    ) -> str:
        """Send INTERACTION_CREATE (built with `command_interaction` & co.) to the newest ready
        session, or with `every_session` to every ready one (as Discord does when two processes
        connect with one bot token and no sharding), and return its token, for
        `wait_for_interaction_response`. Only the first callback is accepted; later ones get
        40060, "already acknowledged".

        The 3-second callback window (`interaction_timeout`) starts now. Waits up to
        `timeout` for a session to be ready.
        """
        newest = await self._ready_connection(timeout)
        body = dict(payload)
        token = str(body["token"])
        self._interactions[token] = _Interaction(body, time.monotonic())
        self.interactions.append(body)
        ready = [c for c in self._connections if c.session.ready and not c.ws.closed]
        for connection in ready if every_session else [newest]:
            await self._dispatch_to(connection, "INTERACTION_CREATE", body)
        return token

    async def dispatch(self, event: str, data: Mapping[str, Any]) -> int:
        """Send a DISPATCH `event` to every ready session; return how many got it."""
        connections = [c for c in self._connections if c.session.ready and not c.ws.closed]
        for connection in connections:
            await self._dispatch_to(connection, event, dict(data))
        return len(connections)

    async def disconnect_all(self, code: int = 4000) -> int:
        """Close every gateway connection from the server side; return how many.

        With a resumable code (4000, the default, or 1000/1001) discord.py reconnects to
        ``resume_gateway_url`` and RESUMEs (see `wait_for_resumed`); 4004 (bad token) or 4014
        (disallowed intents) make it give up. Combine with ``gateway_accepting = False`` for an
        outage that lasts until the test restores it.
        """
        open_connections = [c for c in self._connections if not c.ws.closed]
        for connection in open_connections:
            await _close(connection, code, b"fake gateway disconnect")
        return len(open_connections)

    async def send_reconnect(self) -> int:
        """Send op 7 RECONNECT to every open connection; discord.py closes and resumes."""
        open_connections = [c for c in self._connections if not c.ws.closed]
        for connection in open_connections:
            await self._send(connection, {"op": 7, "d": None, "s": None, "t": None})
        return len(open_connections)

    async def invalidate_sessions(self, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION; non-resumable makes discord.py re-IDENTIFY on
        ``DEFAULT_GATEWAY`` after its fixed 5 s ``before_identify_hook`` sleep."""
        open_connections = [c for c in self._connections if not c.ws.closed]
        for connection in open_connections:
            if not resumable and connection.session.session_id is not None:
                self._sessions_by_id.pop(connection.session.session_id, None)
            await self._send(connection, {"op": 9, "d": resumable, "s": None, "t": None})
        return len(open_connections)

    async def close(self) -> None:
        """Stop listening and close gateway sockets (1001) without lingering; safe twice."""
        await super().close()

    # -- REST core -------------------------------------------------------------------------

    def _register_routes(self) -> None:
        """Paths are discord.py's own ``Route`` templates, so `ApiCall.route` equals the
        client's ``Route.key`` and fault keys can be copied from discord.py's source. Routes
        authorised by the interaction token (webhooks, callbacks) need no bot token."""
        app, webhook = "/applications/{application_id}", "/webhooks/{webhook_id}/{webhook_token}"
        channel, message = "/channels/{channel_id}", "/channels/{channel_id}/messages/{message_id}"
        table: list[tuple[str, Callable[[ApiCall], Awaitable[web.Response]]]] = [
            ("GET /users/@me", self._get_me),
            ("GET /users/{user_id}", self._get_user),
            ("POST /users/@me/channels", self._open_dm),
            ("GET /oauth2/applications/@me", self._application_info),
            ("GET /applications/@me", self._application_info),
            ("GET /gateway", self._get_gateway),
            ("GET /gateway/bot", self._get_gateway_bot),
            (f"GET {app}/commands", self._get_commands),
            (f"PUT {app}/commands", self._put_commands),
            (f"GET {app}/guilds/{{guild_id}}/commands", self._get_commands),
            (f"PUT {app}/guilds/{{guild_id}}/commands", self._put_commands),
            ("POST /interactions/{webhook_id}/{webhook_token}/callback", self._callback),
            (f"POST {webhook}", self._followup),
            (f"GET {webhook}/messages/@original", self._get_webhook_message),
            (f"GET {webhook}/messages/{{message_id}}", self._get_webhook_message),
            (f"PATCH {webhook}/messages/@original", self._edit_webhook_message),
            (f"PATCH {webhook}/messages/{{message_id}}", self._edit_webhook_message),
            (f"DELETE {webhook}/messages/@original", self._delete_webhook_message),
            (f"DELETE {webhook}/messages/{{message_id}}", self._delete_webhook_message),
            ("GET /guilds/{guild_id}", self._get_guild),
            ("GET /guilds/{guild_id}/channels", self._get_guild_channels),
            (f"GET {channel}", self._get_channel),
            (f"POST {channel}/messages", self._create_message),
            (f"GET {message}", self._get_message),
            (f"PATCH {message}", self._edit_message),
            (f"DELETE {message}", self._delete_message),
            (f"POST {message}/threads", self._thread_from_message),
            (f"POST {channel}/threads", self._create_thread),
            (f"POST {channel}/typing", self._no_content),
            (f"PUT {channel}/thread-members/@me", self._no_content),
        ]
        for key, handler in table:
            method, template = key.split(" ", 1)
            parts = tuple(template.strip("/").split("/"))
            bot_auth = parts[0] not in ("interactions", "webhooks") and key != "GET /gateway"
            self._routes.append(_Route(method, template, parts, handler, bot_auth))
        # Literal segments win over placeholders ("@original" before "{message_id}").
        self._routes.sort(key=lambda r: sum(p.startswith("{") for p in r.parts))

    def _match(self, method: str, path: str) -> tuple[_Route, dict[str, str]] | None:
        parts = path.strip("/").split("/")
        for route in self._routes:
            if route.method != method or len(route.parts) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(route.parts, parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return route, params
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        """Record the call, then answer: body check, auth, scripted fault, route handler."""
        path = "/" + request.match_info["tail"]
        matched = self._match(request.method, path)
        body, files, body_ok = await _read_body(request)
        call = ApiCall(
            method=request.method,
            path=path,
            route=matched[0].key if matched else None,
            params=matched[1] if matched else {},
            query=dict(request.query),
            json=body,
            headers=lower_headers(request),
            at=time.monotonic(),
            files=files,
        )
        self.calls.append(call)
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        response = await self._answer(call, matched, body_ok)
        call.status = response.status
        return response

    async def _answer(
        self, call: ApiCall, matched: tuple[_Route, dict[str, str]] | None, body_ok: bool
    ) -> web.Response:
        if matched is None:
            return _json_error(404, 0, "404: Not Found")
        route = matched[0]
        if not body_ok:
            return _json_error(400, 50109)
        if route.bot_auth and not self._authorized(call.headers.get("authorization", "")):
            return _json_error(401, 0, "401: Unauthorized")
        fault = self._take_fault(call)
        if fault is not None:
            return _json_response(fault.body, status=fault.status, headers=fault.headers)
        response = await route.handler(call)
        if 200 <= response.status < 300:
            response.headers.update(_bucket_headers(route.key, remaining=4, reset_after=1.0))
        return response

    def _authorized(self, header: str) -> bool:
        if not header.startswith("Bot "):
            return False
        token = header[4:].strip()
        return bool(token) and (self.valid_tokens is None or token in self.valid_tokens)

    def _add_fault(self, route: str, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        self._faults.setdefault(route, deque()).append(fault)

    def _take_fault(self, call: ApiCall) -> _Fault | None:
        for key in (call.key, call.route):
            queue = self._faults.get(key) if key else None
            if not queue:
                continue
            fault = queue[0]
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    queue.popleft()
            return fault
        return None

    def _invalid(self, call: ApiCall, errors: Sequence[FieldError]) -> web.Response:
        """Record `errors` as violations and answer Discord's 50035 Invalid Form Body."""
        for error in errors:
            self.violations.append(f"{call.route}: {error}")
        return _json_response(_form_error_body(errors), status=400)

    def _empty(self, call: ApiCall) -> web.Response:
        self.violations.append(f"{call.route}: {_ERROR_MESSAGES[50006]}")
        return _json_error(400, 50006)

    # -- identity and gateway discovery ----------------------------------------------------

    async def _get_me(self, call: ApiCall) -> web.Response:
        return _json_response(
            {
                **user_json(BOT_USER_ID),
                "verified": True,
                "mfa_enabled": False,
                "flags": 0,
                "locale": "en-US",
                "email": None,
            }
        )

    async def _get_user(self, call: ApiCall) -> web.Response:
        return _json_response(self._user(int(call.params["user_id"])))

    async def _application_info(self, call: ApiCall) -> web.Response:
        """Fields ``discord.AppInfo`` requires; no ``interactions_endpoint_url`` (which would
        make discord.py warn that interactions go elsewhere than the gateway)."""
        return _json_response(
            {
                "id": str(APP_ID),
                "name": "ainews",
                "icon": None,
                "description": "AI news for the team",
                "summary": "",
                "type": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self._user(OWNER_ID),
                "team": None,
                "flags": APP_FLAGS,
                "bot": {**user_json(BOT_USER_ID)},
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, call: ApiCall) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, call: ApiCall) -> web.Response:
        return _json_response(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    def _user(self, user_id: int) -> dict[str, Any]:
        return user_json(user_id, self.users.get(user_id))

    # -- application commands --------------------------------------------------------------

    def _command_scope(self, call: ApiCall) -> tuple[int | None, web.Response | None]:
        if call.params["application_id"] != str(APP_ID):
            return None, _json_error(403, 20012)
        guild = call.params.get("guild_id")
        if guild is None:
            return None, None
        if not guild.isdigit() or int(guild) not in self.guilds:
            return None, _json_error(404, 10004)
        return int(guild), None

    async def _get_commands(self, call: ApiCall) -> web.Response:
        guild_id, error = self._command_scope(call)
        return error or _json_response(self.commands.get(guild_id, []))

    async def _put_commands(self, call: ApiCall) -> web.Response:
        """Bulk overwrite: validate like Discord, keep ids stable per (name, type) as Discord
        does across re-syncs, and answer the stored commands."""
        guild_id, error = self._command_scope(call)
        if error is not None:
            return error
        payload = call.json
        if not isinstance(payload, list) or not all(isinstance(c, dict) for c in payload):
            return self._invalid(call, [FieldError("_root", "LIST_TYPE_CONVERT", "Not a list.")])
        errors = command_errors(payload)
        if errors:
            return self._invalid(call, errors)
        self.command_syncs.append(CommandSync(guild_id, payload, time.monotonic()))
        stored = []
        for cmd in payload:
            kind = int(cmd.get("type", 1))
            key = (guild_id, cmd["name"], kind)
            command_id = self._command_ids.setdefault(key, snowflake())
            entry = {
                "default_member_permissions": None,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                "description_localizations": None,
                "name_localizations": None,
                **cmd,
                "id": str(command_id),
                "application_id": str(APP_ID),
                "version": str(snowflake()),
                "type": kind,
            }
            if guild_id is not None:
                entry["guild_id"] = str(guild_id)
            stored.append(entry)
        self.commands[guild_id] = stored
        return _json_response(stored)

    # -- interactions ----------------------------------------------------------------------

    def _interaction_for(self, call: ApiCall, *, callback: bool) -> _Interaction | None:
        interaction = self._interactions.get(call.params["webhook_token"])
        if interaction is None:
            return None
        if callback and call.params["webhook_id"] != str(interaction.id):
            return None
        if not callback and call.params["webhook_id"] != str(APP_ID):
            return None
        return interaction

    async def _callback(self, call: ApiCall) -> web.Response:
        """One callback per interaction, within `interaction_timeout`, of a type valid for
        the interaction; the message ones validated like channel messages (at ``data.*``)."""
        interaction = self._interaction_for(call, callback=True)
        if interaction is None:
            return _json_error(404, 10062)
        if (
            self.interaction_timeout is not None
            and time.monotonic() - interaction.sent_at > self.interaction_timeout
        ):
            self.violations.append(
                f"{call.route}: callback after {self.interaction_timeout}s (Unknown interaction)"
            )
            return _json_error(404, 10062)
        if interaction.ack_type is not None:
            return _json_error(400, 40060)
        body = call.json if isinstance(call.json, dict) else {}
        kind = body.get("type")
        allowed = _ALLOWED_CALLBACKS.get(interaction.type, frozenset())
        if kind not in allowed:
            return self._invalid(
                call,
                [
                    FieldError(
                        "type",
                        "INTERACTION_CALLBACK_TYPE_INVALID",
                        f"Callback type {kind!r} is not valid for interaction type "
                        f"{interaction.type} (allowed: {sorted(allowed)}).",
                    )
                ],
            )
        raw_data = body.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        if kind in (CallbackType.MESSAGE, CallbackType.UPDATE_MESSAGE):
            errors = message_errors(data, at="data.")
            if errors:
                return self._invalid(call, errors)
            if kind == CallbackType.MESSAGE and _is_empty(data, call.files):
                return self._empty(call)
        elif kind == CallbackType.AUTOCOMPLETE_RESULT:
            errors = _choice_errors(data.get("choices"), "data.choices")
            if errors:
                return self._invalid(call, errors)
        elif kind == CallbackType.MODAL:
            errors = _modal_errors(data)
            if errors:
                return self._invalid(call, errors)

        interaction.ack_type = kind
        flags = int(data.get("flags") or 0)
        message: PostedMessage | None = None
        if kind == CallbackType.MESSAGE:
            message = self._interaction_message(interaction, data, call.files, original=True)
        elif kind == CallbackType.DEFERRED_MESSAGE:
            placeholder = {"flags": LOADING | (flags & EPHEMERAL)}
            message = self._interaction_message(interaction, placeholder, [], original=True)
        elif kind in (CallbackType.DEFERRED_UPDATE, CallbackType.UPDATE_MESSAGE):
            message = self._component_message(interaction)
            if message is not None and kind == CallbackType.UPDATE_MESSAGE:
                message = self._apply_edit(message, data, call.files)
        if message is not None and kind != CallbackType.MODAL:
            interaction.original_id = message.id
        self.interaction_responses.append(
            InteractionResponse(
                token=call.params["webhook_token"],
                kind="callback",
                payload=data,
                type=kind,
                message_id=message.id if message is not None else None,
                ephemeral=bool(flags & EPHEMERAL),
                files=call.files,
                at=call.at,
            )
        )
        if call.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json_response(self._callback_response(interaction, kind, message))

    def _callback_response(
        self, interaction: _Interaction, kind: int, message: PostedMessage | None
    ) -> dict[str, Any]:
        """The InteractionCallbackResponse that ``?with_response=1`` asks for (discord.py 2.5+
        always asks, and reads ``interaction.id`` unconditionally)."""
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        if message is not None:
            info.update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
        body: dict[str, Any] = {"interaction": info}
        if kind in (4, 5, 6, 7):
            resource: dict[str, Any] = {"type": kind}
            if message is not None and kind in (4, 7):
                resource["message"] = self._message_json(message)
            body["resource"] = resource
        return body

    async def _followup(self, call: ApiCall) -> web.Response:
        """A followup; the first one after a type-5 defer fills the deferred message."""
        interaction = self._interaction_for(call, callback=False)
        if interaction is None or interaction.ack_type is None:
            return _json_error(404, 10015)
        body = call.json if isinstance(call.json, dict) else {}
        errors = message_errors(body)
        if errors:
            return self._invalid(call, errors)
        if _is_empty(body, call.files):
            return self._empty(call)
        original = self._original(interaction)
        replaces = (
            interaction.ack_type == CallbackType.DEFERRED_MESSAGE
            and original is not None
            and original.loading
            and not interaction.followup_ids
        )
        if replaces and original is not None:
            flags = (int(body.get("flags") or 0) & ~EPHEMERAL) | (original.flags & EPHEMERAL)
            message = self._apply_edit(original, {**body, "flags": flags}, call.files)
        else:
            message = self._interaction_message(interaction, body, call.files)
        interaction.followup_ids.append(message.id)
        self.interaction_responses.append(
            InteractionResponse(
                token=call.params["webhook_token"],
                kind="followup",
                payload=body,
                message_id=message.id,
                ephemeral=message.ephemeral,
                replaces_deferred=replaces,
                files=call.files,
                at=call.at,
            )
        )
        if call.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json_response(self._message_json(message))

    def _webhook_target(
        self, call: ApiCall
    ) -> tuple[_Interaction | None, PostedMessage | None, str]:
        interaction = self._interaction_for(call, callback=False)
        target = call.params.get("message_id", "@original")
        if interaction is None:
            return None, None, target
        if target == "@original":
            return interaction, self._original(interaction), target
        if target.isdigit():
            mid = int(target)
            ids = [interaction.original_id, *interaction.followup_ids]
            if mid in ids:
                try:
                    found = self.message(mid)
                except LookupError:
                    return interaction, None, target
                return interaction, (None if found.deleted else found), target
        return interaction, None, target

    async def _get_webhook_message(self, call: ApiCall) -> web.Response:
        interaction, message, _ = self._webhook_target(call)
        if interaction is None:
            return _json_error(404, 10015)
        if message is None:
            return _json_error(404, 10008)
        return _json_response(self._message_json(message))

    async def _edit_webhook_message(self, call: ApiCall) -> web.Response:
        interaction, message, target = self._webhook_target(call)
        if interaction is None:
            return _json_error(404, 10015)
        if message is None:
            return _json_error(404, 10008)
        body = call.json if isinstance(call.json, dict) else {}
        errors = message_errors(body)
        if errors:
            return self._invalid(call, errors)
        updated = self._apply_edit(message, body, call.files)
        self.interaction_responses.append(
            InteractionResponse(
                token=call.params["webhook_token"],
                kind="edit",
                payload=body,
                message_id=updated.id,
                target=target,
                ephemeral=updated.ephemeral,
                files=call.files,
                at=call.at,
            )
        )
        return _json_response(self._message_json(updated))

    async def _delete_webhook_message(self, call: ApiCall) -> web.Response:
        interaction, message, target = self._webhook_target(call)
        if interaction is None:
            return _json_error(404, 10015)
        if message is None:
            return _json_error(404, 10008)
        self._replace_message(replace(message, deleted=True))
        self.interaction_responses.append(
            InteractionResponse(
                token=call.params["webhook_token"],
                kind="delete",
                payload={},
                message_id=message.id,
                target=target,
                ephemeral=message.ephemeral,
                at=call.at,
            )
        )
        return web.Response(status=204)

    def _original(self, interaction: _Interaction) -> PostedMessage | None:
        if interaction.original_id is None:
            if interaction.type in (3, 5):
                return self._component_message(interaction)
            return None
        try:
            message = self.message(interaction.original_id)
        except LookupError:
            return None
        return None if message.deleted else message

    def _component_message(self, interaction: _Interaction) -> PostedMessage | None:
        """The message a component interaction came from, if this server created it."""
        raw = interaction.payload.get("message")
        if not isinstance(raw, dict) or not str(raw.get("id", "")).isdigit():
            return None
        try:
            return self.message(int(raw["id"]))
        except LookupError:
            return None

    def _interaction_message(
        self,
        interaction: _Interaction,
        body: Mapping[str, Any],
        files: list[UploadedFile],
        *,
        original: bool = False,
    ) -> PostedMessage:
        payload = interaction.payload
        channel_id = int(payload.get("channel_id") or payload.get("channel", {}).get("id") or 0)
        is_command = interaction.type == 2 and original
        message = PostedMessage(
            id=snowflake(),
            channel_id=channel_id,
            content=body.get("content") if isinstance(body.get("content"), str) else None,
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            allowed_mentions=body.get("allowed_mentions"),
            flags=int(body.get("flags") or 0),
            guild_id=_int_or_none(payload.get("guild_id")),
            attachments=list(files),
            tts=bool(body.get("tts", False)),
            type=20 if is_command else 0,
            interaction_token=str(payload["token"]),
            at=time.monotonic(),
        )
        self.interaction_messages.append(message)
        return message

    # -- guilds and channels ---------------------------------------------------------------

    async def _get_guild(self, call: ApiCall) -> web.Response:
        guild_id = _int_or_none(call.params["guild_id"])
        if guild_id not in self.guilds:
            return _json_error(404, 10004)
        assert guild_id is not None
        body = self.guild_json(guild_id)
        for key in ("channels", "threads", "members", "presences", "voice_states"):
            body.pop(key, None)
        return _json_response(body)

    async def _get_guild_channels(self, call: ApiCall) -> web.Response:
        guild_id = _int_or_none(call.params["guild_id"])
        if guild_id not in self.guilds:
            return _json_error(404, 10004)
        channels = [
            c.as_json()
            for c in self.channels.values()
            if c.guild_id == guild_id and c.type not in _THREAD_TYPES
        ]
        return _json_response(channels)

    def _channel(self, call: ApiCall) -> FakeChannel | None:
        channel_id = _int_or_none(call.params["channel_id"])
        return self.channels.get(channel_id) if channel_id is not None else None

    async def _get_channel(self, call: ApiCall) -> web.Response:
        channel = self._channel(call)
        if channel is None:
            return _json_error(404, 10003)
        return _json_response(channel.as_json())

    async def _open_dm(self, call: ApiCall) -> web.Response:
        body = call.json if isinstance(call.json, dict) else {}
        recipient = _int_or_none(body.get("recipient_id"))
        if recipient is None:
            return self._invalid(
                call, [FieldError("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")]
            )
        channel = self.dm_channel(recipient)
        body = channel.as_json()
        body["recipients"] = [self._user(recipient)]
        return _json_response(body)

    async def _no_content(self, call: ApiCall) -> web.Response:
        return web.Response(status=204)

    async def _create_message(self, call: ApiCall) -> web.Response:
        channel = self._channel(call)
        if channel is None:
            return _json_error(404, 10003)
        if channel.type not in _MESSAGEABLE_TYPES_ALL:
            return _json_error(400, 50008)
        if channel.type == _CHANNEL_DM and channel.recipient_id in self.closed_dm_users:
            return _json_error(403, 50007)
        body = call.json if isinstance(call.json, dict) else {}
        errors = message_errors(body)
        if errors:
            return self._invalid(call, errors)
        if _is_empty(body, call.files):
            return self._empty(call)
        message = self._store_message(channel, body, call.files)
        return _json_response(self._message_json(message))

    def _store_message(
        self,
        channel: FakeChannel,
        body: Mapping[str, Any],
        files: list[UploadedFile],
        *,
        message_id: int | None = None,
    ) -> PostedMessage:
        reference = body.get("message_reference")
        message = PostedMessage(
            id=message_id if message_id is not None else snowflake(),
            channel_id=channel.id,
            content=body.get("content") if isinstance(body.get("content"), str) else None,
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            allowed_mentions=body.get("allowed_mentions"),
            message_reference=reference if isinstance(reference, dict) else None,
            flags=int(body.get("flags") or 0),
            guild_id=channel.guild_id,
            parent_id=channel.parent_id if channel.type in _THREAD_TYPES else None,
            attachments=list(files),
            tts=bool(body.get("tts", False)),
            type=19 if isinstance(reference, dict) else 0,
            at=time.monotonic(),
        )
        self.messages.append(message)
        channel.last_message_id = message.id
        if channel.type in _THREAD_TYPES:
            channel.message_count += 1
        return message

    def _channel_message(self, call: ApiCall) -> PostedMessage | None:
        channel_id = _int_or_none(call.params["channel_id"])
        message_id = _int_or_none(call.params["message_id"])
        for m in self.messages:
            if m.id == message_id and m.channel_id == channel_id and not m.deleted:
                return m
        return None

    async def _get_message(self, call: ApiCall) -> web.Response:
        if self._channel(call) is None:
            return _json_error(404, 10003)
        message = self._channel_message(call)
        if message is None:
            return _json_error(404, 10008)
        return _json_response(self._message_json(message))

    async def _edit_message(self, call: ApiCall) -> web.Response:
        if self._channel(call) is None:
            return _json_error(404, 10003)
        message = self._channel_message(call)
        if message is None:
            return _json_error(404, 10008)
        body = call.json if isinstance(call.json, dict) else {}
        errors = message_errors(body)
        if errors:
            return self._invalid(call, errors)
        return _json_response(self._message_json(self._apply_edit(message, body, call.files)))

    async def _delete_message(self, call: ApiCall) -> web.Response:
        message = self._channel_message(call)
        if message is None:
            return _json_error(404, 10008)
        self._replace_message(replace(message, deleted=True))
        return web.Response(status=204)

    async def _thread_from_message(self, call: ApiCall) -> web.Response:
        """Discord gives the thread the starter message's id and answers the thread channel."""
        channel = self._channel(call)
        if channel is None:
            return _json_error(404, 10003)
        message = self._channel_message(call)
        if message is None:
            return _json_error(404, 10008)
        if message.thread_id is not None:
            return _json_error(400, 160004)
        body = call.json if isinstance(call.json, dict) else {}
        errors = _thread_name_errors(body.get("name"), "name")
        if errors:
            return self._invalid(call, errors)
        thread = self._new_thread(channel, body, thread_id=message.id)
        self._replace_message(replace(message, thread_id=thread.id))
        await self._announce_thread(thread)
        return _json_response(thread.as_json())

    async def _create_thread(self, call: ApiCall) -> web.Response:
        """A forum/media post (``name`` + ``message``, answered as the thread with the starter
        ``message`` inside, which discord.py's ``ForumChannel.create_thread`` reads), or a
        thread without a starter message in a text channel."""
        channel = self._channel(call)
        if channel is None:
            return _json_error(404, 10003)
        body = call.json if isinstance(call.json, dict) else {}
        errors = _thread_name_errors(body.get("name"), "name")
        if channel.type in (_CHANNEL_FORUM, _CHANNEL_MEDIA):
            starter = body.get("message")
            if not isinstance(starter, dict):
                errors.append(FieldError("message", "BASE_TYPE_REQUIRED", "This field is required"))
                return self._invalid(call, errors)
            errors += message_errors(starter, at="message.")
            if errors:
                return self._invalid(call, errors)
            if _is_empty(starter, call.files):
                return self._empty(call)
            thread = self._new_thread(channel, body, thread_id=snowflake())
            message = self._store_message(thread, starter, call.files, message_id=thread.id)
            response = thread.as_json()
            response["message"] = self._message_json(message)
            await self._announce_thread(thread)
            return _json_response(response)
        if channel.type not in (_CHANNEL_TEXT, _CHANNEL_NEWS):
            return _json_error(400, 50008)
        if errors:
            return self._invalid(call, errors)
        thread = self._new_thread(channel, body, thread_id=snowflake())
        await self._announce_thread(thread)
        return _json_response(thread.as_json())

    def _new_thread(
        self, parent: FakeChannel, body: Mapping[str, Any], *, thread_id: int
    ) -> FakeChannel:
        kind = int(body.get("type") or _CHANNEL_PUBLIC_THREAD)
        if parent.type in (_CHANNEL_FORUM, _CHANNEL_MEDIA):
            kind = _CHANNEL_PUBLIC_THREAD
        thread = self.add_channel(
            thread_id,
            kind,
            name=str(body["name"]),
            guild_id=parent.guild_id,
            parent_id=parent.id,
        )
        thread.owner_id = BOT_USER_ID
        thread.auto_archive_duration = int(body.get("auto_archive_duration") or 1440)
        thread.applied_tags = [int(t) for t in body.get("applied_tags") or []]
        parent.last_message_id = thread.id
        return thread

    async def _announce_thread(self, thread: FakeChannel) -> None:
        """THREAD_CREATE to sessions with the GUILDS intent, as Discord sends the creator."""
        data = {**thread.as_json(), "newly_created": True}
        for connection in [c for c in self._connections if c.session.ready and not c.ws.closed]:
            if (connection.session.intents or 0) & _INTENT_GUILDS:
                await self._dispatch_to(connection, "THREAD_CREATE", data)

    # -- message bookkeeping ---------------------------------------------------------------

    def _message_json(self, message: PostedMessage) -> dict[str, Any]:
        body = message.as_json(attachment_base=self.url("/attachments"))
        if message.thread_id is not None and message.thread_id in self.channels:
            body["thread"] = self.channels[message.thread_id].as_json()
        if message.interaction_token is not None:
            interaction = self._interactions.get(message.interaction_token)
            if interaction is not None:
                body["interaction_metadata"] = _interaction_metadata(interaction.payload)
        return body

    def _replace_message(self, message: PostedMessage) -> None:
        for store in (self.messages, self.interaction_messages):
            for i, existing in enumerate(store):
                if existing.id == message.id:
                    store[i] = message
                    return
        raise LookupError(f"no message {message.id}")

    def _apply_edit(
        self, message: PostedMessage, body: Mapping[str, Any], files: list[UploadedFile]
    ) -> PostedMessage:
        """Fields present in `body` replace the old ones, as a Discord PATCH does; an edit of
        a loading placeholder fills it (it is no longer "thinking")."""
        changes: dict[str, Any] = {"edited": True}
        if "content" in body:
            changes["content"] = body["content"]
        if "embeds" in body:
            changes["embeds"] = list(body["embeds"] or [])
        if "components" in body:
            changes["components"] = list(body["components"] or [])
        if "allowed_mentions" in body:
            changes["allowed_mentions"] = body["allowed_mentions"]
        flags = int(body["flags"]) if body.get("flags") is not None else message.flags
        changes["flags"] = flags & ~LOADING
        if files:
            changes["attachments"] = [*message.attachments, *files]
        if message.loading:
            changes["edited"] = False
        updated = replace(message, **changes)
        self._replace_message(updated)
        return updated

    # -- gateway ---------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        """HELLO, then IDENTIFY → READY + GUILD_CREATEs or RESUME → RESUMED, heartbeats
        acknowledged, until either side closes."""
        if not self.gateway_accepting:
            return web.Response(status=503, text="gateway unavailable")
        ws = web.WebSocketResponse(timeout=1.0, max_msg_size=0)
        await ws.prepare(request)
        session = GatewaySession(request.path, dict(request.query), time.monotonic())
        compressor = zlib.compressobj() if self.zlib_stream and session.compressed else None
        connection = _Connection(session, ws, compressor)
        self.gateway_sessions.append(session)
        self._connections.append(connection)
        try:
            await self._send(
                connection,
                {
                    "op": 10,
                    "d": {
                        "heartbeat_interval": self.heartbeat_interval,
                        "_trace": ['["fake-gateway",{"micros":0}]'],
                    },
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    await _close(connection, 4002, b"Error while decoding payload.")
                    break
                await self._on_gateway_message(connection, msg.data)
        finally:
            session.closed = True
            if session.close_code is None:
                session.close_code = ws.close_code
            self._connections.remove(connection)
        return ws

    async def _on_gateway_message(self, connection: _Connection, text: str) -> None:
        session = connection.session
        try:
            message = json.loads(text)
        except ValueError:
            await _close(connection, 4002, b"Error while decoding payload.")
            return
        if not isinstance(message, dict):
            await _close(connection, 4002, b"Error while decoding payload.")
            return
        session.received.append(message)
        op, data = message.get("op"), message.get("d")
        if op == 1:
            session.heartbeats += 1
            if self.ack_heartbeats:
                await self._send(connection, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._resume(connection, data if isinstance(data, dict) else {})
        elif op in (3, 4, 8, 31):  # presence, voice state, request members, soundboard
            if session.session_id is None:
                await _close(connection, 4003, b"Not authenticated.")
        else:
            await _close(connection, 4001, b"Unknown opcode.")

    async def _identify(self, connection: _Connection, data: dict[str, Any]) -> None:
        session, ws = connection.session, connection.ws
        if session.session_id is not None:
            await _close(connection, 4005, b"Already authenticated.")
            return
        token = data.get("token")
        if (
            not isinstance(token, str)
            or not token
            or (self.valid_tokens is not None and token not in self.valid_tokens)
        ):
            await _close(connection, 4004, b"Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int):
            await _close(connection, 4013, b"Invalid intent(s).")
            return
        if intents & _PRIVILEGED_INTENTS & ~self.privileged_intents:
            await _close(connection, 4014, b"Disallowed intent(s).")
            return
        session.identify = data
        session.session_id = uuid.uuid4().hex
        self._sessions_by_id[session.session_id] = session
        if self.ready_delay > 0:
            await asyncio.sleep(self.ready_delay)
        ready: dict[str, Any] = {
            "v": 10,
            "user_settings": {},
            "user": {**user_json(BOT_USER_ID), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "auth": {},
            "application": {"id": str(APP_ID), "flags": APP_FLAGS},
            "_trace": ['["fake-gateway",{"micros":0}]'],
        }
        shard = data.get("shard")
        if isinstance(shard, list):
            ready["shard"] = shard
        await self._dispatch_to(connection, "READY", ready)
        if intents & _INTENT_GUILDS:
            for guild_id in self.guilds:
                if _guild_shard(guild_id, shard) and not ws.closed:
                    await self._dispatch_to(connection, "GUILD_CREATE", self.guild_json(guild_id))
        session.ready = True

    async def _resume(self, connection: _Connection, data: dict[str, Any]) -> None:
        """Continue a known session's sequence; unknown ones get INVALID_SESSION(false)."""
        session = connection.session
        previous = self._sessions_by_id.get(str(data.get("session_id")))
        if previous is None or data.get("token") != (previous.identify or {}).get("token"):
            await self._send(connection, {"op": 9, "d": False, "s": None, "t": None})
            return
        session.session_id = previous.session_id
        session.identify = previous.identify
        session.resumed = True
        session.seq = previous.seq
        self._sessions_by_id[str(session.session_id)] = session
        await self._dispatch_to(connection, "RESUMED", {"_trace": ['["fake-gateway",{}]']})
        session.ready = True

    async def _dispatch_to(self, connection: _Connection, event: str, data: Any) -> None:
        session = connection.session
        async with connection.lock:
            session.seq += 1
            await self._send_locked(connection, {"op": 0, "d": data, "s": session.seq, "t": event})

    async def _send(self, connection: _Connection, payload: dict[str, Any]) -> None:
        async with connection.lock:
            await self._send_locked(connection, payload)

    async def _send_locked(self, connection: _Connection, payload: dict[str, Any]) -> None:
        if connection.ws.closed:
            return
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        connection.session.sent.append(payload)
        if connection.compressor is not None:
            data = connection.compressor.compress(text.encode())
            data += connection.compressor.flush(zlib.Z_SYNC_FLUSH)
            await connection.ws.send_bytes(data)
        else:
            await connection.ws.send_str(text)

    async def _ready_connection(self, timeout: float) -> _Connection:
        return await poll(
            lambda: next(
                (c for c in reversed(self._connections) if c.session.ready and not c.ws.closed),
                None,
            ),
            timeout,
            lambda: f"a ready gateway session; sessions {self.gateway_sessions}",
        )

    async def _close_sockets_on_shutdown(self, app: web.Application) -> None:
        for connection in list(self._connections):
            await _close(connection, WSCloseCode.GOING_AWAY, b"server shutdown")


# -- Discord limits ------------------------------------------------------------------------


def message_errors(payload: Mapping[str, Any], at: str = "") -> list[FieldError]:
    """Violations of Discord's message limits, with Discord's error paths and codes.

    Covers content (2000), embeds (10 per message; title 256, description 4096, 25 fields of
    name 256 / value 1024, both required, footer 2048, author 256; 6000 in all), and
    components: 5 action rows of 5 buttons or 1 select, ``custom_id`` 1–100 and unique, button
    label 80, select options 25. Components V2 messages (flag 1 << 15) get only the
    ``custom_id``/label checks. `at` prefixes paths (``"data."`` in interaction callbacks).
    """
    errors: list[FieldError] = []
    content = payload.get("content")
    if isinstance(content, str) and len(content) > 2000:
        errors.append(_too_long(f"{at}content", 2000))
    embeds = payload.get("embeds")
    if isinstance(embeds, list):
        errors += _embed_errors(embeds, f"{at}embeds")
    components = payload.get("components")
    if isinstance(components, list):
        v2 = bool(int(payload.get("flags") or 0) & IS_COMPONENTS_V2)
        errors += _component_errors(components, f"{at}components", v2=v2)
    return errors


def _too_long(path: str, most: int) -> FieldError:
    return FieldError(path, "BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer in length.")


def _required(path: str) -> FieldError:
    return FieldError(path, "BASE_TYPE_REQUIRED", "This field is required")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _embed_errors(embeds: list[Any], at: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(embeds) > 10:
        errors.append(_too_long(at, 10))
    total = 0
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            errors.append(FieldError(f"{at}.{i}", "DICT_TYPE_CONVERT", "Only dictionaries."))
            continue
        here = f"{at}.{i}"
        title, description = _text(embed.get("title")), _text(embed.get("description"))
        total += len(title) + len(description)
        if len(title) > 256:
            errors.append(_too_long(f"{here}.title", 256))
        if len(description) > 4096:
            errors.append(_too_long(f"{here}.description", 4096))
        fields = embed.get("fields") or []
        if isinstance(fields, list):
            if len(fields) > 25:
                errors.append(_too_long(f"{here}.fields", 25))
            for j, item in enumerate(fields):
                item = item if isinstance(item, dict) else {}
                name, value = _text(item.get("name")), _text(item.get("value"))
                total += len(name) + len(value)
                if not name:
                    errors.append(_required(f"{here}.fields.{j}.name"))
                elif len(name) > 256:
                    errors.append(_too_long(f"{here}.fields.{j}.name", 256))
                if not value:
                    errors.append(_required(f"{here}.fields.{j}.value"))
                elif len(value) > 1024:
                    errors.append(_too_long(f"{here}.fields.{j}.value", 1024))
        footer = embed.get("footer")
        if isinstance(footer, dict):
            text = _text(footer.get("text"))
            total += len(text)
            if len(text) > 2048:
                errors.append(_too_long(f"{here}.footer.text", 2048))
        author = embed.get("author")
        if isinstance(author, dict):
            name = _text(author.get("name"))
            total += len(name)
            if len(name) > 256:
                errors.append(_too_long(f"{here}.author.name", 256))
    if total > 6000:
        errors.append(
            FieldError(at, "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        )
    return errors


def _component_errors(components: list[Any], at: str, *, v2: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[str] = set()

    def leaf(component: dict[str, Any], here: str) -> None:
        kind = component.get("type")
        custom_id = component.get("custom_id")
        if kind == 2 and component.get("style") in (5, 6):
            pass  # link and premium buttons carry a url / sku_id instead of a custom_id
        elif kind in (2, 4, *_SELECT_TYPES):
            if not isinstance(custom_id, str) or not custom_id:
                errors.append(_required(f"{here}.custom_id"))
            elif len(custom_id) > 100:
                errors.append(_too_long(f"{here}.custom_id", 100))
        if isinstance(custom_id, str) and custom_id:
            if custom_id in seen:
                errors.append(
                    FieldError(
                        f"{here}.custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                )
            seen.add(custom_id)
        label = component.get("label")
        if kind == 2 and isinstance(label, str) and len(label) > 80:
            errors.append(_too_long(f"{here}.label", 80))
        if kind == 4 and isinstance(label, str) and len(label) > 45:
            errors.append(_too_long(f"{here}.label", 45))
        if kind in _SELECT_TYPES:
            placeholder = component.get("placeholder")
            if isinstance(placeholder, str) and len(placeholder) > 150:
                errors.append(_too_long(f"{here}.placeholder", 150))
            options = component.get("options")
            if isinstance(options, list):
                if len(options) > 25:
                    errors.append(_too_long(f"{here}.options", 25))
                for k, option in enumerate(options):
                    option = option if isinstance(option, dict) else {}
                    for name in ("label", "value", "description"):
                        if len(_text(option.get(name))) > 100:
                            errors.append(_too_long(f"{here}.options.{k}.{name}", 100))

    def walk(items: list[Any], here: str) -> None:
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            leaf(item, f"{here}.{i}")
            for key in ("components", "accessory"):
                child = item.get(key)
                if isinstance(child, list):
                    walk(child, f"{here}.{i}.{key}")
                elif isinstance(child, dict):
                    leaf(child, f"{here}.{i}.{key}")

    if v2:
        walk(components, at)
        return errors
    if len(components) > 5:
        errors.append(_too_long(at, 5))
    for i, row in enumerate(components):
        here = f"{at}.{i}"
        if not isinstance(row, dict) or row.get("type") != 1:
            errors.append(
                FieldError(
                    f"{here}.type",
                    "UNION_TYPE_CHOICES",
                    'Value of field "type" must be one of (1,).',
                )
            )
            continue
        children = row.get("components")
        if not isinstance(children, list) or not children:
            errors.append(
                FieldError(
                    f"{here}.components", "BASE_TYPE_MIN_LENGTH", "Must be 1 or more in length."
                )
            )
            continue
        if len(children) > 5:
            errors.append(_too_long(f"{here}.components", 5))
        selects = [c for c in children if isinstance(c, dict) and c.get("type") in _SELECT_TYPES]
        if selects and len(children) > 1:
            errors.append(
                FieldError(
                    f"{here}.components",
                    "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                    "The specified component exceeds the maximum width",
                )
            )
        walk(children, f"{here}.components")
    return errors


def _choice_errors(choices: Any, at: str) -> list[FieldError]:
    if not isinstance(choices, list):
        return [_required(at)]
    errors: list[FieldError] = []
    if len(choices) > 25:
        errors.append(_too_long(at, 25))
    for i, choice in enumerate(choices):
        choice = choice if isinstance(choice, dict) else {}
        name = _text(choice.get("name"))
        if not 1 <= len(name) <= 100:
            errors.append(
                FieldError(
                    f"{at}.{i}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                )
            )
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            errors.append(_too_long(f"{at}.{i}.value", 100))
    return errors


def _modal_errors(data: Mapping[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    custom_id, title = _text(data.get("custom_id")), _text(data.get("title"))
    if not custom_id:
        errors.append(_required("data.custom_id"))
    elif len(custom_id) > 100:
        errors.append(_too_long("data.custom_id", 100))
    if not title:
        errors.append(_required("data.title"))
    elif len(title) > 45:
        errors.append(_too_long("data.title", 45))
    components = data.get("components")
    if isinstance(components, list):
        if len(components) > 5:
            errors.append(_too_long("data.components", 5))
        errors += _component_errors(components, "data.components", v2=True)
    return errors


def _thread_name_errors(name: Any, at: str) -> list[FieldError]:
    if not isinstance(name, str) or not name:
        return [_required(at)]
    if len(name) > 100:
        return [FieldError(at, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")]
    return []


_COMMAND_NAME = re.compile(r"[-_'\w]{1,32}")


def command_errors(commands: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """Violations of Discord's application-command rules for a bulk overwrite.

    Names 1–32 word characters, lower case for slash commands; descriptions 1–100 (also in
    each ``*_localizations``); ≤ 25 options and choices; required options first; names unique
    per command type; ≤ 100 slash commands. discord.py turns the answer into
    ``CommandSyncFailure``.
    """
    errors: list[FieldError] = []
    seen: set[tuple[int, str]] = set()
    if sum(1 for c in commands if int(c.get("type", 1)) == 1) > 100:
        errors.append(_too_long("_root", 100))
    for i, cmd in enumerate(commands):
        kind = int(cmd.get("type", 1))
        errors += _command_item_errors(cmd, str(i), slash=kind == 1, option=False)
        name = _text(cmd.get("name"))
        if (kind, name) in seen:
            errors.append(
                FieldError(
                    f"{i}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            )
        seen.add((kind, name))
    return errors


def _command_item_errors(
    item: Mapping[str, Any], at: str, *, slash: bool, option: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    names = {"": item.get("name"), **(item.get("name_localizations") or {})}
    for locale, name in names.items():
        here = f"{at}.name_localizations.{locale}" if locale else f"{at}.name"
        text = _text(name)
        if not _COMMAND_NAME.fullmatch(text) or (slash and text != text.lower()):
            errors.append(
                FieldError(
                    here,
                    "APPLICATION_COMMAND_INVALID_NAME",
                    f"Command name is invalid: {text!r}",
                )
            )
    if slash:
        descriptions = {
            "": item.get("description"),
            **(item.get("description_localizations") or {}),
        }
        for locale, description in descriptions.items():
            here = f"{at}.description_localizations.{locale}" if locale else f"{at}.description"
            if not 1 <= len(_text(description)) <= 100:
                errors.append(
                    FieldError(here, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
                )
    options = item.get("options") or []
    if isinstance(options, list) and slash:
        if len(options) > 25:
            errors.append(_too_long(f"{at}.options", 25))
        seen_optional = False
        for j, opt in enumerate(options):
            if not isinstance(opt, dict):
                continue
            here = f"{at}.options.{j}"
            errors += _command_item_errors(opt, here, slash=True, option=True)
            if opt.get("type") not in (1, 2):
                if opt.get("required"):
                    if seen_optional:
                        errors.append(
                            FieldError(
                                f"{here}.required",
                                "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                "Required options must be placed before non-required options",
                            )
                        )
                else:
                    seen_optional = True
            choices = opt.get("choices")
            if isinstance(choices, list):
                errors += _choice_errors(choices, f"{here}.choices")
    return errors


def _is_empty(body: Mapping[str, Any], files: Sequence[UploadedFile]) -> bool:
    """Discord's 50006: nothing to show (no content, embeds, components, files, stickers…)."""
    return not (
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or body.get("poll")
        or files
    )


def _form_error_body(errors: Iterable[FieldError]) -> dict[str, Any]:
    """Discord's nested ``errors`` tree: ``{"embeds": {"0": {"title": {"_errors": [...]}}}}``,
    which discord.py flattens to "In embeds.0.title: Must be 256 or fewer in length."."""
    tree: dict[str, Any] = {}
    for error in errors:
        node = tree
        if error.path != "_root":
            for part in error.path.split("."):
                node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": error.code, "message": error.message})
    return {"code": 50035, "errors": tree, "message": _ERROR_MESSAGES[50035]}


def _json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """JSON with ``Content-Type: application/json`` exactly, as Discord sends it: discord.py
    compares the header verbatim and treats ``application/json; charset=utf-8`` (aiohttp's
    ``json_response``) as text, which then breaks wherever it expects a dict."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(
        body=text.encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _json_error(status: int, code: int, message: str | None = None) -> web.Response:
    text = message or _ERROR_MESSAGES.get(code, f"{status}: Error")
    return _json_response({"message": text, "code": code}, status=status)


def _bucket_headers(route: str, *, remaining: int, reset_after: float) -> dict[str, str]:
    """``X-RateLimit-*`` as Discord sends them; discord.py keys its buckets on them."""
    return {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": hashlib.sha1(route.encode()).hexdigest()[:32],
    }


# -- interaction builders ------------------------------------------------------------------

_OPTION_TYPES_BY_VALUE: Final[tuple[tuple[type, int], ...]] = ((bool, 5), (int, 4), (float, 10))


def command_interaction(
    command: Mapping[str, Any] | str,
    path: str = "",
    options: Mapping[str, Any] | None = None,
    *,
    guild_id: int | None = GUILD_ID,
    channel_id: int | None = None,
    channel: Mapping[str, Any] | None = None,
    user_id: int = USER_ID,
    username: str | None = None,
    permissions: int = PERMISSIONS_MEMBER,
    app_permissions: int = BOT_PERMISSIONS,
    locale: str = "ja",
) -> dict[str, Any]:
    """An APPLICATION_COMMAND (type 2) INTERACTION_CREATE for ``/<command> <path> [options]``.

    `command` should be the synced command (`DiscordServer.command`): discord.py's
    ``CommandTree`` finds the callback by ``data.name`` and ``data.guild_id`` (for guild
    commands), and the option types come from it, so a mistyped option name raises here. A
    plain name works too (types then follow the Python values). `path` is the subcommand
    (``"latest"``) or group and subcommand (``"sources add"``). ``guild_id=None`` builds the
    DM variant: ``user`` instead of ``member``, a type-1 channel (`dm_channel_id`), context 1.
    Options of user/channel/role types are passed as ids without ``resolved`` data.
    """
    data = _command_data(command, path, options or {}, focused=None)
    return _interaction_base(
        2,
        data,
        guild_id=guild_id,
        channel_id=channel_id,
        channel=channel,
        user_id=user_id,
        username=username,
        permissions=permissions,
        app_permissions=app_permissions,
        locale=locale,
    )


def autocomplete_interaction(
    command: Mapping[str, Any] | str,
    path: str,
    options: Mapping[str, Any],
    focused: str,
    *,
    guild_id: int | None = GUILD_ID,
    channel_id: int | None = None,
    user_id: int = USER_ID,
    permissions: int = PERMISSIONS_MEMBER,
    locale: str = "ja",
) -> dict[str, Any]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE (type 4): `options` as typed so far, with the
    `focused` one flagged and sent as the raw text the user typed (a string, as Discord
    does); answer with callback type 8."""
    if focused not in options:
        raise ValueError(f"focused option {focused!r} is not among {sorted(options)}")
    data = _command_data(command, path, options, focused=focused)
    return _interaction_base(
        4,
        data,
        guild_id=guild_id,
        channel_id=channel_id,
        channel=None,
        user_id=user_id,
        username=None,
        permissions=permissions,
        app_permissions=BOT_PERMISSIONS,
        locale=locale,
    )


def component_interaction(
    custom_id: str,
    message: Mapping[str, Any] | PostedMessage,
    *,
    component_type: int = 2,
    values: Sequence[str] | None = None,
    guild_id: int | None = GUILD_ID,
    user_id: int = USER_ID,
    permissions: int = PERMISSIONS_MEMBER,
    locale: str = "ja",
) -> dict[str, Any]:
    """A MESSAGE_COMPONENT (type 3): a click on button `custom_id` (or a select with
    `values`) of `message` (a `PostedMessage` this server created, or a message object).
    discord.py routes it to a persistent view registered with ``client.add_view``."""
    raw = message.as_json() if isinstance(message, PostedMessage) else dict(message)
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
    if values is not None:
        data["values"] = list(values)
    return _interaction_base(
        3,
        data,
        guild_id=guild_id,
        channel_id=int(raw["channel_id"]),
        channel=None,
        user_id=user_id,
        username=None,
        permissions=permissions,
        app_permissions=BOT_PERMISSIONS,
        locale=locale,
        message=raw,
    )


def _command_data(
    command: Mapping[str, Any] | str,
    path: str,
    options: Mapping[str, Any],
    *,
    focused: str | None,
) -> dict[str, Any]:
    spec: Mapping[str, Any] = {"name": command} if isinstance(command, str) else command
    data: dict[str, Any] = {
        "id": str(spec.get("id") or snowflake()),
        "name": spec["name"],
        "type": int(spec.get("type", 1)),
    }
    if spec.get("guild_id"):
        data["guild_id"] = str(spec["guild_id"])
    declared: list[Mapping[str, Any]] = list(spec.get("options") or [])
    wrappers: list[tuple[str, int]] = []
    for name in path.split():
        sub = next((o for o in declared if o.get("name") == name), None)
        if sub is None and isinstance(command, str):
            sub = {"name": name, "type": 1, "options": []}
        if sub is None or sub.get("type") not in (1, 2):
            raise ValueError(f"{spec['name']} has no subcommand or group {name!r} (in {path!r})")
        wrappers.append((name, int(sub["type"])))
        declared = list(sub.get("options") or [])
    by_name = {str(o.get("name")): o for o in declared}
    leaf: list[dict[str, Any]] = []
    for name, value in options.items():
        if name not in by_name and not isinstance(command, str):
            raise ValueError(f"/{spec['name']} {path} has no option {name!r}: {sorted(by_name)}")
        kind = int(by_name[name]["type"]) if name in by_name else _option_type(value)
        item: dict[str, Any] = {"name": name, "type": kind, "value": value}
        if name == focused:
            item["focused"] = True
            item["value"] = str(value)
        leaf.append(item)
    nested: list[dict[str, Any]] = leaf
    for name, kind in reversed(wrappers):
        nested = [{"name": name, "type": kind, "options": nested}]
    if nested:
        data["options"] = nested
    return data


def _option_type(value: Any) -> int:
    for python_type, option_type in _OPTION_TYPES_BY_VALUE:
        if isinstance(value, python_type):
            return option_type
    return 3


def _interaction_base(
    kind: int,
    data: dict[str, Any],
    *,
    guild_id: int | None,
    channel_id: int | None,
    channel: Mapping[str, Any] | None,
    user_id: int,
    username: str | None,
    permissions: int,
    app_permissions: int,
    locale: str,
    message: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fields every interaction carries; discord.py reads ``version`` and
    ``attachment_size_limit`` unconditionally and takes the channel from ``channel``."""
    if guild_id is None:
        channel_id = channel_id if channel_id is not None else dm_channel_id(user_id)
        raw_channel = (
            dict(channel)
            if channel
            else {
                "id": str(channel_id),
                "type": _CHANNEL_DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [user_json(user_id, username)],
            }
        )
    else:
        channel_id = channel_id if channel_id is not None else TEXT_CHANNEL_ID
        raw_channel = (
            dict(channel)
            if channel
            else {
                "id": str(channel_id),
                "type": _CHANNEL_TEXT,
                "guild_id": str(guild_id),
                "name": "ainews",
                "position": 0,
                "parent_id": None,
                "permission_overwrites": [],
                "nsfw": False,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
            }
        )
    token = f"aW50ZXJhY3Rpb246{uuid.uuid4().hex}{uuid.uuid4().hex}"
    body: dict[str, Any] = {
        "id": str(snowflake()),
        "application_id": str(APP_ID),
        "type": kind,
        "data": data,
        "token": token,
        "version": 1,
        "channel_id": str(channel_id),
        "channel": raw_channel,
        "app_permissions": str(app_permissions),
        "locale": locale,
        "entitlements": [],
        "entitlement_sku_ids": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if guild_id is None:
        body["user"] = user_json(user_id, username)
        body["context"] = 1
        body["authorizing_integration_owners"] = {"0": str(GUILD_ID)}
    else:
        body["guild_id"] = str(guild_id)
        body["guild"] = {"id": str(guild_id), "locale": "ja", "features": []}
        body["guild_locale"] = "ja"
        body["member"] = _member_json(user_id, permissions=permissions, username=username)
        body["context"] = 0
        body["authorizing_integration_owners"] = {"0": str(guild_id)}
    if message is not None:
        body["message"] = dict(message)
    return body


def _interaction_metadata(payload: Mapping[str, Any]) -> dict[str, Any]:
    user = payload.get("member", {}).get("user") or payload.get("user") or {}
    metadata: dict[str, Any] = {
        "id": str(payload["id"]),
        "type": payload["type"],
        "user": user,
        "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
    }
    name = payload.get("data", {}).get("name")
    if name:
        metadata["name"] = name
    return metadata


def user_json(user_id: int, username: str | None = None) -> dict[str, Any]:
    """A user object; `BOT_USER_ID` is the bot "ainews" (``bot: true``)."""
    is_bot = user_id == BOT_USER_ID
    name = "ainews" if is_bot else (username or f"user{user_id % 10_000:04d}")
    return {
        "id": str(user_id),
        "username": name,
        "global_name": None if is_bot else name.title(),
        "discriminator": "0" if not is_bot else "1234",
        "avatar": None,
        "public_flags": 0,
        "bot": is_bot,
    }


def _member_json(
    user_id: int, *, permissions: int | None, username: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "user": user_json(user_id, username),
        "roles": [],
        "joined_at": snowflake_time(user_id).isoformat(),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "nick": None,
        "avatar": None,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if permissions is not None:
        body["permissions"] = str(permissions)
    return body


def dm_channel_id(user_id: int) -> int:
    """The id this server gives the DM channel with `user_id`: deterministic, so a DM
    interaction built without the server and the REST-opened DM agree."""
    return _DM_CHANNEL_BASE + user_id % 10**15


def _guild_shard(guild_id: int, shard: Any) -> bool:
    """Discord's shard formula, ``(guild_id >> 22) % num_shards``."""
    if not isinstance(shard, list) or len(shard) != 2:
        return True
    shard_id, count = int(shard[0]), int(shard[1])
    return count <= 1 or (guild_id >> 22) % count == shard_id


# -- helpers -------------------------------------------------------------------------------

_last_snowflake = 0


def snowflake() -> int:
    """A fresh Discord snowflake from the current time, strictly increasing process-wide, so
    ids sort by creation as Discord's do and ``discord.utils.snowflake_time`` is plausible."""
    global _last_snowflake
    candidate = (int(time.time() * 1000) - _DISCORD_EPOCH_MS) << 22
    _last_snowflake = max(candidate, _last_snowflake + 1)
    return _last_snowflake


def snowflake_time(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(((value >> 22) + _DISCORD_EPOCH_MS) / 1000, dt.UTC)


def _iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile], bool]:
    """JSON, or multipart with ``payload_json`` plus ``files[i]`` parts, as discord.py sends
    them; the flag is False for a body Discord would reject as invalid JSON."""
    if not request.can_read_body:
        return None, [], True
    if request.content_type == "multipart/form-data":
        form = await request.post()
        payload: Any = None
        files: list[UploadedFile] = []
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files.append(
                    UploadedFile(key, value.filename, value.content_type, value.file.read())
                )
            elif key == "payload_json":
                try:
                    payload = json.loads(value)
                except ValueError:
                    return None, files, False
        return payload, files, True
    text = await request.text()
    if not text:
        return None, [], True
    try:
        return json.loads(text), [], True
    except ValueError:
        return None, [], False


async def _close(connection: _Connection, code: int, reason: bytes) -> None:
    """Close from the server side, remembering our code (the client answers with its own)."""
    if connection.session.close_code is None:
        connection.session.close_code = code
    await connection.ws.close(code=code, message=reason)
