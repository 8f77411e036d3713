"""Wording and text splitting shared by every renderer (Markdown, Slack, Discord)."""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.render.sanitize import http_url
from handlers.reply import ArticleRef, Paging

AUTOMATIC = "（自動抽出）"


def stars(importance: int) -> str:
    return "⭐" * max(1, min(3, importance))


def considered(count: int) -> str:
    """`約180件` from 100 up (rounded to tens), the exact count below."""
    if count >= 100:
        return f"約{round(count, -1)}件"
    return f"{count}件"


def article_meta(article: ArticleRef, escape: Callable[[str], str]) -> str:
    """`source ・ date ・ category ・ ほかN媒体 ・ reason` under an article in a reply; `escape`
    is the renderer's own, applied to the parts that come from feeds or users."""
    when = article.published.strftime("%Y-%m-%d") if article.published else "日付なし"
    meta = [escape(" ".join(article.source.split())), when]
    if article.category:
        meta.append(escape(" ".join(article.category.split())))
    if article.other_sources:
        meta.append(f"ほか{article.other_sources}媒体")
    if article.reason:  # may quote a user's saved search: escaped like feed text
        meta.append(escape(" ".join(article.reason.split())))
    return " ・ ".join(meta)


def link_citations(
    text: str,
    articles: tuple[ArticleRef, ...],
    *,
    citation: re.Pattern[str],
    anchor: Callable[[str, str], str],
) -> str:
    """`[n]` in already-escaped text (found by the renderer's `citation` pattern, whose group 1
    is n) becomes `anchor(url, "[n]")` for article n; a number with no article, or whose URL
    is not http(s), stays text."""
    urls = {a.number: a.url for a in articles if http_url(a.url) is not None}

    def link_number(match: re.Match[str]) -> str:
        number = int(match.group(1))
        return anchor(urls[number], match.group(0)) if number in urls else match.group(0)

    return citation.sub(link_number, text)


def paging_text(paging: Paging) -> str:
    """Where a paged reply is, in the same words on every platform."""
    return f"ページ {paging.page}/{paging.pages}（全{paging.total}件）"


_SENTENCE_END = re.compile(r"(?:[。！？]|[.!?](?=\s))\s*")
_SPACE = re.compile(r"\s+")


def split_text(
    text: str,
    limit: int,
    *,
    measure: Callable[[str], int] = len,
    atoms: re.Pattern[str] | None = None,
) -> list[str]:
    """`text` in chunks of at most `limit` (as `measure` counts), split rather than cut: at line
    breaks first (the break itself is where one chunk ends), then after a sentence, then at a
    space, and only a run with neither is cut hard. Nothing but the breaks between chunks is
    lost, so joining the chunks with newlines gives the words back in order.

    `atoms` matches markup that must stay whole (a link, an escape `\\*`, an entity `&amp;`):
    a cut never falls inside one unless the atom alone is longer than `limit`.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    chunks: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for index, piece in enumerate(_line_pieces(line, limit, measure, atoms)):
            # Pieces of one line join without a separator; lines join with their newline.
            joined = piece if current is None else current + ("" if index else "\n") + piece
            if current is not None and measure(joined) > limit:
                chunks.append(current)
                current = piece
            else:
                current = joined
    if current is not None:
        chunks.append(current)
    return chunks


def _line_pieces(
    line: str, limit: int, measure: Callable[[str], int], atoms: re.Pattern[str] | None
) -> list[str]:
    pieces: list[str] = []
    while measure(line) > limit:
        cut = _cut(line, limit, measure, atoms)
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return pieces


def _cut(
    line: str, limit: int, measure: Callable[[str], int], atoms: re.Pattern[str] | None
) -> int:
    """Where to end the first piece of a line longer than `limit`: always within 1..limit."""
    room, used = 0, 0
    for char in line:
        used += measure(char)
        if used > limit:
            break
        room += 1
    room = max(room, 1)
    window = line[:room]
    inside = _atom_spans(line, atoms)
    # A break this late leaves pieces of a reasonable size; an earlier one only if nothing else.
    for candidates in (_SENTENCE_END, _SPACE):
        ends = [m.end() for m in candidates.finditer(window) if 0 < m.end() <= room]
        ends = [end for end in ends if not _within(end, inside)]
        late = [end for end in ends if end >= room // 3]
        if late:
            return late[-1]
    for start, end in inside:
        if start < room < end and start > 0:
            return start  # the atom moves whole to the next piece
    return room


def _atom_spans(line: str, atoms: re.Pattern[str] | None) -> list[tuple[int, int]]:
    return [m.span() for m in atoms.finditer(line)] if atoms is not None else []


def _within(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < position < end for start, end in spans)
