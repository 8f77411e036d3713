"""`sources list | add | remove` from chat. Sources added here are untrusted: they must be
http(s) and are fetched through the public-only resolver (jobs.public_only)."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.reply import Href, Reply, line
from jobs.public_only import literal_address_reason, url_problem
from jobs.urls import host_of
from storage.sources import SourceSpec, add_missing_sources, list_sources, remove_source_by


async def list_sources_reply(ctx: HandlerContext) -> Reply:
    sources = await ctx.db.run(list_sources)
    lines = []
    for source in sources:
        state = "未取得" if source.last_polled_at is None else "OK"
        if source.last_error:
            state = f"エラー{source.error_count}回: {source.last_error}"
        label = (
            ctx.taxonomy.get(source.category).label
            if source.category in ctx.taxonomy.slugs
            else source.category
        )
        lines.append(line(Href(source.name, source.url), f"（{label}） — {state}", bullet=True))
    return Reply(
        title=f"巡回中のソース（{len(sources)}件）",
        lines=tuple(lines),
        text="" if lines else "なし",
    )


async def add_source_from_chat(ctx: HandlerContext, url: str, category: str | None) -> Reply:
    problem = url_problem(url)
    if problem is None and not ctx.allow_private_sources:
        problem = literal_address_reason(url)
    if problem:
        return Reply(title=f"追加できません: {problem}", error=True)
    slug = ctx.taxonomy.slugs[0]
    if category:
        resolved = ctx.taxonomy.resolve(category)
        if resolved is None:
            return Reply(title=f"カテゴリー「{category}」はありません", error=True)
        slug = resolved.slug
    spec = SourceSpec(url=url, name=host_of(url), category=slug)
    added = await ctx.db.run(add_missing_sources, specs=[spec], trusted=False)
    if not added:
        return Reply(title=f"{url} はすでに登録されています")
    return Reply(title=f"ソースを追加しました: {url}（{slug}）", text="次の巡回から取得します。")


async def remove_source_from_chat(ctx: HandlerContext, url: str) -> Reply:
    removed = await ctx.db.run(remove_source_by, url_or_id=url)
    if not removed:
        return Reply(title=f"{url} というソースはありません", error=True)
    return Reply(title=f"ソースを削除しました: {url}")
