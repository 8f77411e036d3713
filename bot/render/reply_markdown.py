"""Markdown (CLI, console) rendering of a neutral handler reply."""

from __future__ import annotations

import re

from bot.render.common import AUTOMATIC
from bot.render.markdown import link, text, url
from handlers.reply import ArticleRef, Reply
from jobs.briefing_model import Link

_CITATION = re.compile(r"\\\[(\d+)\\\]")


def render_reply(reply: Reply) -> str:
    lines = [f"**{text(reply.title)}**{AUTOMATIC if reply.automatic else ''}", ""]
    if reply.text:
        lines += [_cited(reply.text, reply.articles), ""]
    for article in reply.articles:
        lines += _article(article)
    return "\n".join(lines).rstrip() + "\n"


def _cited(body: str, articles: tuple[ArticleRef, ...]) -> str:
    """`[n]` becomes a link to article n; numbers without an article stay plain text."""
    urls = {a.number: a.url for a in articles}

    def link_number(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return f"[\\[{number}\\]]({url(urls[number])})" if number in urls else match.group(0)

    return _CITATION.sub(link_number, text(body))


def _article(article: ArticleRef) -> list[str]:
    when = article.published.strftime("%Y-%m-%d") if article.published else "日付なし"
    meta = f"{text(article.source)} ・ {when}"
    if article.category:
        meta += f" ・ {text(article.category)}"
    if article.other_sources:
        meta += f" ・ ほか{article.other_sources}媒体"
    lines = [f"{article.number}. {link(Link(article.title, article.url))}", f"   {meta}"]
    if article.snippet:
        lines.append(f"   {text(article.snippet)}")
    return [*lines, ""]
