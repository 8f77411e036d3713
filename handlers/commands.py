"""`/ainews …` for every platform: split the text, check who may do what, call the handler.

Unknown subcommands and bad arguments get the usage, never silence. Admin-only commands are
refused for everyone else with a message that says so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from handlers.ask import handle_ask
from handlers.context import HandlerContext
from handlers.filters import FilterError, parse_page, parse_search_text
from handlers.reply import Code, Line, Reply, RepostBriefing, line
from handlers.search import handle_search, usage_lines
from handlers.sources import add_source_from_chat, list_sources_reply, remove_source_from_chat
from handlers.subscriptions import list_subscriptions, subscribe_to, unsubscribe_from
from jobs.briefing import BriefingConfig
from jobs.daily import latest_complete_day, stored_briefing

COMMANDS: tuple[tuple[str, str], ...] = (
    (
        "/ainews search <キーワード> [category:infra] [source:名前] [since:7d] [page:2]",
        "保存記事を検索",
    ),
    ("/ainews ask <質問>", "保存記事だけを根拠に回答（出典つき）"),
    ("/ainews digest [YYYY-MM-DD]", "その日のブリーフィングを自分だけに表示"),
    ("/ainews subscribe <カテゴリー…>", "カテゴリーの新着をDMで受け取る"),
    ("/ainews unsubscribe <カテゴリー…|all>", "購読をやめる"),
    ("/ainews subscriptions", "購読中のカテゴリー"),
    ("/ainews sources list [page:2]", "巡回しているソース"),
)
ADMIN_COMMANDS = (
    "/ainews sources add <URL> [カテゴリー]",
    "/ainews sources remove <URL>",
    "/ainews post-digest",
)
ADMIN_ONLY = (
    "このコマンドは管理者だけが使えます（AINEWS_ADMIN_USERS に登録されたユーザー、"
    "またはワークスペース／サーバーの管理者）。"
)


def help_lines(ctx: HandlerContext) -> tuple[Line, ...]:
    lines = [line(Code(command), f" — {what}", bullet=True) for command, what in COMMANDS]
    admin: list[str | Code] = ["管理者のみ: "]
    for i, command in enumerate(ADMIN_COMMANDS):
        admin += [", "] if i else []
        admin.append(Code(command))
    lines.append(line(*admin))
    categories: list[str | Code] = ["カテゴリー: "]
    for i, category in enumerate(ctx.taxonomy.categories):
        categories += [", "] if i else []
        categories.append(Code(category.slug))
    lines.append(line(*categories))
    return tuple(lines)


def help_reply(ctx: HandlerContext) -> Reply:
    return Reply(title="ainews — AIニュースの検索・質問・購読", lines=help_lines(ctx))


def usage(ctx: HandlerContext, message: str) -> Reply:
    return Reply(title=message, lines=help_lines(ctx), error=True)


async def handle_command(
    ctx: HandlerContext, text: str, *, briefing_config: BriefingConfig
) -> Reply:
    words = text.strip().split(maxsplit=1)
    if not words:
        return help_reply(ctx)
    name, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
    simple: dict[str, Callable[[], Awaitable[Reply]]] = {
        "ask": lambda: handle_ask(ctx, rest),
        "subscriptions": lambda: list_subscriptions(ctx),
        "subscribe": lambda: subscribe_to(ctx, rest.split()),
        "unsubscribe": lambda: unsubscribe_from(ctx, rest.split()),
        "digest": lambda: _digest(ctx, rest.strip(), briefing_config),
        "sources": lambda: _sources(ctx, rest.split()),
    }
    if name in ("help", "-h", "--help", "?", "ヘルプ"):
        return help_reply(ctx)
    if name in simple:
        return await simple[name]()
    if name == "search":
        if not rest.strip():
            return Reply(title="検索語がありません", lines=usage_lines(), error=True)
        try:
            request = parse_search_text(rest, taxonomy=ctx.taxonomy, now=ctx.now, tz=ctx.tz)
        except FilterError as exc:
            return Reply(title=str(exc), lines=usage_lines(), error=True)
        return await handle_search(ctx, request)
    if name == "post-digest":
        if not ctx.is_admin:
            return Reply(title=ADMIN_ONLY, error=True)
        return await _post_digest(ctx, briefing_config)
    return usage(ctx, f"「{name}」というコマンドはありません")


async def _digest(ctx: HandlerContext, argument: str, config: BriefingConfig) -> Reply:
    """The stored briefing (built once per day, never per request)."""
    try:
        day = date.fromisoformat(argument) if argument else latest_complete_day(ctx.now, config)
    except ValueError:
        return Reply(
            title=f"日付「{argument}」は YYYY-MM-DD で指定してください",
            lines=(line("例: ", Code("/ainews digest 2026-03-02")),),
            error=True,
        )
    briefing = await stored_briefing(
        db=ctx.db, day=day, config=config, taxonomy=ctx.taxonomy, llm=ctx.llm, now=ctx.now
    )
    if briefing is None:
        return Reply(
            title=f"{day.isoformat()} のブリーフィングはまだありません",
            text=f"毎日 {config.briefing_time:%H:%M} に、それまでの24時間の記事で作られます。",
        )
    if not briefing.items:
        return Reply(title=f"{day.isoformat()} のブリーフィングに掲載できる記事はありませんでした")
    return Reply(title=f"AI News - {day.isoformat()}", briefing=briefing)


async def _post_digest(ctx: HandlerContext, config: BriefingConfig) -> Reply:
    day = latest_complete_day(ctx.now, config)
    briefing = await stored_briefing(
        db=ctx.db, day=day, config=config, taxonomy=ctx.taxonomy, llm=ctx.llm, now=ctx.now
    )
    if briefing is None or not briefing.items:
        return Reply(
            title=f"{day.isoformat()} のブリーフィングに掲載できる記事がないため、投稿しません",
            error=True,
        )
    count = len(briefing.items)
    return Reply(
        title=f"{day.isoformat()} のブリーフィング（{count}件）をチャンネルに投稿します",
        effect=RepostBriefing(day),
    )


async def _sources(ctx: HandlerContext, args: list[str]) -> Reply:
    action = args[0].lower() if args else "list"
    if action == "list":
        return await _sources_list(ctx, args[1:])
    if action not in ("add", "remove"):
        return usage(ctx, f"sources {action} はありません（list / add / remove）")
    if not ctx.is_admin:
        return Reply(title=ADMIN_ONLY, error=True)
    if len(args) < 2:
        return Reply(
            title="URL がありません",
            lines=(line("使い方: ", Code(f"/ainews sources {action} <URL>")),),
            error=True,
        )
    if action == "add":
        return await add_source_from_chat(ctx, args[1], args[2] if len(args) > 2 else None)
    return await remove_source_from_chat(ctx, args[1])


async def _sources_list(ctx: HandlerContext, args: list[str]) -> Reply:
    """`sources list [page:N]`: the page argument is what the 前へ / 次へ buttons add
    (`filters.with_page`), so it is parsed exactly as search parses it."""
    page = 1
    for arg in args:
        key, colon, value = arg.partition(":")
        if not colon or key.lower() != "page":
            return Reply(
                title=f"sources list に「{arg}」は指定できません",
                lines=(line("使い方: ", Code("/ainews sources list [page:2]")),),
                error=True,
            )
        try:
            page = parse_page(value)
        except FilterError as exc:
            return Reply(title=str(exc), error=True)
    return await list_sources_reply(ctx, page=page)
