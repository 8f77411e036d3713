"""Tokens for the search index, shared by indexing and querying on both backends.

Why this approach (measured on the 100k-article benchmark, see bench/search.py): Japanese has
no spaces, so a word tokenizer finds nothing inside a run of kanji, and a trigram index cannot
answer the most common queries, which are one or two characters long (規制, 買収, 米中, AI).
Character bigrams of every CJK run make any substring of two or more characters a token or an
exact phrase of tokens, with no dictionary to miss new words (生成AI, 量子化). One-character
queries use a separate column holding each document's distinct CJK characters. Latin text is
split into words. Everything is NFKC-normalised and lower-cased first, so ＮＶＩＤＩＡ = nvidia.
The same strings go to SQLite FTS5 (unicode61, diacritics kept) and to PostgreSQL's `simple`
configuration, which then agree on what matches.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ヵヶ"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_ACCENTABLE = re.compile("[\u00c0-\u024f\u1e00-\u1eff]")  # Latin letters with diacritics


def normalise(text: str) -> str:
    """NFKC, lower case, Latin diacritics removed (café = cafe on both backends)."""
    text = unicodedata.normalize("NFKC", text).lower()
    if text.isascii() or not _ACCENTABLE.search(text):  # the common case: nothing to strip
        return text
    out: list[str] = []
    base = ""
    for ch in unicodedata.normalize("NFD", text):
        # Only Latin letters lose their accents; kana keep their voicing marks (が ≠ か).
        if unicodedata.combining(ch) and base < "\u0250":
            continue
        base = ch if not unicodedata.combining(ch) else base
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _is_cjk(token: str) -> bool:
    return _CJK_RUN.fullmatch(token) is not None


def tokens(text: str) -> list[str]:
    """Index tokens in order: Latin/digit words, and bigrams of each CJK run (a run of one
    character is kept as that character)."""
    out: list[str] = []
    for piece in _TOKEN.findall(normalise(text)):
        if _is_cjk(piece):
            if len(piece) == 1:
                out.append(piece)
            else:
                out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
        else:
            out.append(piece)
    return out


def index_text(text: str) -> str:
    return " ".join(tokens(text))


def cjk_chars(text: str) -> str:
    """The distinct CJK characters of a document: what one-character queries match."""
    return " ".join(sorted(set("".join(_CJK_RUN.findall(normalise(text))))))


@dataclass(frozen=True, slots=True)
class Term:
    """One query element: a phrase of index tokens, or a single CJK character."""

    tokens: tuple[str, ...]
    single_char: bool = False
    raw: str = ""


def term_of(text: str) -> Term | None:
    """The index tokens a query word or quoted phrase must match, in order."""
    normal = normalise(text).strip()
    if len(normal) == 1 and _is_cjk(normal):
        return Term((normal,), single_char=True, raw=text)
    found = tuple(tokens(normal))
    return Term(found, raw=text) if found else None


_QUERY_PART = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')


@dataclass(frozen=True, slots=True)
class ParsedText:
    required: tuple[Term, ...]
    excluded: tuple[Term, ...]


def parse_query_text(text: str) -> ParsedText:
    """`NVIDIA 決算 "open model" -規制`: every term required, quoted text a phrase, a leading
    minus excludes. Full-width quotes and minus work too (NFKC)."""
    text = unicodedata.normalize("NFKC", text).replace("“", '"').replace("”", '"')
    required: list[Term] = []
    excluded: list[Term] = []
    for match in _QUERY_PART.finditer(text):
        minus = match.group(1) or match.group(3)
        raw = match.group(2) if match.group(2) is not None else match.group(4)
        if raw in ("-", ""):
            continue
        term = term_of(raw)
        if term is not None:
            (excluded if minus else required).append(term)
    return ParsedText(tuple(required), tuple(excluded))
