"""`/ainews …` for every platform: split the text, check who may do what, call the handler.

Unknown subcommands and bad arguments get the usage, never silence. Admin-only commands are
refused for everyone else with a message that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime

from handlers.ask import handle_ask
from handlers.context import HandlerContext
from handlers.filters import FilterError, parse_search_text
from handlers.reply import Reply
from handlers.search import USAGE as SEARCH_USAGE
from handlers.search import handle_search
from handlers.sources import add_source_from_chat, list_sources_reply, remove_source_from_chat
from handlers.subscriptions import list_subscriptions, subscribe_to, unsubscribe_from
from jobs.briefing import BriefingConfig, build_briefing

HELP = """\
*ainews* — AIニュースの検索・質問・購読
• `/ainews search <キーワード> [category:infra] [source:名前] [since:7d]` — 保存記事を検索
• `/ainews ask <質問>` — 保存記事だけを根拠に回答（出典つき）
• `/ainews digest [YYYY-MM-DD]` — その日のブリーフィングを自分だけに表示
• `/ainews subscribe <カテゴリー…>` — カテゴリーの新着をDMで受け取る
• `/ainews unsubscribe <カテゴリー…|all>` — 購読をやめる
• `/ainews subscriptions` — 購読中のカテゴリー
• `/ainews sources list` — 巡回しているソース
管理者のみ: `/ainews sources add <URL> [カテゴリー]`, `/ainews sources remove <URL>`,
`/ainews post-digest`
カテゴリー: {categories}"""

ADMIN_ONLY = "このコマンドは管理者だけが使えます（AINEWS_ADMIN_USERS またはワークスペース管理者）。"


def help_reply(ctx: HandlerContext) -> Reply:
    categories = ", ".join(f"`{c.slug}`" for c in ctx.taxonomy.categories)
    return Reply(title="ainews の使い方", text=HELP.format(categories=categories))


def usage(ctx: HandlerContext, message: str) -> Reply:
    return Reply(title=message, text=help_reply(ctx).text, error=True)


async def handle_command(
    ctx: HandlerContext, text: str, *, briefing_config: BriefingConfig, platform: str
) -> Reply:
    words = text.strip().split(maxsplit=1)
    if not words:
        return help_reply(ctx)
    name, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    simple: dict[str, Callable[[], Awaitable[Reply]]] = {
        "ask": lambda: handle_ask(ctx, rest),
        "subscriptions": lambda: list_subscriptions(ctx, platform),
        "subscribe": lambda: subscribe_to(ctx, platform, rest.split()),
        "unsubscribe": lambda: unsubscribe_from(ctx, platform, rest.split()),
    }
    if name in ("help", "-h", "--help", "?", "ヘルプ"):
        return help_reply(ctx)
    if name in simple:
        return await simple[name]()
    if name == "search":
        if not rest.strip():
            return Reply(title="検索語がありません", text=SEARCH_USAGE, error=True)
        try:
            request = parse_search_text(rest, taxonomy=ctx.taxonomy, now=ctx.now, tz=ctx.tz)
        except FilterError as exc:
            return Reply(title=str(exc), text=SEARCH_USAGE, error=True)
        return await handle_search(ctx, request)
    if name == "digest":
        return await _digest(ctx, rest.strip(), briefing_config)
    if name == "sources":
        return await _sources(ctx, rest.split())
    if name == "post-digest":
        if not ctx.is_admin:
            return Reply(title=ADMIN_ONLY, error=True)
        return Reply(title="本日のブリーフィングをチャンネルに投稿します", action="post-digest")
    return usage(ctx, f"「{name}」というコマンドはありません")


async def _digest(ctx: HandlerContext, argument: str, config: BriefingConfig) -> Reply:
    try:
        day = date.fromisoformat(argument) if argument else datetime.now(ctx.tz).date()
    except ValueError:
        return Reply(title=f"日付「{argument}」は YYYY-MM-DD で指定してください", error=True)
    briefing = await build_briefing(
        db=ctx.db, day=day, config=config, taxonomy=ctx.taxonomy, llm=ctx.llm
    )
    if not briefing.items:
        return Reply(title=f"{day.isoformat()} のブリーフィングに掲載できる記事はまだありません")
    return Reply(title=f"AI News - {day.isoformat()}", briefing=briefing)


async def _sources(ctx: HandlerContext, args: list[str]) -> Reply:
    action = args[0].lower() if args else "list"
    if action == "list":
        return await list_sources_reply(ctx)
    if action not in ("add", "remove"):
        return usage(ctx, f"sources {action} はありません（list / add / remove）")
    if not ctx.is_admin:
        return Reply(title=ADMIN_ONLY, error=True)
    if len(args) < 2:
        return Reply(title=f"使い方: `/ainews sources {action} <URL>`", error=True)
    if action == "add":
        return await add_source_from_chat(ctx, args[1], args[2] if len(args) > 2 else None)
    return await remove_source_from_chat(ctx, args[1])
