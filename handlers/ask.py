"""`/ainews ask`: an answer written only from stored articles, with numbered citations.

Retrieval is the search index with any-term matching over the question's content words; the
best articles go into the prompt, numbered and fenced (article text cannot give instructions),
inside a token budget. The answer must cite only those numbers and state no number that the
articles do not contain; otherwise, or without a model, the reply is the articles themselves.
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta

from handlers.context import HandlerContext
from handlers.reply import ArticleRef, Code, Reply, line
from handlers.search import to_ref
from jobs.grounding import GENERIC_TERMS, grounding_problems
from jobs.llm import LLMError
from jobs.prompts import ASK_SCHEMA, ASK_SYSTEM, fence
from storage.replies import use_if_allowed
from storage.search.query import SearchHit, SearchQuery, search
from storage.search.terms import ParsedText, term_of

log = logging.getLogger(__name__)

MAX_ARTICLES = 8
NOTHING_FOUND = "保存されている記事の中に、この質問に答えられるものは見つかりませんでした。"
SUGGEST_SEARCH = (line(Code("/ainews search <キーワード>"), " で関連する語を探してみてください。"),)
_WORDS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+\-]*|[\u30a0-\u30ff\u4e00-\u9fff々ー]{2,}")
_TIME_WORDS = {"今日": 1, "本日": 1, "昨日": 2, "今週": 7, "先週": 14, "今月": 31, "最近": 14}
_STOP = frozenset(
    "何 なに 教え 動き 動向 状況 について 最新 ニュース 情報 記事 どう どんな 発表 内容 "
    "what how why when who which the a an of about is are was news latest".split()
)


def question_terms(question: str) -> tuple[ParsedText, int | None]:
    """Content words of a question, and a look-back in days when it names a period."""
    days = None
    words = []
    for word in _WORDS.findall(question):
        if word in _TIME_WORDS:
            days = max(days or 0, _TIME_WORDS[word])
        elif word.lower() not in _STOP and (term := term_of(word)) is not None:
            words.append(term)
    # "AI" matches nearly every stored article: keep such words only when nothing else is asked.
    specific = [t for t in words if " ".join(t.tokens) not in GENERIC_TERMS]
    return ParsedText(tuple(specific or words), ()), days


_CITATION = re.compile(r"\[(\d+)\]")


async def handle_ask(ctx: HandlerContext, question: str) -> Reply:
    question = question.strip()
    if not question:
        return Reply(
            title="質問がありません",
            lines=(line("使い方: ", Code("/ainews ask <質問>")),),
            error=True,
        )
    hits = await retrieve(ctx, question)
    if not hits:
        return Reply(title=f"Q. {question}", text=NOTHING_FOUND, lines=SUGGEST_SEARCH)
    articles = tuple(to_ref(i, hit) for i, hit in enumerate(hits, start=1))
    if ctx.llm is None:
        return _without_model(question, articles)
    limited = await _rate_limited(ctx)
    if limited is not None:
        return limited
    try:
        answer = await _answer(ctx, question, hits)
    except LLMError as exc:
        log.warning("ask failed; listing articles", extra={"error": str(exc)})
        return _without_model(question, articles)
    if answer is None:
        return Reply(
            title=f"Q. {question}", text=NOTHING_FOUND, lines=SUGGEST_SEARCH, articles=articles
        )
    cited = sorted({int(n) for n in _CITATION.findall(answer)})
    return Reply(
        title=f"Q. {question}",
        text=answer,
        articles=tuple(a for a in articles if a.number in cited),
        shareable=True,
    )


async def _rate_limited(ctx: HandlerContext) -> Reply | None:
    """A friendly refusal once the user has had `ask_limit` model answers in the window: the
    model budget is the whole team's, not the most curious member's."""
    if ctx.ask_limit <= 0 or ctx.user_id is None:
        return None
    retry_at = await ctx.db.run(
        use_if_allowed,
        platform=ctx.platform,
        user_id=ctx.user_id,
        command="ask",
        now=ctx.now,
        window=ctx.ask_window,
        limit=ctx.ask_limit,
    )
    if retry_at is None:
        return None
    minutes = max(1, -(-int((retry_at - ctx.now).total_seconds()) // 60))
    window = int(ctx.ask_window.total_seconds() // 60)
    return Reply(
        title="質問の回数が上限に達しました",
        text=(
            f"ask は {window}分あたり{ctx.ask_limit}回までです。約{minutes}分後にもう一度お試し"
            "ください。その間も検索はいつでも使えます。"
        ),
        lines=(line(Code("/ainews search <キーワード>")),),
        error=True,
    )


async def retrieve(ctx: HandlerContext, question: str) -> list[SearchHit]:
    parsed, days = question_terms(question)
    if not parsed.required:
        return []
    since = ctx.now - timedelta(days=days) if days else None
    query = SearchQuery(text=parsed, since=since, limit=MAX_ARTICLES, match_all=False)
    page = await ctx.db.run(search, query=query, now=ctx.now)
    return page.hits


def _material(hits: list[SearchHit]) -> list[str]:
    return [
        f"[{i}] {hit.title_ja or hit.title}（{hit.source}, {hit.published:%Y-%m-%d}）\n"
        f"{hit.overview or ''}\n{hit.snippet}"
        for i, hit in enumerate(hits, start=1)
    ]


async def _answer(ctx: HandlerContext, question: str, hits: list[SearchHit]) -> str | None:
    """The model's answer, or None when it says the articles cannot answer. Raises LLMError
    when the answer cites an article that does not exist or states an unsupported number."""
    assert ctx.llm is not None
    material = _material(hits)
    while len(material) > 1 and ctx.llm.tokens.count("\n\n".join(material)) > ctx.max_prompt_tokens:
        material.pop()  # least relevant first out
    nonce = secrets.token_hex(8)
    reply = await ctx.llm.complete_json(
        purpose="ask",
        system=ASK_SYSTEM.format(nonce=nonce),
        user=f"質問: {question}\n\n" + fence("\n\n".join(material), nonce),
        schema_name="ask_answer",
        schema=ASK_SCHEMA,
        max_output_tokens=ctx.max_output_tokens,
    )
    data = reply.data
    if not data.get("answerable") or not str(data.get("answer", "")).strip():
        return None
    answer = str(data["answer"]).strip()
    numbers = {int(n) for n in _CITATION.findall(answer)}
    if not numbers or not numbers <= set(range(1, len(material) + 1)):
        raise LLMError(f"answer cites articles that were not given: {sorted(numbers)}")
    problems = grounding_problems(
        [_CITATION.sub("", answer)], question + "\n" + "\n".join(material)
    )
    if problems:
        raise LLMError("; ".join(problems))
    return answer


def _without_model(question: str, articles: tuple[ArticleRef, ...]) -> Reply:
    return Reply(
        title=f"Q. {question}",
        text="関連する保存記事です（モデルを使わない自動抽出のため、回答文はありません）。",
        articles=articles,
        automatic=True,
    )
