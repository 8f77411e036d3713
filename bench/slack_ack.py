"""Slack ack benchmark: how fast `/ainews` slash commands are acknowledged, idle and busy.

`uv run python bench/slack_ack.py` runs the shared ack benchmark (bench/_common.py, whose
docstring lists the phases) against Slack: the bot is the real adapter, `build_slack` in HTTP
mode as `ainews run` starts it, pointed at the Slack stand-in (tests/fakes/slack_server.py).
Each command is a signed `/ainews …` slash-command POST to the bot's `/slack/events`, sent from
the world process's load thread and timed until the HTTP response — the ack Slack waits for;
the answers arrive at the command's response_url.

The naive baseline is a global bolt middleware (public bolt API, installed by the bench) that
takes the naive users' commands before the adapter's listener: it awaits the command's answer
from the same `ChatCore` and returns it as the ack, which is what a listener doing the work
before `ack()` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
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
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.response import BoltResponse

from bot.app import App
from bot.platforms.slack import PLATFORM, SlackBot, build_slack, unwrap_links
from bot.publishing.chat import Caller, ChatCore
from bot.publishing.platform import Platform
from bot.render.slack import reply_blocks, reply_text
from bot.scheduler import JobRunner
from tests.fakes.slack_server import SlackServer, sign_request, slash_command_body

SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH"


# ── the world process: the Slack stand-in and the signed command POSTs ──────────────────────


async def send_commands(request: PhaseRequest, response_urls: list[str]) -> list[Sample]:
    connector = aiohttp.TCPConnector(limit=request.concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def send(i: int, text: str, scheduled: float) -> Sample:
            user = request.users[i % len(request.users)]
            body = slash_command_body(text, user_id=user, response_url=response_urls[i])
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                **sign_request(SECRET, body),
            }
            start = time.monotonic()
            ok, error, answered = False, "", False
            try:
                async with http.post(request.target, data=body, headers=headers) as resp:
                    content = await resp.read()
                    ok = resp.status == 200
                    error = "" if ok else f"HTTP {resp.status}"
                    answered = b'"blocks"' in content
            except Exception as exc:
                error = repr(exc)
            end = time.monotonic()
            return Sample(i, text, scheduled, start, end, ok, error, answered)

        return await paced(request, send)


class SlackStandIn:
    """The Slack stand-in (Web API and response_url) on the world process's main loop; the
    commands go out from the load client's thread and are timed there, client-side."""

    def __init__(self, load: LoadClient) -> None:
        self.load = load
        self.server = SlackServer()
        self.answered_in_ack: Counter[str] = Counter()

    async def start(self) -> dict[str, str]:
        await self.server.start()
        return {"api_url": self.server.api_url}

    async def run_phase(self, request: PhaseRequest) -> list[Sample]:
        urls = [self.server.response_url(request.name) for _ in request.texts]
        samples = await self.load.run(send_commands(request, urls))
        self.answered_in_ack[request.name] += sum(s.answered for s in samples)
        return samples

    async def stats(self) -> PlatformStats:
        answered = Counter(p.name for p in self.server.response_posts) + self.answered_in_ack
        return PlatformStats(dict(answered), len(self.server.messages_in(CHANNEL)))

    async def stop(self) -> None:
        await self.server.close()


# ── the bot process: the adapter and the naive baseline ─────────────────────────────────────


def answer_before_ack(bot: SlackBot, naive_users: frozenset[str]) -> None:
    """The naive baseline: `naive_users`' commands are answered by a global middleware that
    awaits `ChatCore.command` and returns the reply as the ack, before the adapter's listener
    (which acks at once and answers later) would see them. Everyone else's pass through."""

    async def naive(
        body: dict[str, Any],
        ack: AsyncAck,
        response: BoltResponse,
        next_: Callable[[], Awaitable[None]],
    ) -> BoltResponse:
        if body.get("command") != "/ainews" or body.get("user_id") not in naive_users:
            await next_()
            return response
        caller = Caller(PLATFORM, str(body["user_id"]), body.get("channel_id"))
        answer = await bot.core.command(caller, unwrap_links(str(body.get("text", ""))))
        reply = answer.reply
        return await ack(
            blocks=reply_blocks(reply, controls=answer.controls),
            text=reply_text(reply),
            response_type="ephemeral" if reply.ephemeral else "in_channel",
        )

    bot.bolt.middleware(naive)


class SlackAck:
    """The Slack side of the shared benchmark (`_common.AckBench`)."""

    name = "Slack"
    answers_at = "at their response_url"
    naive_answers_at = "in the ack"
    channel = CHANNEL
    stand_in = SlackStandIn

    def __init__(self) -> None:
        self.users = [f"UBENCH{i:02d}" for i in range(10)]
        self.naive_users = [f"UNAIVE{i:02d}" for i in range(10)]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--post-interval", type=float, default=0.2, help="AINEWS_SLACK_POST_INTERVAL (0.2)"
        )

    def settings(self, ready: WorldReady, args: argparse.Namespace) -> dict[str, Any]:
        return {
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "AINEWS_SLACK_CHANNEL": CHANNEL,
            "SLACK_API_URL": ready.endpoints["api_url"],
            "AINEWS_HTTP_HOST": "127.0.0.1",
            "AINEWS_HTTP_PORT": 0,
            "AINEWS_SLACK_POST_INTERVAL": args.post_interval,
        }

    def describe_settings(self, args: argparse.Namespace) -> str:
        return f"AINEWS_SLACK_POST_INTERVAL={args.post_interval:g}"

    def versions(self) -> str:
        import slack_bolt.version

        return f"slack_bolt {slack_bolt.version.__version__}"

    def build(self, app: App, core: ChatCore, runner: JobRunner) -> Platform:
        platform = build_slack(app, core=core, spawn=runner.spawn)
        assert isinstance(platform.intake, SlackBot)
        answer_before_ack(platform.intake, frozenset(self.naive_users))
        return platform

    def target(self, platform: Platform) -> str:
        assert isinstance(platform.intake, SlackBot)
        return f"http://127.0.0.1:{platform.intake.http_port}/slack/events"


if __name__ == "__main__":
    spec: AckBench = SlackAck()
    sys.exit(main(spec, (__doc__ or "").split("\n\n")[0]))
