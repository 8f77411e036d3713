"""`/ainews search` and `ainews search`: the best matching stories, one line each."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.filters import SearchRequest
from handlers.reply import ArticleRef, Code, Line, Paging, Reply, line
from storage.search.query import SearchHit, SearchPage, SearchQuery, search
from storage.search.terms import parse_query_text

USAGE = (
    "/ainews search <キーワード> [category:カテゴリー] [source:ソース名] "
    "[since:2026-02-01|7d] [page:2]"
)


def usage_lines() -> tuple[Line, ...]:
    return (
        line("使い方: ", Code(USAGE)),
        line("複数の語はすべて含む記事、", Code('"…"'), " でフレーズ、", Code("-語"), " で除外"),
        line(Code("語*"), " で前方一致（", Code("GPT-4*"), " は GPT-4o も）"),
        line("英単語は語形を問わず一致（", Code("agent"), " は agents も）"),
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
        return Reply(title="検索語がありません", lines=usage_lines(), error=True)
    page = await find(ctx, request)
    pages = max(1, -(-page.total // request.limit))
    if not page.hits:
        if page.total:
            return Reply(
                title=f"「{request.text}」の検索結果は {pages} ページまでです",
                lines=(line(Code(f"page:{pages}"), " までを指定してください。"),),
                error=True,
            )
        return Reply(
            title=f"「{request.text}」に一致する記事はありませんでした",
            text="語を減らすか、別の言い方（英語・カタカナなど）で試してください。",
        )
    first = (request.page - 1) * request.limit + 1
    shown = f"{first}〜{first + len(page.hits) - 1}件目 / 全{page.total}件"
    return Reply(
        title=f"「{request.text}」の検索結果（{shown}）",
        articles=tuple(to_ref(first + i, hit) for i, hit in enumerate(page.hits)),
        shareable=True,
        paging=Paging(page=request.page, pages=pages, total=page.total),
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
