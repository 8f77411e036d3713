"""`/ainews search` and `ainews search`: the best matching stories, one line each."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.filters import SearchRequest
from handlers.reply import ArticleRef, Reply
from storage.search.query import SearchHit, SearchPage, SearchQuery, search
from storage.search.terms import parse_query_text

USAGE = (
    "使い方: `/ainews search <キーワード> [category:カテゴリー] [source:ソース名] "
    '[since:2026-02-01|7d]` — 複数の語はすべて含む記事、"…" でフレーズ、-語 で除外'
)


async def find(ctx: HandlerContext, request: SearchRequest) -> SearchPage:
    parsed = parse_query_text(request.text)
    query = SearchQuery(
        text=parsed,
        category=request.category,
        source=request.source,
        since=request.since,
        limit=request.limit,
        offset=(request.page - 1) * request.limit,
    )
    return await ctx.db.run(search, query=query, now=ctx.now)


async def handle_search(ctx: HandlerContext, request: SearchRequest) -> Reply:
    if not parse_query_text(request.text).required:
        return Reply(title="検索語がありません", text=USAGE, error=True)
    page = await find(ctx, request)
    if not page.hits:
        return Reply(
            title=f"「{request.text}」に一致する記事はありませんでした",
            text="語を減らすか、別の言い方（英語・カタカナなど）で試してください。",
        )
    first = (request.page - 1) * request.limit + 1
    shown = f"{first}〜{first + len(page.hits) - 1}件目 / {page.total}件"
    return Reply(
        title=f"「{request.text}」の検索結果（{shown}）",
        articles=tuple(to_ref(first + i, hit) for i, hit in enumerate(page.hits)),
        shareable=True,
    )


def to_ref(number: int, hit: SearchHit) -> ArticleRef:
    return ArticleRef(
        number=number,
        title=hit.title_ja or hit.title,
        url=hit.url,
        source=hit.source,
        published=hit.published,
        category=hit.category,
        snippet=hit.snippet,
        other_sources=hit.other_sources,
        score=hit.score,
    )
