"""Tokens for the search index, shared by indexing and querying on both backends.

Why this approach (measured on the 100k-article benchmark, see bench/search.py): Japanese has
no spaces, so a word tokenizer finds nothing inside a run of kanji, and a trigram index cannot
answer the most common queries, which are one or two characters long (規制, 買収, 米中, AI).
Character bigrams of every CJK run make any substring of two or more characters a token or an
exact phrase of tokens, with no dictionary to miss new words (生成AI, 量子化). One-character
queries use a separate column holding each document's distinct CJK characters. Latin text is
split into words, and each word is stemmed (Snowball English: `agents` and `agent` are both
`agent`, `running` is `run`). Everything is NFKC-normalised and lower-cased first, so ＮＶＩＤＩＡ =
nvidia. The same strings go to SQLite FTS5 (unicode61, diacritics kept) and to PostgreSQL's
`simple` configuration, which then agree on what matches.

Stemming happens here rather than in each database (FTS5's `porter` tokenizer, PostgreSQL's
`english` configuration) because those are two different algorithms (Porter 1980 vs Snowball
English) that disagree on many words, the `english` configuration also drops stop words, and
both would stem the CJK bigrams' neighbours differently from what the query side computes. One
stemmer in Python (PyStemmer: the Snowball C library, the same algorithm PostgreSQL's
`english_stem` runs, about 0.4 µs a word) gives both backends the same tokens. A query word
ending in `*` matches every indexed word that starts with it (`GPT-4*` finds `GPT-4o`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type hints

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


# Snowball English; PyStemmer keeps its own cache of recent words (news vocabulary repeats).
_ENGLISH = Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """The index form of one normalised Latin word. Stems are not always prefixes of their
    words (`happy` → `happi`, `skies` → `sky`), but all but their last letter are."""
    return str(_ENGLISH.stemWord(word))


def tokens(text: str) -> list[str]:
    """Index tokens in order: stemmed Latin/digit words, and bigrams of each CJK run (a run of
    one character is kept as that character)."""
    out: list[str] = []
    for piece in _TOKEN.findall(normalise(text)):
        if _is_cjk(piece):
            if len(piece) == 1:
                out.append(piece)
            else:
                out.extend(piece[i : i + 2] for i in range(len(piece) - 1))
        else:
            out.append(stem(piece))
    return out


def index_text(text: str) -> str:
    return " ".join(tokens(text))


def cjk_chars(text: str) -> str:
    """The distinct CJK characters of a document: what one-character queries match."""
    return " ".join(sorted(set("".join(_CJK_RUN.findall(normalise(text))))))


@dataclass(frozen=True, slots=True)
class Term:
    """One query element: a phrase of index tokens, or a single CJK character. `prefix`: the
    last token matches any indexed token that starts with it."""

    tokens: tuple[str, ...]
    single_char: bool = False
    raw: str = ""
    prefix: bool = False


def term_of(text: str) -> Term | None:
    """The index tokens a query word or quoted phrase must match, in order; a trailing `*`
    makes the last Latin word a prefix. CJK needs no `*`: any run of two or more characters
    already matches inside longer words (規制 finds 輸出規制)."""
    normal = normalise(text).strip()
    star = normal.endswith("*")
    normal = normal.rstrip("*").strip()
    if len(normal) == 1 and _is_cjk(normal):
        return Term((normal,), single_char=True, raw=text)
    found = tokens(normal)
    if not found:
        return None
    last = _TOKEN.findall(normal)[-1]
    if not (star and not _is_cjk(last)):
        return Term(tuple(found), raw=text)
    # The indexed form of a word the user typed the start of is its stem, which may have lost
    # or changed letters the prefix has (`agents*` must find `agent`, stem `agent`; `happy*`
    # must find `happiness`, stem `happi`): the prefix is what the typed text and its stem
    # share.
    stemmed = stem(last)
    shared = 0
    while shared < min(len(last), len(stemmed)) and last[shared] == stemmed[shared]:
        shared += 1
    found[-1] = last[: max(shared, 1)]
    return Term(tuple(found), raw=text, prefix=True)


_QUERY_PART = re.compile(r'(-?)"([^"]*)"(\*?)|(-?)(\S+)')


@dataclass(frozen=True, slots=True)
class ParsedText:
    required: tuple[Term, ...]
    excluded: tuple[Term, ...]


def parse_query_text(text: str) -> ParsedText:
    """`NVIDIA 決算 "open model" -規制 GPT-4*`: every term required, quoted text a phrase, a
    leading minus excludes, a trailing `*` (after a word or a closing quote) matches the start
    of a word. Full-width quotes, minus and asterisk work too (NFKC)."""
    text = unicodedata.normalize("NFKC", text).replace("“", '"').replace("”", '"')
    required: list[Term] = []
    excluded: list[Term] = []
    for match in _QUERY_PART.finditer(text):
        minus = match.group(1) or match.group(4)
        raw = match.group(2) + match.group(3) if match.group(2) is not None else match.group(5)
        if raw in ("-", ""):
            continue
        term = term_of(raw)
        if term is not None:
            (excluded if minus else required).append(term)
    return ParsedText(tuple(required), tuple(excluded))
