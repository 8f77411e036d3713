"""The Discord stand-in, driven by the real discord.py client over real HTTP and WebSocket.

These tests pin down the contract other tests rely on: that discord.py reaches the server
through the two seams (``Route.BASE`` and ``DiscordWebSocket.DEFAULT_GATEWAY``), that login,
the gateway handshake, command sync and interaction webhooks all parse on discord.py's side,
and that each scripted fault reaches the client the way Discord's would.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakes.discord_server import (
    APP_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    EPHEMERAL,
    FORUM_CHANNEL_ID,
    GUILD_ID,
    PERMISSIONS_MANAGER,
    TEXT_CHANNEL_ID,
    USER_ID,
    CallbackType,
    DiscordServer,
    autocomplete_interaction,
    command_errors,
    command_interaction,
    component_interaction,
    dm_channel_id,
    message_errors,
)

START_TIMEOUT = 5.0
MESSAGES_ROUTE = "POST /channels/{channel_id}/messages"


@asynccontextmanager
async def serve(**kwargs: Any) -> AsyncIterator[DiscordServer]:
    """A running fake with discord.py's two seams pointed at it, restored afterwards.

    Both are class attributes that discord.py reads at call time, so plain assignment is the
    seam; restoring them keeps one test's port out of the next.
    """
    async with DiscordServer(**kwargs) as server:
        saved_base, saved_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE = server.api_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
        try:
            yield server
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved_base, saved_gateway


@pytest.fixture
async def fake() -> AsyncIterator[DiscordServer]:
    async with serve() as server:
        yield server


def nowhere() -> yarl.URL:
    """A loopback ws:// URL nothing listens on, so a client that uses it fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return yarl.URL(f"ws://127.0.0.1:{port}/nothing-here")


def guild_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    return intents


def make_client(**kwargs: Any) -> discord.Client:
    """`guild_ready_timeout` is discord.py's wait after the last GUILD_CREATE before
    on_ready (2 s by default); the fake sends them all at once, so a short one suffices."""
    return discord.Client(intents=guild_intents(), guild_ready_timeout=0.05, **kwargs)


@asynccontextmanager
async def running(
    client: discord.Client, before_connect: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[discord.Client]:
    """Log in, connect in a task, wait for on_ready; close and reap the task on exit.

    `before_connect` runs after login (application id known, HTTP session open), where a
    real bot would sync commands in ``setup_hook``.
    """
    async with client:
        await client.login(BOT_TOKEN)
        if before_connect is not None:
            await before_connect()
        connect = asyncio.create_task(client.connect())
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {connect, ready}, timeout=START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if connect in done:
                connect.result()  # raises what stopped the gateway
            assert ready in done, "client did not become ready"
            yield client
        finally:
            ready.cancel()
            await client.close()
            await asyncio.wait_for(connect, 2.0)


def ainews_tree(client: discord.Client, seen: list[str]) -> app_commands.CommandTree:
    """``/ainews latest``, ``/ainews sources add url:`` (with autocomplete) and
    ``/ainews whoami``, shaped like the bot's commands; callbacks note what they saw."""
    tree = app_commands.CommandTree(client)
    ainews = app_commands.Group(name="ainews", description="AIニュース")
    sources = app_commands.Group(name="sources", description="ソースの管理", parent=ainews)

    @ainews.command(name="latest", description="最新のニュースを表示")
    async def latest(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("最新ニュース")
        original = await interaction.original_response()
        seen.append(f"latest {original.content}")
        await interaction.edit_original_response(content="最新ニュース(更新)")

    @ainews.command(name="whoami", description="権限を表示")
    async def whoami(interaction: discord.Interaction) -> None:
        perms = interaction.permissions
        seen.append(f"manage_guild={perms.manage_guild} dm={interaction.guild is None}")
        await interaction.response.send_message("ok", ephemeral=True)

    @sources.command(name="add", description="フィードを追加")
    @app_commands.describe(url="フィードのURL")
    async def add(interaction: discord.Interaction, url: str) -> None:
        seen.append(f"add {url} locale={interaction.locale.value}")
        await interaction.response.defer(ephemeral=True)
        await interaction.followup.send(f"追加しました: {url}", ephemeral=True)

    @add.autocomplete("url")
    async def url_choices(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        seen.append(f"autocomplete {current}")
        return [app_commands.Choice(name=f"{current}/feed", value=f"{current}/feed")]

    tree.add_command(ainews)
    return tree


# -- login and gateway ---------------------------------------------------------------------


@pytest.mark.parametrize("zlib_stream", [False, True], ids=["text-frames", "zlib-stream"])
async def test_login_and_gateway_reach_ready_with_guild_channels(zlib_stream: bool) -> None:
    async with serve(zlib_stream=zlib_stream) as fake:
        client = make_client()
        async with running(client):
            session = await fake.wait_for_ready()
            text = client.get_channel(TEXT_CHANNEL_ID)
            forum = client.get_channel(FORUM_CHANNEL_ID)
            guild = client.get_guild(GUILD_ID)

            assert client.user is not None and client.user.id == BOT_USER_ID
            assert client.application_id == APP_ID
            assert isinstance(text, discord.TextChannel) and text.name == "ainews"
            assert isinstance(forum, discord.ForumChannel)
            assert guild is not None and guild.me is not None and guild.me.id == BOT_USER_ID
            assert session.intents == guild_intents().value
            assert session.path == "/gateway"
            assert session.query["v"] == "10"
            assert session.query["compress"] == "zlib-stream"
            assert [m["t"] for m in session.sent if m["op"] == 0] == ["READY", "GUILD_CREATE"]
            assert session.heartbeats >= 1  # discord.py beats as soon as HELLO arrives

    startup = [c.route for c in fake.calls]
    assert startup == ["GET /users/@me", "GET /oauth2/applications/@me"]
    assert fake.calls[0].headers["authorization"] == f"Bot {BOT_TOKEN}"


async def test_plain_client_ignores_gateway_bot_so_default_gateway_is_the_seam(
    fake: DiscordServer,
) -> None:
    DiscordWebSocket.DEFAULT_GATEWAY = nowhere()
    client = make_client()
    async with client:
        await client.login(BOT_TOKEN)
        with pytest.raises((OSError, aiohttp.ClientError)):
            await asyncio.wait_for(client.connect(reconnect=False), START_TIMEOUT)

    assert fake.calls_to("GET /gateway/bot") == []
    assert fake.gateway_sessions == []


async def test_auto_sharded_client_follows_gateway_bot(fake: DiscordServer) -> None:
    DiscordWebSocket.DEFAULT_GATEWAY = nowhere()
    client = discord.AutoShardedClient(intents=guild_intents(), guild_ready_timeout=0.05)
    async with running(client):
        session = await fake.wait_for_ready()

        assert client.get_channel(TEXT_CHANNEL_ID) is not None
        assert session.identify is not None and session.identify["shard"] == [0, 1]
    assert len(fake.calls_to("GET /gateway/bot")) == 1


async def test_disallowed_privileged_intent_is_closed_with_4014(fake: DiscordServer) -> None:
    intents = guild_intents()
    intents.message_content = True
    client = discord.Client(intents=intents)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running(client):
            pass

    assert fake.gateway_sessions[0].close_code == 4014


@pytest.mark.parametrize("how", ["close-4000", "op7-reconnect"])
async def test_dropped_connection_resumes_on_resume_gateway_url(
    fake: DiscordServer, how: str
) -> None:
    seen: list[str] = []
    client = make_client()
    tree = ainews_tree(client, seen)
    tree.copy_global_to(guild=discord.Object(GUILD_ID))

    async def sync() -> None:
        await tree.sync(guild=discord.Object(GUILD_ID))

    async with running(client, sync):
        first = await fake.wait_for_ready()
        dropped = await (fake.disconnect_all() if how == "close-4000" else fake.send_reconnect())
        resumed = await fake.wait_for_resumed()
        token = await fake.send_interaction(
            command_interaction(fake.command("ainews", GUILD_ID), "latest")
        )
        callback, edit = await fake.wait_for_interaction_response(token, count=2)

    assert dropped == 1
    assert resumed.path == "/gateway/resume"
    assert resumed.session_id == first.session_id
    assert resumed.sent[-1]["s"] > first.seq  # the sequence carried on
    assert len(fake.gateway_sessions) == 2  # resumed, not re-identified
    assert seen == ["latest 最新ニュース"]
    assert (callback.type, callback.content, callback.ephemeral) == (4, "最新ニュース", False)
    assert (edit.kind, edit.target, edit.content) == ("edit", "@original", "最新ニュース(更新)")
    assert fake.message(callback.message_id or 0).content == "最新ニュース(更新)"
    assert fake.calls_to("GET /webhooks/{webhook_id}/{webhook_token}/messages/@original")


# -- commands and interactions -------------------------------------------------------------


async def test_group_subcommand_is_dispatched_and_defer_then_followup_recorded(
    fake: DiscordServer,
) -> None:
    seen: list[str] = []
    client = make_client()
    tree = ainews_tree(client, seen)
    tree.copy_global_to(guild=discord.Object(GUILD_ID))
    synced: list[app_commands.AppCommand] = []

    async def sync() -> None:
        synced.extend(await tree.sync(guild=discord.Object(GUILD_ID)))

    async with running(client, sync):
        payload = command_interaction(
            fake.command("ainews", GUILD_ID), "sources add", {"url": "https://example.com/rss"}
        )
        token = await fake.send_interaction(payload)
        callback, followup = await fake.wait_for_interaction_response(token, count=2)

    assert [s.guild_id for s in fake.command_syncs] == [GUILD_ID]
    [command] = fake.command_syncs[0].payload
    assert command["name"] == "ainews"
    assert {o["name"] for o in command["options"]} == {"latest", "whoami", "sources"}
    assert [c.id for c in synced] == [int(fake.command("ainews", GUILD_ID)["id"])]
    assert payload["data"]["options"][0]["type"] == 2  # subcommand group
    assert seen == ["add https://example.com/rss locale=ja"]

    assert (callback.kind, callback.type) == ("callback", CallbackType.DEFERRED_MESSAGE)
    assert callback.payload == {"flags": EPHEMERAL} and callback.ephemeral
    assert followup.kind == "followup" and followup.replaces_deferred
    assert followup.content == "追加しました: https://example.com/rss"
    assert followup.ephemeral
    assert followup.message_id is not None
    assert followup.message_id == callback.message_id  # the followup filled the placeholder
    [call] = fake.calls_to("POST /interactions/{webhook_id}/{webhook_token}/callback")
    assert call.query["with_response"] == "1"
    assert call.headers.get("authorization") is None  # interaction token, not bot token
    assert fake.message(followup.message_id).content == followup.content


async def test_permissions_locale_and_dm_variant(fake: DiscordServer) -> None:
    seen: list[str] = []
    client = make_client()
    tree = ainews_tree(client, seen)
    tree.copy_global_to(guild=discord.Object(GUILD_ID))

    async def sync() -> None:
        await tree.sync(guild=discord.Object(GUILD_ID))
        await tree.sync()

    async with running(client, sync):
        member = await fake.send_interaction(
            command_interaction(fake.command("ainews", GUILD_ID), "whoami", permissions=0)
        )
        manager = await fake.send_interaction(
            command_interaction(
                fake.command("ainews", GUILD_ID), "whoami", permissions=PERMISSIONS_MANAGER
            )
        )
        dm = await fake.send_interaction(
            command_interaction(fake.command("ainews"), "whoami", guild_id=None)
        )
        for token in (member, manager, dm):
            await fake.wait_for_interaction_response(token)

    assert seen == [
        "manage_guild=False dm=False",
        "manage_guild=True dm=False",
        "manage_guild=False dm=True",
    ]
    dm_payload = fake.interactions[-1]
    assert "member" not in dm_payload and dm_payload["user"]["id"] == str(USER_ID)
    assert dm_payload["channel"]["type"] == 1
    assert dm_payload["channel_id"] == str(dm_channel_id(USER_ID))
    assert all(r.type == CallbackType.MESSAGE and r.ephemeral for r in fake.interaction_responses)


async def test_autocomplete_returns_choices(fake: DiscordServer) -> None:
    seen: list[str] = []
    client = make_client()
    tree = ainews_tree(client, seen)
    tree.copy_global_to(guild=discord.Object(GUILD_ID))

    async def sync() -> None:
        await tree.sync(guild=discord.Object(GUILD_ID))

    async with running(client, sync):
        token = await fake.send_interaction(
            autocomplete_interaction(
                fake.command("ainews", GUILD_ID),
                "sources add",
                {"url": "https://exa"},
                focused="url",
            )
        )
        [response] = await fake.wait_for_interaction_response(token)

    assert seen == ["autocomplete https://exa"]
    assert response.type == CallbackType.AUTOCOMPLETE_RESULT
    assert response.payload["choices"] == [
        {"name": "https://exa/feed", "value": "https://exa/feed"}
    ]


async def test_button_click_updates_the_message(fake: DiscordServer) -> None:
    class MoreView(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="もっと見る", custom_id="ainews:more")
        async def more(
            self, interaction: discord.Interaction, button: discord.ui.Button[MoreView]
        ) -> None:
            await interaction.response.edit_message(content="続きです", view=None)

    client = make_client()
    async with running(client):
        client.add_view(MoreView())
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("見出し", view=MoreView())
        [posted] = fake.messages
        token = await fake.send_interaction(component_interaction("ainews:more", posted))
        [response] = await fake.wait_for_interaction_response(token)

    assert posted.id == sent.id
    assert posted.components[0]["components"][0]["custom_id"] == "ainews:more"
    assert response.type == CallbackType.UPDATE_MESSAGE
    updated = fake.message(sent.id)
    assert (updated.content, updated.components, updated.edited) == ("続きです", [], True)


async def test_late_callback_is_unknown_interaction(fake: DiscordServer) -> None:
    fake.interaction_timeout = 0.05
    errors: list[BaseException] = []
    client = make_client()
    tree = app_commands.CommandTree(client)

    @tree.command(name="slow", description="遅いコマンド", guild=discord.Object(GUILD_ID))
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.15)
        try:
            await interaction.response.send_message("遅すぎ")
        except discord.NotFound as exc:
            errors.append(exc)

    async def sync() -> None:
        await tree.sync(guild=discord.Object(GUILD_ID))

    async with running(client, sync):
        await fake.send_interaction(command_interaction(fake.command("slow", GUILD_ID)))
        await fake.wait_for("POST /interactions/{webhook_id}/{webhook_token}/callback")

    assert [getattr(e, "code", None) for e in errors] == [10062]
    assert fake.interaction_responses == []


# -- channels, threads, DMs ----------------------------------------------------------------


async def test_rate_limited_post_is_retried_and_recorded_once(fake: DiscordServer) -> None:
    fake.rate_limit(MESSAGES_ROUTE, times=1, retry_after=0.05)
    client = make_client()
    async with running(client):
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("今日のAIニュース")

    first, second = fake.calls_to(MESSAGES_ROUTE)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.05
    assert [m.id for m in fake.messages] == [sent.id]


async def test_global_rate_limit_is_waited_out(fake: DiscordServer) -> None:
    fake.rate_limit(f"POST /channels/{TEXT_CHANNEL_ID}/messages", retry_after=0.05, global_=True)
    client = make_client()
    async with running(client):
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        started = time.monotonic()
        await channel.send("hello")

    assert time.monotonic() - started >= 0.05
    assert [c.status for c in fake.calls_to(MESSAGES_ROUTE)] == [429, 200]
    assert len(fake.messages) == 1


@pytest.mark.parametrize(
    ("kwargs", "violation", "detail"),
    [
        ({"content": "あ" * 2001}, "content: Must be 2000 or fewer in length.", "In content"),
        (
            {"embed": discord.Embed(title="t" * 257)},
            "embeds.0.title: Must be 256 or fewer in length.",
            "In embeds.0.title",
        ),
    ],
    ids=["content-2001", "embed-title-257"],
)
async def test_limit_violation_is_400_and_recorded(
    fake: DiscordServer, kwargs: dict[str, Any], violation: str, detail: str
) -> None:
    client = make_client()
    async with running(client):
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as caught:
            await channel.send(**kwargs)

    assert (caught.value.status, caught.value.code) == (400, 50035)
    assert detail in caught.value.text
    assert fake.violations == [f"{MESSAGES_ROUTE}: {violation}"]
    assert fake.messages == []


async def test_thread_from_message_and_forum_post(fake: DiscordServer) -> None:
    client = make_client()
    async with running(client):
        text = client.get_channel(TEXT_CHANNEL_ID)
        forum = client.get_channel(FORUM_CHANNEL_ID)
        assert isinstance(text, discord.TextChannel) and isinstance(forum, discord.ForumChannel)
        headline = await text.send("見出し")
        thread = await headline.create_thread(name="2025-01-01 のニュース")
        reply = await thread.send("詳細")
        post = await forum.create_thread(name="今日のまとめ", content="本文")
        await post.thread.send("追記")

    assert thread.id == headline.id and thread.parent_id == TEXT_CHANNEL_ID
    assert fake.message(headline.id).thread_id == thread.id
    [in_thread] = fake.messages_in(thread.id)
    assert (in_thread.id, in_thread.parent_id) == (reply.id, TEXT_CHANNEL_ID)
    assert in_thread.content == "詳細"

    assert post.thread.parent_id == FORUM_CHANNEL_ID and post.message.id == post.thread.id
    starter, addendum = fake.messages_in(post.thread.id)
    assert (starter.content, starter.parent_id) == ("本文", FORUM_CHANNEL_ID)
    assert addendum.content == "追記"
    [forum_call] = fake.calls_to("POST /channels/{channel_id}/threads")
    assert forum_call.json["name"] == "今日のまとめ"
    assert forum_call.json["message"]["content"] == "本文"


async def test_multipart_upload_is_parsed(fake: DiscordServer) -> None:
    client = make_client()
    async with running(client):
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("添付", file=discord.File(io.BytesIO(b"a,b\n"), "digest.csv"))

    [message] = fake.messages
    assert message.content == "添付"
    assert [(f.filename, f.data) for f in message.attachments] == [("digest.csv", b"a,b\n")]
    assert sent.attachments[0].filename == "digest.csv"


async def test_dm_to_user_with_closed_dms_is_forbidden(fake: DiscordServer) -> None:
    fake.close_dms(USER_ID)
    client = make_client()
    async with running(client):
        user = await client.fetch_user(USER_ID)
        with pytest.raises(discord.Forbidden) as caught:
            await user.send("おはようございます")

    assert caught.value.code == 50007
    assert fake.calls_to("POST /users/@me/channels")[0].json == {"recipient_id": USER_ID}
    assert fake.messages == []


async def test_scripted_failure_and_unknown_route(fake: DiscordServer) -> None:
    fake.fail(MESSAGES_ROUTE, status=403)
    client = make_client()
    async with running(client):
        channel = client.get_channel(TEXT_CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.Forbidden) as caught:
            await channel.send("x")
        await channel.send("y")  # the fault was used up
        with pytest.raises(discord.NotFound):
            await client.http.request(Route("GET", "/no/such/route"))

    assert caught.value.code == 50013
    assert [m.content for m in fake.messages] == ["y"]
    assert fake.calls[-1].route is None and fake.calls[-1].status == 404


async def test_callback_rules_over_raw_http(fake: DiscordServer) -> None:
    """What discord.py's own guards hide: Discord answers 204 without ``with_response``,
    40060 to a second callback, 10015 to a followup on an unknown token, and rejects a
    callback type the interaction cannot take."""
    client = make_client()  # no CommandTree: the client leaves the interaction unanswered
    async with running(client):
        command = command_interaction("ainews", "latest")
        other = command_interaction("ainews", "latest")
        token = await fake.send_interaction(command)
        other_token = await fake.send_interaction(other)
        callback = f"{fake.api_url}/interactions/{command['id']}/{token}/callback"
        other_callback = f"{fake.api_url}/interactions/{other['id']}/{other_token}/callback"
        async with aiohttp.ClientSession() as http:
            first = await http.post(callback, json={"type": 4, "data": {"content": "a"}})
            again = await http.post(callback, json={"type": 4, "data": {"content": "b"}})
            wrong = await http.post(other_callback, json={"type": 7, "data": {"content": "c"}})
            stray = await http.post(f"{fake.api_url}/webhooks/{APP_ID}/nope", json={"content": "d"})
            statuses = [first.status, again.status, wrong.status, stray.status]
            codes = [(await r.json())["code"] for r in (again, wrong, stray)]

    assert statuses == [204, 400, 400, 404]
    assert codes == [40060, 50035, 10015]
    assert [r.content for r in fake.interaction_responses] == ["a"]
    assert len(fake.violations) == 1 and "Callback type 7" in fake.violations[0]


def test_message_limits_cover_embeds_and_components() -> None:
    embeds = [{"description": "d" * 4000}, {"description": "d" * 2001}]
    row = {"type": 1, "components": [button(f"b{i}") for i in range(6)]}
    rows = [row, *({"type": 1, "components": [button(f"r{i}")]} for i in range(5))]
    long_label = {"type": 1, "components": [button("x" * 101, label="l" * 81)]}

    assert [str(e) for e in message_errors({"embeds": embeds})] == [
        "embeds: Embed size exceeds maximum size of 6000"
    ]
    assert [str(e) for e in message_errors({"components": rows})] == [
        "components: Must be 5 or fewer in length.",
        "components.0.components: Must be 5 or fewer in length.",
    ]
    assert [str(e) for e in message_errors({"components": [long_label]}, at="data.")] == [
        "data.components.0.components.0.custom_id: Must be 100 or fewer in length.",
        "data.components.0.components.0.label: Must be 80 or fewer in length.",
    ]
    fields = {"fields": [{"name": "", "value": "v"}] * 26}
    assert {e.path for e in message_errors({"embeds": [fields]})} >= {
        "embeds.0.fields",
        "embeds.0.fields.0.name",
    }


def test_command_rules() -> None:
    commands: list[dict[str, Any]] = [
        {"name": "ainews", "description": "ok", "options": []},
        {"name": "AINews", "description": "説" * 101},
        {"name": "ainews", "description": "dup"},
    ]

    assert [(e.path, e.code) for e in command_errors(commands)] == [
        ("1.name", "APPLICATION_COMMAND_INVALID_NAME"),
        ("1.description", "BASE_TYPE_BAD_LENGTH"),
        ("2.name", "APPLICATION_COMMANDS_DUPLICATE_NAME"),
    ]


def button(custom_id: str, label: str = "ok") -> dict[str, Any]:
    return {"type": 2, "style": 1, "custom_id": custom_id, "label": label}
