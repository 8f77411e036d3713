"""Discord ack benchmark: how fast `/ainews` interactions are acknowledged, idle and busy.

`uv run python bench/discord_ack.py` runs the shared ack benchmark (bench/_common.py, whose
docstring lists the phases) against Discord: the bot is the real adapter, `build_discord`,
started with `start_intake()` (login, command sync, gateway, READY) and pointed at the Discord
stand-in (tests/fakes/discord_server.py) through AINEWS_DISCORD_API_URL and
AINEWS_DISCORD_GATEWAY_URL. Each command is an `/ainews search query:…` or `/ainews ask
question:…` INTERACTION_CREATE sent over the gateway; its ack latency is the time from just
before the stand-in sends it to the moment the stand-in receives the interaction callback
(`POST /interactions/{id}/{token}/callback`, type 5 = deferred): Discord's 3-second window runs
between the same two points. The answers arrive as follow-ups.

The stand-in and the load generator share their own thread and loop in the world process
(the feed and model stand-ins run on its main loop), so the callback's arrival is recorded
without waiting behind the feed server's work.

The naive baseline wraps the command tree's `interaction_check` (discord.py's hook that runs
before any command): for the naive users it awaits the command's answer from the same
`ChatCore`, sends it as the interaction's response (callback type 4) and returns False, so the
adapter's command never runs for them — what a command doing the work before responding does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections import Counter
from typing import Any

import discord
from _common import (
    AckBench,
    LoadClient,
    PhaseRequest,
    PlatformStats,
    Sample,
    WorldReady,
    main,
    paced,
)

from bot.app import App
from bot.platforms.discord import (
    PLATFORM,
    DiscordBot,
    build_discord,
    controls_view,
    send_messages,
)
from bot.publishing.chat import Caller, ChatCore
from bot.publishing.platform import Platform
from bot.render.discord import reply_messages
from bot.scheduler import JobRunner
from tests.fakes.discord_server import (
    BOT_TOKEN,
    GUILD_ID,
    TEXT_CHANNEL_ID,
    ApiCall,
    CallbackType,
    DiscordServer,
    command_interaction,
)

CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"
FOLLOWUP = "POST /webhooks/{webhook_id}/{webhook_token}"
OPTION = {"search": "query", "ask": "question"}  # the subcommands' one required option
ACK_PATIENCE = 10.0  # s to wait for a callback before calling the command unacked
WATCH_PERIOD = 0.002  # s between looks at the stand-in's recorded calls
USER_BASE = 1_000_000_000_000_000_100

log = logging.getLogger("bench.discord_ack")


# ── the world process: the Discord stand-in and the interactions ────────────────────────────


def _callback_type(call: ApiCall) -> int | None:
    body = call.json if isinstance(call.json, dict) else {}
    kind = body.get("type")
    return kind if isinstance(kind, int) else None


class DiscordStandIn:
    """The Discord stand-in on the load client's loop. Each command waits for its callback
    through one watcher task rather than polling per command: the latency is the callback's
    own recorded arrival (`ApiCall.at`), so the watcher's period only delays freeing the
    concurrency slot, never the measurement."""

    def __init__(self, load: LoadClient) -> None:
        self.load = load
        self._server: DiscordServer | None = None
        self._watch: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[ApiCall]] = {}
        self.phase_of: dict[str, str] = {}  # interaction token → phase name

    @property
    def server(self) -> DiscordServer:
        assert self._server is not None, "the stand-in is not started"
        return self._server

    async def start(self) -> dict[str, str]:
        return await self.load.run(self._start())

    async def _start(self) -> dict[str, str]:
        self._server = DiscordServer()  # Discord's 3 s callback window (interaction_timeout)
        await self._server.start()
        self._watch = asyncio.create_task(self._watch_callbacks())
        return {"api_url": self.server.api_url, "gateway_url": self.server.gateway_url}

    async def _watch_callbacks(self) -> None:
        seen = 0
        while True:
            calls = self.server.calls
            for call in calls[seen:]:
                if call.route == CALLBACK:
                    waiter = self._waiting.pop(call.params["webhook_token"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(call)
            seen = len(calls)
            await asyncio.sleep(WATCH_PERIOD)

    async def run_phase(self, request: PhaseRequest) -> list[Sample]:
        return await self.load.run(self._phase(request))

    async def _phase(self, request: PhaseRequest) -> list[Sample]:
        server = self.server
        command = server.command("ainews", GUILD_ID)  # as synced by the bot at start
        loop = asyncio.get_running_loop()
        expected = CallbackType.MESSAGE if request.naive else CallbackType.DEFERRED_MESSAGE

        async def send(i: int, text: str, scheduled: float) -> Sample:
            name, _, value = text.partition(" ")
            user = int(request.users[i % len(request.users)])
            payload = command_interaction(command, name, {OPTION[name]: value}, user_id=user)
            token = str(payload["token"])
            self.phase_of[token] = request.name
            arrived: asyncio.Future[ApiCall] = loop.create_future()
            self._waiting[token] = arrived
            start = time.monotonic()
            try:
                await server.send_interaction(payload)
                call = await asyncio.wait_for(arrived, ACK_PATIENCE)
            except Exception as exc:
                self._waiting.pop(token, None)
                error = f"no callback within {ACK_PATIENCE:.0f} s ({exc!r})"
                return Sample(i, text, scheduled, start, time.monotonic(), False, error)
            kind = _callback_type(call)
            ok = kind == expected
            error = "" if ok else f"callback type {kind}, expected {int(expected)}"
            return Sample(i, text, scheduled, start, call.at, ok, error)

        return await paced(request, send)

    async def stats(self) -> PlatformStats:
        return await self.load.run(self._stats())

    async def _stats(self) -> PlatformStats:
        """An interaction is answered by an accepted follow-up (after the defer) or, for the
        naive baseline, by an accepted type-4 callback."""
        answered: set[str] = set()
        for call in self.server.calls:
            if call.status is None or not 200 <= call.status < 300:
                continue
            if call.route == FOLLOWUP or (
                call.route == CALLBACK and _callback_type(call) == CallbackType.MESSAGE
            ):
                answered.add(call.params["webhook_token"])
        counts = Counter(self.phase_of[t] for t in answered if t in self.phase_of)
        return PlatformStats(dict(counts), len(self.server.messages))

    async def stop(self) -> None:
        await self.load.run(self._stop())

    async def _stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self._server is not None:
            await self._server.close()


# ── the bot process: the adapter and the naive baseline ─────────────────────────────────────


def command_text(data: Any) -> str:
    """`/ainews search query:規制` → `search 規制`: the subcommand and its option values, as
    the adapter's `search` / `ask` commands build the text for these two."""
    subcommand = (data or {}).get("options", [{}])[0]
    values = [str(o.get("value", "")) for o in subcommand.get("options", [])]
    return " ".join([str(subcommand.get("name", "")), *values])


def answer_before_ack(bot: DiscordBot, naive_users: frozenset[int]) -> None:
    """The naive baseline: `naive_users`' interactions are answered in the tree's
    `interaction_check`, which awaits `ChatCore.command` and sends the reply as the
    interaction's response, then returns False so the adapter's command (defer, answer later)
    does not run. Everyone else's go through the adapter's own check."""
    check = bot.tree.interaction_check

    async def naive_or_check(interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id not in naive_users:
            return await check(interaction)
        caller = Caller(PLATFORM, str(interaction.user.id), str(interaction.channel_id))
        answer = await bot.core.command(caller, command_text(interaction.data))
        first, *rest = reply_messages(answer.reply)
        view = controls_view(answer.controls)
        try:
            send = interaction.response.send_message
            await send_messages(send, [first], view=None if rest else view, ephemeral=True)
            if rest:
                await send_messages(interaction.followup.send, rest, view=view, ephemeral=True)
        except discord.HTTPException as exc:  # e.g. 10062 once the 3 s are over
            log.warning("naive answer refused", extra={"status": exc.status, "code": exc.code})
        return False

    bot.tree.interaction_check = naive_or_check  # type: ignore[method-assign]


class DiscordAck:
    """The Discord side of the shared benchmark (`_common.AckBench`)."""

    name = "Discord"
    answers_at = "as follow-ups"
    naive_answers_at = "in the callback"
    channel = f"channel {TEXT_CHANNEL_ID}"
    stand_in = DiscordStandIn

    def __init__(self) -> None:
        self.users = [str(USER_BASE + i) for i in range(10)]
        self.naive_users = [str(USER_BASE + 100 + i) for i in range(10)]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass  # nothing Discord-specific to tune: the thread is posted without a pace

    def settings(self, ready: WorldReady, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "DISCORD_TOKEN": BOT_TOKEN,
            "AINEWS_DISCORD_CHANNEL_ID": TEXT_CHANNEL_ID,
            "AINEWS_DISCORD_GUILD_ID": GUILD_ID,
            "AINEWS_DISCORD_API_URL": ready.endpoints["api_url"],
            "AINEWS_DISCORD_GATEWAY_URL": ready.endpoints["gateway_url"],
        }

    def describe_settings(self, args: argparse.Namespace) -> str:
        return ""

    def versions(self) -> str:
        return f"discord.py {discord.__version__}"

    def build(self, app: App, core: ChatCore, runner: JobRunner) -> Platform:
        platform = build_discord(app, core=core, spawn=runner.spawn)
        assert isinstance(platform.intake, DiscordBot)
        answer_before_ack(platform.intake, frozenset(int(u) for u in self.naive_users))
        return platform

    def target(self, platform: Platform) -> str:
        return ""  # the stand-in sends the interactions on its gateway


if __name__ == "__main__":
    spec: AckBench = DiscordAck()
    sys.exit(main(spec, (__doc__ or "").split("\n\n")[0]))
