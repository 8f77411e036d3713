"""The Discord adapter: discord.py 2.x with `/ainews` as one application-command group. It turns
interactions into calls of the publishing core (`ChatCore`), renders the core's neutral replies
as embeds, and implements the core's two ports: the briefing thread and DMs.

Every interaction is deferred (ephemeral) before any work and answered by a follow-up from a
tracked task: Discord drops an interaction that is not answered within 3 seconds. No privileged
intent is needed (commands arrive as interactions, not as message content), and every message
is sent with `AllowedMentions.none()` on top of the escaping in `bot/render/discord.py`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.app import App
from bot.publishing.chat import Answer, Caller, ChatCore, Shared, Spawn
from bot.publishing.controls import PREFIX, Control
from bot.publishing.fanout import DirectMessageFanout
from bot.publishing.platform import Platform, StartupError
from bot.publishing.ports import DirectMessagesClosed
from bot.publishing.thread import ThreadPublisher
from bot.render.discord import (
    DiscordMessage,
    briefing_item_embeds,
    briefing_parent_embed,
    pack_embeds,
    reply_messages,
    share_header,
    weekly_item_embeds,
    weekly_parent_embed,
    weekly_title,
)
from handlers.reply import Reply
from jobs.briefing_model import Briefing, BriefingItem
from jobs.weekly_model import WeeklyItem, WeeklyReport
from storage.sources import list_sources
from storage.subscriptions import saved_searches_of

log = logging.getLogger(__name__)

PLATFORM = "discord"
NO_MENTIONS = discord.AllowedMentions.none()
READY_TIMEOUT = 60.0
CANNOT_DM = 50007  # Discord's "Cannot send messages to this user"
RESTARTING = "ainews は再起動中です。少し待ってからもう一度お試しください。"
# Discord's error code for a second acknowledgement of one interaction.
ALREADY_ACKNOWLEDGED = 40060
# How long a stopping process waits before saying it is restarting, so that another process on
# the same bot token, still running, answers first (well inside Discord's 3 seconds).
RESTARTING_DELAY = 1.0


def configure_endpoints(api_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at a proxy or a stand-in. Both are class attributes in discord.py, so
    this is process-wide — as the one Discord connection of the process needs."""
    if api_url:
        Route.BASE = api_url.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


# ── the two ports ──────────────────────────────────────────────────────────────────────────


class DiscordThread:
    """The core's `ThreadPort` on Discord: a parent embed and a thread started from it in a
    text channel, or a post in a forum channel; one embed per item in the thread.

    A ref is `thread_id:message_channel_id:message_id`: in a text channel the parent lives in
    the channel, in a forum it is the post's starter message inside the thread."""

    def __init__(self, client: discord.Client, channel_id: int) -> None:
        self.client = client
        self.channel_id = channel_id

    @property
    def destination(self) -> str:
        return f"discord:{self.channel_id}"

    async def _channel(self) -> Any:
        channel = self.client.get_channel(self.channel_id)
        return channel or await self.client.fetch_channel(self.channel_id)

    async def post_parent(self, briefing: Briefing) -> str:
        return await self._open_thread(
            f"AI News - {briefing.day.isoformat()}", briefing_parent_embed(briefing)
        )

    async def post_weekly_parent(self, report: WeeklyReport) -> str:
        return await self._open_thread(weekly_title(report), weekly_parent_embed(report))

    async def _open_thread(self, name: str, embed: discord.Embed) -> str:
        channel = await self._channel()
        if isinstance(channel, discord.ForumChannel):
            post = await channel.create_thread(name=name, embed=embed, allowed_mentions=NO_MENTIONS)
            return f"{post.thread.id}:{post.thread.id}:{post.message.id}"
        if not isinstance(channel, discord.TextChannel):
            raise RuntimeError(
                f"AINEWS_DISCORD_CHANNEL_ID {self.channel_id} is not a text or forum channel"
            )
        message = await channel.send(embed=embed, allowed_mentions=NO_MENTIONS)
        thread = await message.create_thread(name=name, auto_archive_duration=1440)
        return f"{thread.id}:{channel.id}:{message.id}"

    async def post_item(self, parent: str, item: BriefingItem, heading: str) -> str:
        return await self._post_embeds(parent, briefing_item_embeds(item, heading))

    async def post_weekly_item(self, parent: str, item: WeeklyItem) -> str:
        return await self._post_embeds(parent, weekly_item_embeds(item))

    async def _post_embeds(self, parent: str, embeds: list[discord.Embed]) -> str:
        thread = self.client.get_partial_messageable(int(parent.split(":")[0]))
        refs = []
        for batch in pack_embeds(embeds):
            message = await thread.send(embeds=batch, allowed_mentions=NO_MENTIONS)
            refs.append(str(message.id))
        return ",".join(refs)

    async def edit_parent(self, parent: str, briefing: Briefing) -> None:
        await self._edit_parent(parent, briefing_parent_embed(briefing))

    async def edit_weekly_parent(self, parent: str, report: WeeklyReport) -> None:
        await self._edit_parent(parent, weekly_parent_embed(report))

    async def _edit_parent(self, parent: str, embed: discord.Embed) -> None:
        _, channel_id, message_id = parent.split(":")
        channel = self.client.get_partial_messageable(int(channel_id))
        message = channel.get_partial_message(int(message_id))
        await message.edit(embed=embed, allowed_mentions=NO_MENTIONS)

    async def post_notice(self, notice: Reply) -> str:
        """The core's `ChannelPort`: a message in the text channel, or a post of its own in a
        forum channel (where nothing is posted outside a post)."""
        channel = await self._channel()
        messages = reply_messages(notice)
        if isinstance(channel, discord.ForumChannel):
            first = messages[0]
            post = await channel.create_thread(
                name=notice.title[:100],
                content=first.content or None,
                embeds=list(first.embeds),
                allowed_mentions=NO_MENTIONS,
            )
            return f"{post.thread.id}:{post.message.id}"
        sent = [
            await channel.send(
                content=m.content or None, embeds=list(m.embeds), allowed_mentions=NO_MENTIONS
            )
            for m in messages
        ]
        return ",".join(str(message.id) for message in sent)


class DiscordDirectMessages:
    """The core's `DirectMessagePort` on Discord."""

    platform = PLATFORM

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def open_dm(self, user_id: str) -> str:
        try:
            channel = await self.client.create_dm(discord.Object(id=int(user_id)))
        except (discord.Forbidden, discord.NotFound) as exc:
            raise DirectMessagesClosed(str(exc)) from exc
        return str(channel.id)

    async def send_bundle(self, channel: str, bundle: Reply) -> None:
        dm = self.client.get_partial_messageable(int(channel), type=discord.ChannelType.private)
        try:
            await send_messages(dm.send, reply_messages(bundle))
        except discord.Forbidden as exc:
            if exc.code == CANNOT_DM:
                raise DirectMessagesClosed(str(exc)) from exc
            raise


async def send_messages(
    send: Any, messages: Sequence[DiscordMessage], *, view: discord.ui.View | None = None, **kw: Any
) -> None:
    """Send a rendered reply (one or more messages); the buttons go under the last one."""
    for i, message in enumerate(messages):
        extra = {"view": view} if view is not None and i == len(messages) - 1 else {}
        await send(
            content=message.content or None,
            embeds=list(message.embeds),
            allowed_mentions=NO_MENTIONS,
            **kw,
            **extra,
        )


async def _acknowledge(acknowledgement: Awaitable[object]) -> bool:
    """Whether this process acknowledged the interaction and so must answer it. Several
    processes on one bot token (replicas sharing a database) each receive every interaction;
    Discord accepts the first acknowledgement and refuses the others (40060), which makes it
    the claim: only its winner does the work, and the others stay quiet."""
    try:
        await acknowledgement
    except discord.HTTPException as exc:
        if exc.code != ALREADY_ACKNOWLEDGED:
            raise
        log.info("interaction answered by another process")
        return False
    return True


def controls_view(controls: Sequence[Control]) -> discord.ui.View | None:
    """Buttons as components. The view is stopped before it is sent, so discord.py keeps no
    state for it: every click reaches `on_interaction` by its `custom_id`, after a restart too."""
    if not controls:
        return None
    view = discord.ui.View(timeout=None)
    for control in controls:
        style = discord.ButtonStyle.primary if control.primary else discord.ButtonStyle.secondary
        view.add_item(discord.ui.Button(label=control.label, custom_id=control.action, style=style))
    view.stop()
    return view


# ── the client: commands in, replies out ────────────────────────────────────────────────────


class DiscordBot(discord.Client):
    """`/ainews` commands and buttons. Each callback defers, then spawns the real work."""

    def __init__(self, app: App, *, core: ChatCore, spawn: Spawn) -> None:
        # Voice is never used: its optional libraries need not be installed or warned about.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True  # channel cache for the briefing channel; not privileged
        # One briefing channel needs no member cache: READY need not wait 2 s for more guilds.
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS, guild_ready_timeout=0.5)
        self.app = app
        self.core = core
        self.spawn = spawn
        self.tree = app_commands.CommandTree(self)
        self.tree.interaction_check = self._accepting  # type: ignore[method-assign]
        self._accepting_commands = True
        self._connection_task: asyncio.Task[None] | None = None
        self._source_names: tuple[float, list[str]] = (0.0, [])
        self.tree.add_command(self._build_group())

    # ── lifecycle (the core's `Intake`) ────────────────────────────────────────────────────

    async def start_intake(self) -> None:
        """Log in, sync the commands, connect the gateway and wait for READY. On failure the
        client is closed again: a late READY must not leave a half-started bot taking
        interactions that nobody will shut down."""
        settings = self.app.settings
        assert settings.discord_token is not None
        configure_endpoints(settings.discord_api_url, settings.discord_gateway_url)
        try:
            try:
                await self.login(settings.discord_token.get_secret_value())
            except discord.LoginFailure:
                raise StartupError(
                    "DISCORD_TOKEN: Discord refused the token (reset it under Bot in the "
                    "Developer Portal)"
                ) from None
            self._connection_task = asyncio.create_task(self.connect(reconnect=True))
            ready = asyncio.create_task(self.wait_until_ready())
            await asyncio.wait(
                {ready, self._connection_task},
                timeout=READY_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not ready.done():
                ready.cancel()
                if self._connection_task.done():
                    self._connection_task.result()  # raises the reason (bad token, no gateway)
                    raise RuntimeError("discord gateway closed before READY")
                raise TimeoutError(f"discord gateway not ready within {READY_TIMEOUT:.0f} s")
        except BaseException:
            await self.close()
            raise
        log.info("discord connected", extra={"user": str(self.user), "guilds": len(self.guilds)})

    async def setup_hook(self) -> None:
        guild_id = self.app.settings.discord_guild_id
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("discord commands synced", extra={"commands": len(synced), "guild": guild_id})

    async def stop_intake(self) -> None:
        """Interactions from here on are not taken (Discord tells the user the app did not
        respond); acked ones are still answered over REST until `close`."""
        self._accepting_commands = False

    async def close(self) -> None:
        self._accepting_commands = False
        await super().close()
        if self._connection_task is not None:
            await asyncio.gather(self._connection_task, return_exceptions=True)

    async def _accepting(self, interaction: discord.Interaction[Any]) -> bool:
        """After `stop_intake`, say so instead of leaving the user with "did not respond"."""
        if self._accepting_commands:
            return True
        if interaction.type is discord.InteractionType.application_command:
            await self._say_restarting(interaction)
        return False

    async def _say_restarting(self, interaction: discord.Interaction[Any]) -> None:
        """Said a moment late: in a rolling restart another process may still be running, and
        its answer is the one the user wants."""
        await asyncio.sleep(RESTARTING_DELAY)
        await _acknowledge(interaction.response.send_message(RESTARTING, ephemeral=True))

    # ── commands ───────────────────────────────────────────────────────────────────────────

    def _build_group(self) -> app_commands.Group:
        group = app_commands.Group(name="ainews", description="AIニュースの検索・質問・購読")
        sources = app_commands.Group(name="sources", description="巡回しているソース", parent=group)
        run = self._run
        category_choices = self._complete_category
        source_choices = self._complete_source

        @group.command(name="help", description="使い方")
        async def help_(interaction: discord.Interaction[Any]) -> None:
            await run(interaction, "help")

        @group.command(name="search", description="保存記事を検索")
        @app_commands.describe(
            query="キーワード（category:infra なども書けます）",
            category="カテゴリー",
            source="ソース名（一部でも可）",
            since="期間: 7d, 24h, 2026-02-01",
            page="ページ",
        )
        @app_commands.autocomplete(category=category_choices, source=source_choices)
        async def search(
            interaction: discord.Interaction[Any],
            query: str,
            category: str | None = None,
            source: str | None = None,
            since: str | None = None,
            page: app_commands.Range[int, 1, 1000] | None = None,
        ) -> None:
            words = ["search", query]
            for key, value in (("category", category), ("source", source), ("since", since)):
                if value:
                    words.append(f'{key}:"{value}"' if " " in value else f"{key}:{value}")
            if page:
                words.append(f"page:{page}")
            await run(interaction, " ".join(words))

        @group.command(name="ask", description="保存記事だけを根拠に回答（出典つき）")
        @app_commands.describe(question="質問")
        async def ask(interaction: discord.Interaction[Any], question: str) -> None:
            await run(interaction, f"ask {question}")

        @group.command(name="digest", description="その日のブリーフィングを自分だけに表示")
        @app_commands.describe(date="YYYY-MM-DD（省略時は最新）")
        async def digest(interaction: discord.Interaction[Any], date: str | None = None) -> None:
            await run(interaction, f"digest {date or ''}")

        @group.command(name="weekly", description="週次レポートを自分だけに表示")
        @app_commands.describe(week="YYYY-Www（ISO週、省略時は先週）")
        async def weekly(interaction: discord.Interaction[Any], week: str | None = None) -> None:
            await run(interaction, f"weekly {week or ''}")

        @group.command(
            name="subscribe", description="カテゴリー、または検索に一致する新着をDMで受け取る"
        )
        @app_commands.describe(
            category="カテゴリー（query と一緒なら検索の絞り込み）",
            query="保存する検索語（/ainews search と同じ書き方）",
        )
        @app_commands.autocomplete(category=category_choices)
        async def subscribe(
            interaction: discord.Interaction[Any],
            category: str | None = None,
            query: str | None = None,
        ) -> None:
            await run(interaction, subscribe_text("subscribe", category, query))

        @group.command(name="unsubscribe", description="購読をやめる（all ですべて）")
        @app_commands.describe(
            category="カテゴリー、または all", query="保存検索の番号、または検索語"
        )
        @app_commands.autocomplete(category=category_choices, query=self._complete_saved_search)
        async def unsubscribe(
            interaction: discord.Interaction[Any],
            category: str | None = None,
            query: str | None = None,
        ) -> None:
            await run(interaction, subscribe_text("unsubscribe", category, query))

        @group.command(name="subscriptions", description="購読中のカテゴリーと保存検索")
        async def subscriptions(interaction: discord.Interaction[Any]) -> None:
            await run(interaction, "subscriptions")

        @group.command(name="post-digest", description="（管理者）ブリーフィングを投稿し直す")
        async def post_digest(interaction: discord.Interaction[Any]) -> None:
            await run(interaction, "post-digest")

        @group.command(name="stats", description="トークン使用量・推定コスト・要約の内訳")
        async def stats(interaction: discord.Interaction[Any]) -> None:
            await run(interaction, "stats")

        @sources.command(name="list", description="巡回しているソース")
        @app_commands.describe(page="ページ")
        async def sources_list(
            interaction: discord.Interaction[Any],
            page: app_commands.Range[int, 1, 1000] | None = None,
        ) -> None:
            await run(interaction, f"sources list page:{page}" if page else "sources list")

        @sources.command(name="add", description="（管理者）ソースを追加")
        @app_commands.describe(url="フィードのURL", category="カテゴリー")
        @app_commands.autocomplete(category=category_choices)
        async def sources_add(
            interaction: discord.Interaction[Any], url: str, category: str | None = None
        ) -> None:
            await run(interaction, f"sources add {url} {category or ''}")

        @sources.command(name="remove", description="（管理者）ソースを削除")
        @app_commands.describe(source="URL または ID")
        @app_commands.autocomplete(source=source_choices)
        async def sources_remove(interaction: discord.Interaction[Any], source: str) -> None:
            await run(interaction, f"sources remove {source}")

        @sources.command(name="enable", description="（管理者）停止したソースを再開")
        @app_commands.describe(source="URL または ID")
        @app_commands.autocomplete(source=source_choices)
        async def sources_enable(interaction: discord.Interaction[Any], source: str) -> None:
            await run(interaction, f"sources enable {source}")

        return group

    async def _run(self, interaction: discord.Interaction[Any], text: str) -> None:
        """Defer first (the 3-second limit), then answer from a tracked task."""
        if await _acknowledge(interaction.response.defer(ephemeral=True, thinking=True)):
            self.spawn(self._answer(interaction, text))

    async def _answer(self, interaction: discord.Interaction[Any], text: str) -> None:
        answer = await self.core.command(self._caller(interaction), text)
        await send_messages(
            interaction.followup.send,
            reply_messages(answer.reply),
            view=controls_view(answer.controls),
            ephemeral=answer.reply.ephemeral,
        )

    def _caller(self, interaction: discord.Interaction[Any]) -> Caller:
        user_id = str(interaction.user.id)
        admin = user_id in self.app.settings.admins or bool(
            interaction.guild_id is not None and interaction.permissions.manage_guild
        )
        channel = str(interaction.channel_id) if interaction.channel_id else None
        return Caller(PLATFORM, user_id, channel, admin)

    async def _complete_category(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        typed = current.strip().lower()
        choices = [
            app_commands.Choice(name=f"{c.label}（{c.slug}）", value=c.slug)
            for c in self.app.taxonomy.categories
            if not typed
            or typed in c.slug
            or typed in c.label.lower()
            or any(typed in a.lower() for a in c.aliases)
        ]
        return choices[:25]

    async def _complete_source(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """Source names for admins only: a name may be a URL with credentials or an internal
        host, which `sources list` shows only to admins too."""
        if not self._caller(interaction).is_admin:
            return []
        loop = asyncio.get_running_loop()
        fetched_at, names = self._source_names
        if loop.time() - fetched_at > 60:  # autocomplete fires per keystroke: cache a minute
            names = [s.name for s in await self.app.db.run(list_sources)]
            self._source_names = (loop.time(), names)
        typed = current.strip().lower()
        matches = [n for n in names if typed in n.lower()][:25]
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in matches]

    async def _complete_saved_search(
        self, interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        """The caller's own saved searches, by number (what `unsubscribe` takes)."""
        saved = await self.app.db.run(
            saved_searches_of, platform=PLATFORM, user_id=str(interaction.user.id)
        )
        typed = current.strip().lower()
        choices = [
            app_commands.Choice(name=f"{n}. {s.text}"[:100], value=str(n))
            for n, s in enumerate(saved, start=1)
            if not typed or typed in s.text.lower() or typed == str(n)
        ]
        return choices[:25]

    # ── buttons ────────────────────────────────────────────────────────────────────────────

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is not discord.InteractionType.component:
            return
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if not custom_id.startswith(PREFIX):
            return
        if not self._accepting_commands:
            await self._say_restarting(interaction)
            return
        # A "deferred update": the message stays until edited.
        if await _acknowledge(interaction.response.defer()):
            self.spawn(self._answer_control(interaction, custom_id))

    async def _answer_control(self, interaction: discord.Interaction[Any], custom_id: str) -> None:
        result = await self.core.action(self._caller(interaction), custom_id)
        if isinstance(result, Shared):
            await self._share(interaction, result)
            return
        if result.reply.error:
            await send_messages(
                interaction.followup.send, reply_messages(result.reply), ephemeral=True
            )
            return
        await self._show_page(interaction, result)

    async def _show_page(self, interaction: discord.Interaction[Any], answer: Answer) -> None:
        """Replace the message the button was on with the new page (the rest, if the page
        needs several messages, follows)."""
        first, *rest = reply_messages(answer.reply)
        view = controls_view(answer.controls)
        await interaction.edit_original_response(
            content=first.content or None,
            embeds=list(first.embeds),
            view=view if not rest else None,
            allowed_mentions=NO_MENTIONS,
        )
        if rest:
            await send_messages(interaction.followup.send, rest, view=view, ephemeral=True)

    async def _share(self, interaction: discord.Interaction[Any], shared: Shared) -> None:
        if shared.channel_id is None:
            return
        channel = self.get_partial_messageable(int(shared.channel_id))
        header = DiscordMessage(content=share_header(shared.user_id), embeds=())
        await send_messages(channel.send, [header, *reply_messages(shared.reply)])


def subscribe_text(command: str, category: str | None, query: str | None) -> str:
    """`subscribe`/`unsubscribe` options as the shared command text. The query goes after
    `query: ` as the search text itself (its quotes keep marking phrases, as in `search`), and
    a category with it narrows the search instead of being a subscription of its own."""
    if not query:
        return f"{command} {category or ''}".strip()
    text = f"{command} query: {query}"
    if category:
        text += f' category:"{category}"' if " " in category else f" category:{category}"
    return text


def build_discord(app: App, *, core: ChatCore, spawn: Spawn) -> Platform:
    """The Discord platform: one client shared by the interactions and both ports."""
    settings = app.settings
    assert settings.discord_channel_id is not None
    client = DiscordBot(app, core=core, spawn=spawn)
    channel = DiscordThread(client, settings.discord_channel_id)
    thread = ThreadPublisher(channel, db=app.db, lease=settings.briefing_lease, metrics=app.metrics)
    core.add_thread(PLATFORM, thread)
    return Platform(
        name=PLATFORM,
        intake=client,
        thread=thread,
        fanout=DirectMessageFanout(DiscordDirectMessages(client), db=app.db, taxonomy=app.taxonomy),
        channel=channel,
    )
