"""`subscribe`, `unsubscribe`, `subscriptions`: what a user gets by DM — the new articles of
categories, and those a saved search finds (`subscribe query:"半導体 規制" category:infra`).

A saved search is parsed exactly as `/ainews search` parses its text (`handlers.filters`), and
delivered with the same search engine, so an alert finds what searching would have found."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from handlers.context import HandlerContext
from handlers.filters import FilterError, parse_search_text
from handlers.reply import Code, Line, Reply, Strong, line
from storage.search.terms import parse_query_text
from storage.subscriptions import (
    SavedQuery,
    remove_saved_searches,
    save_search,
    saved_searches_of,
    subscribe,
    subscriptions_of,
    unsubscribe,
    unsubscribe_all,
)

# Each saved search costs one search per DM round; ten cover a user's interests and keep a
# bundle readable.
MAX_SAVED_SEARCHES = 10
MAX_QUERY_CHARS = 100
MAX_SOURCE_CHARS = 100
SUBSCRIBE_USAGE = (
    '/ainews subscribe <カテゴリー…> または /ainews subscribe query:"検索語" [category:…]'
)
UNSUBSCRIBE_USAGE = "/ainews unsubscribe <カテゴリー…|保存検索の番号|query:検索語|all>"
# `query:` and, right after it, a quoted value: the quotes only delimit the query (so
# `query:"半導体 規制"` is the two words, as the user means it), and what they hold is taken
# as it is, never read as filters.
_QUERY = re.compile(r'(?<!\S)query:(?:"([^"]*)"|“([^”]*)”)?', re.I)
_NOT_FOR_ALERTS = re.compile(r"(?<!\S)(since|page):", re.I)
NOT_IN_CHAT = "購読はチャットから使えます"


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A saved search as typed: the search words and the filters `search` would apply."""

    query: str
    category: str | None = None
    source: str | None = None


def _resolve(ctx: HandlerContext, names: list[str]) -> tuple[list[str], list[str]]:
    known, unknown = [], []
    for name in names:
        category = ctx.taxonomy.resolve(name)
        (known.append(category.slug) if category else unknown.append(name))
    return known, unknown


def _labels(ctx: HandlerContext, slugs: list[str]) -> str:
    return "、".join(ctx.taxonomy.get(s).label for s in slugs if s in ctx.taxonomy.slugs)


def _choices(ctx: HandlerContext) -> Line:
    choices: list[str | Code] = ["使えるもの: "]
    for i, category in enumerate(ctx.taxonomy.categories):
        choices += [", "] if i else []
        choices += [Code(category.slug), f"（{category.label}）"]
    return line(*choices)


def _unknown(ctx: HandlerContext, unknown: list[str], usage: str) -> Reply:
    title = (
        f"カテゴリー「{'、'.join(unknown)}」はありません" if unknown else "カテゴリーがありません"
    )
    return Reply(title=title, lines=(line("使い方: ", Code(usage)), _choices(ctx)), error=True)


def _error(title: str, *hints: Line) -> Reply:
    return Reply(title=title, lines=hints or (line("使い方: ", Code(SUBSCRIBE_USAGE)),), error=True)


def has_query(text: str) -> bool:
    return _QUERY.search(text) is not None


def parse_saved_search(ctx: HandlerContext, text: str) -> QuerySpec:
    """`query:"GPU" category:infra` (the `query:` marker optional) into a `QuerySpec`; raises
    FilterError with what to correct. Filters are those of `/ainews search`; `since:` and
    `page:` make no sense for articles yet to come and are refused rather than ignored."""
    quoted = ""
    marker = _QUERY.search(text)
    if marker is not None:
        quoted = marker.group(1) or marker.group(2) or ""
        text = f"{text[: marker.start()]} {text[marker.end() :]}"
    if _NOT_FOR_ALERTS.search(text):
        raise FilterError("保存検索には since: と page: は使えません（登録後の新着だけが届きます）")
    request = parse_search_text(text, taxonomy=ctx.taxonomy, now=ctx.now, tz=ctx.tz)
    query = " ".join(f"{quoted} {request.text}".split())
    if not query:
        raise FilterError("検索語がありません")
    if len(query) > MAX_QUERY_CHARS:
        raise FilterError(
            f"検索語が長すぎます（{len(query)}文字）。{MAX_QUERY_CHARS}文字までにしてください"
        )
    if not parse_query_text(query).required:
        raise FilterError(
            f"「{query}」には検索できる語がありません（文字か数字の語が1つは必要です。"
            "-語 の除外だけでは登録できません）"
        )
    source = " ".join((request.source or "").split()) or None
    if source is not None and len(source) > MAX_SOURCE_CHARS:
        raise FilterError(f"source: が長すぎます。{MAX_SOURCE_CHARS}文字までにしてください")
    return QuerySpec(query=query, category=request.category, source=source)


async def subscribe_to(ctx: HandlerContext, text: str) -> Reply:
    if ctx.user_id is None:
        return Reply(title=NOT_IN_CHAT, error=True)
    if has_query(text):
        return await _save_search(ctx, ctx.user_id, text)
    known, unknown = _resolve(ctx, text.split())
    if unknown or not known:
        return _unknown(ctx, unknown, SUBSCRIBE_USAGE)
    await ctx.db.run(subscribe, platform=ctx.platform, user_id=ctx.user_id, categories=known)
    return Reply(
        title=f"購読しました: {_labels(ctx, known)}", text="新着はDMでまとめてお届けします。"
    )


async def _save_search(ctx: HandlerContext, user_id: str, text: str) -> Reply:
    try:
        spec = parse_saved_search(ctx, text)
    except FilterError as exc:
        return _error(str(exc))
    result = await ctx.db.run(
        save_search,
        platform=ctx.platform,
        user_id=user_id,
        query=spec.query,
        category=spec.category,
        source=spec.source,
        limit=MAX_SAVED_SEARCHES,
    )
    shown = SavedQuery(0, spec.query, spec.category, spec.source).text
    if result == "full":
        return _error(
            f"保存検索は1人{MAX_SAVED_SEARCHES}件までです",
            line(
                Code("/ainews subscriptions"),
                " で番号を確かめ、",
                Code("/ainews unsubscribe <番号>"),
                " で減らしてから登録してください。",
            ),
        )
    if result == "exists":
        return Reply(title=f"保存検索「{shown}」はもう登録されています")
    return Reply(
        title=f"保存検索を登録しました: 「{shown}」",
        text="これから要約される記事のうち、この検索に一致するものをDMでまとめてお届けします。",
    )


async def unsubscribe_from(ctx: HandlerContext, text: str) -> Reply:
    """A saved search by its text or its number in the list, categories, or `all`. The text
    is tried first: it is what the list shows, and its words may also be category aliases
    (半導体 is one)."""
    if ctx.user_id is None:
        return Reply(title=NOT_IN_CHAT, error=True)
    user = ctx.user_id
    names = text.split()
    if [n.lower() for n in names] == ["all"]:
        removed = await ctx.db.run(unsubscribe_all, platform=ctx.platform, user_id=user)
        return Reply(title=f"すべての購読をやめました（{removed}件）")
    if not names:
        return _unknown(ctx, [], UNSUBSCRIBE_USAGE)
    saved = await ctx.db.run(saved_searches_of, platform=ctx.platform, user_id=user)
    try:
        spec: QuerySpec | None = parse_saved_search(ctx, text)
    except FilterError:
        spec = None
    match = [s for s in saved if spec and s.same_search(spec.query, spec.category, spec.source)]
    if match:
        ids = [s.id for s in match]
        await ctx.db.run(remove_saved_searches, platform=ctx.platform, user_id=user, ids=ids)
        return Reply(title=f"保存検索をやめました: 「{match[0].text}」")
    if has_query(text):  # `query:2`, as Discord's query option sends a number
        number = _number(spec.query) if spec and not spec.category and not spec.source else None
        if number is None:
            return _not_subscribed(ctx, text, saved)
        return await _remove(ctx, user, saved, categories=[], numbers=[number])
    numbers = [_number(n) for n in names]
    words = [name for name, number in zip(names, numbers, strict=True) if number is None]
    known, unknown = _resolve(ctx, words)
    if unknown:
        return _not_subscribed(ctx, text, saved)
    by_number = [n for n in numbers if n is not None]
    return await _remove(ctx, user, saved, categories=known, numbers=by_number)


def _number(word: str) -> int | None:
    """A saved search's number as typed: `2`, `#2`, full-width `２`."""
    word = unicodedata.normalize("NFKC", word).removeprefix("#")
    return int(word) if word.isdigit() and len(word) <= 4 else None


async def _remove(
    ctx: HandlerContext,
    user: str,
    saved: list[SavedQuery],
    *,
    categories: list[str],
    numbers: list[int],
) -> Reply:
    wrong = [n for n in numbers if not 1 <= n <= len(saved)]
    if wrong:
        have = f"1〜{len(saved)}番があります" if saved else "保存検索はありません"
        return Reply(
            title=f"{'、'.join(map(str, wrong))}番の保存検索はありません（{have}）",
            lines=(line(Code("/ainews subscriptions"), " で番号を確かめられます。"),),
            error=True,
        )
    removed = [saved[n - 1] for n in dict.fromkeys(numbers)]
    if categories:
        await ctx.db.run(unsubscribe, platform=ctx.platform, user_id=user, categories=categories)
    if removed:
        await ctx.db.run(
            remove_saved_searches, platform=ctx.platform, user_id=user, ids=[s.id for s in removed]
        )
    what = [_labels(ctx, categories)] if categories else []
    what += [f"「{s.text}」" for s in removed]
    return Reply(title=f"購読をやめました: {'、'.join(what)}")


def _not_subscribed(ctx: HandlerContext, text: str, saved: list[SavedQuery]) -> Reply:
    shown = " ".join(text.split())
    lines = [line("使い方: ", Code(UNSUBSCRIBE_USAGE)), _choices(ctx)]
    if saved:
        lines.append(line("保存検索: ", *_numbered(saved)))
    return Reply(
        title=f"「{shown}」はカテゴリーでも、保存している検索でもありません",
        lines=tuple(lines),
        error=True,
    )


def _numbered(saved: list[SavedQuery]) -> list[str | Code]:
    parts: list[str | Code] = []
    for number, search in enumerate(saved, start=1):
        parts += [", "] if number > 1 else []
        parts += [f"{number}. ", Code(search.text)]
    return parts


async def list_subscriptions(ctx: HandlerContext) -> Reply:
    if ctx.user_id is None:
        return Reply(title=NOT_IN_CHAT, error=True)
    slugs = await ctx.db.run(subscriptions_of, platform=ctx.platform, user_id=ctx.user_id)
    saved = await ctx.db.run(saved_searches_of, platform=ctx.platform, user_id=ctx.user_id)
    if not slugs and not saved:
        return Reply(
            title="購読しているものはありません",
            lines=(
                line(Code("/ainews subscribe policy"), " でカテゴリーを、", bullet=True),
                line(
                    Code('/ainews subscribe query:"半導体 規制"'),
                    " で検索に一致する新着を登録できます。",
                    bullet=True,
                ),
            ),
        )
    lines: list[Line] = []
    if slugs:
        ordered = sorted(slugs, key=ctx.taxonomy.order)
        lines.append(line(Strong("カテゴリー"), f": {_labels(ctx, ordered)}"))
    if saved:
        lines.append(line(Strong("保存検索"), "（一致する新着が届きます）"))
        lines += [line(f"{n}. ", Code(s.text)) for n, s in enumerate(saved, start=1)]
        lines.append(
            line("やめるには ", Code("/ainews unsubscribe 1"), " のように番号で指定します。")
        )
    return Reply(title="購読中", lines=tuple(lines))
