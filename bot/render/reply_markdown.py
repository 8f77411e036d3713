"""Markdown (CLI, console, files) rendering of a neutral handler reply.

Lines keep their breaks: consecutive lines end in a hard break (two spaces), so a list of
sources stays a list in any Markdown viewer and reads the same as raw text in a terminal.
"""

from __future__ import annotations

import re

from bot.render.common import AUTOMATIC, article_meta, link_citations, paging_text
from bot.render.markdown import anchor, link, render_briefing, render_weekly, text
from bot.render.sanitize import code_text, spaced
from handlers.reply import ArticleRef, Code, Inline, Line, Reply, Strong
from jobs.briefing_model import Link

_CITATION = re.compile(r"\\\[(\d+)\\\]")  # `[n]` as `text()` escaped it
_HARD_BREAK = "  \n"


def render_reply(reply: Reply) -> str:
    if reply.briefing is not None:
        return render_briefing(reply.briefing) + "".join(f"\n> {text(n)}\n" for n in reply.notices)
    if reply.weekly is not None:
        return render_weekly(reply.weekly) + "".join(f"\n> {text(n)}\n" for n in reply.notices)
    blocks = [f"**{text(reply.title)}**{AUTOMATIC if reply.automatic else ''}"]
    if reply.text:
        blocks.append(_cited(reply.text, reply.articles))
    if reply.lines:
        blocks += _lines(reply.lines)
    blocks += ["\n".join(_article(a)) for a in reply.articles]
    if reply.paging is not None:
        blocks.append(paging_text(reply.paging))
    blocks += [f"> {text(n)}" for n in reply.notices]
    return "\n\n".join(b for b in blocks if b) + "\n"


def _cited(body: str, articles: tuple[ArticleRef, ...]) -> str:
    """Paragraphs of plain text; `[n]` becomes a link to article n, other numbers stay text."""
    paragraphs = re.split(r"\n\s*\n", body.strip())
    return "\n\n".join(
        _HARD_BREAK.join(
            link_citations(text(ln), articles, citation=_CITATION, anchor=anchor)
            for ln in p.split("\n")
            if ln.strip()
        )
        for p in paragraphs
    )


def _lines(lines: tuple[Line, ...]) -> list[str]:
    """Runs of bullets become lists; a plain line right after a list item would otherwise be
    read as part of it, so each run is its own block."""
    runs: list[list[Line]] = []
    for ln in lines:
        if runs and runs[-1][0].bullet == ln.bullet:
            runs[-1].append(ln)
        else:
            runs.append([ln])
    return [
        "\n".join(f"- {_parts(ln.parts)}" for ln in run)
        if run[0].bullet
        else _HARD_BREAK.join(_parts(ln.parts) for ln in run)
        for run in runs
    ]


def _parts(parts: tuple[Inline, ...]) -> str:
    return "".join(_part(p) for p in parts)


def _part(part: Inline) -> str:
    if isinstance(part, str):
        return spaced(part, text(part))
    if isinstance(part, Code):
        return f"`{code_text(part.text)}`"
    if isinstance(part, Strong):
        return f"**{text(part.text)}**"
    return link(Link(part.label, part.url))


def _article(article: ArticleRef) -> list[str]:
    meta = article_meta(article, text)
    lines = [f"{article.number}. {link(Link(article.title, article.url))}", f"   {meta}"]
    if article.snippet:
        lines.append(f"   {text(article.snippet)}")
    return lines
