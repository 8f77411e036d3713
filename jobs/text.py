"""Plain-text helpers for untrusted feed content: HTML to text, sentences, hashing."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

_BLOCK_TAGS = re.compile(
    r"<\s*(?:br|/p|/div|/li|/h[1-6]|/tr|/blockquote|/section|/article|/pre)\b[^>]*>", re.I
)
_DROP_ELEMENTS = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_TAGS = re.compile(r"<[^>]*>")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[.,;:!?、。）」』】])")
_SPACE_AFTER_PUNCT = re.compile(r"([「『（【。、]) +")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]+")
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])\s*|(?<=[.])\s+(?=[A-Z0-9\"'「『(（])")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, paragraphs kept as line breaks. Feeds are untrusted:
    scripts and styles go entirely, entities are decoded once, and nothing is interpreted."""
    if "<" not in markup and "&" not in markup:
        return _tidy(markup)
    text = _COMMENTS.sub(" ", markup)
    text = _DROP_ELEMENTS.sub(" ", text)
    text = _BLOCK_TAGS.sub("\n", text)
    text = _TAGS.sub(" ", text)
    return _tidy(html.unescape(text))


def _tidy(text: str) -> str:
    text = _SPACE_BEFORE_PUNCT.sub("", _SPACES.sub(" ", text))
    text = _SPACE_AFTER_PUNCT.sub(r"\1", text)
    lines = (line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def split_sentences(text: str) -> list[str]:
    """Sentences of Japanese or English prose, in order, without empty pieces."""
    pieces: list[str] = []
    for paragraph in text.split("\n"):
        pieces.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip())
    return pieces


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def content_hash(*parts: str) -> str:
    """Stable identity of an article's content, the key of the summary cache."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:32]


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def looks_japanese(text: str) -> bool:
    """True when kana or kanji make up a noticeable share of the letters (counted by regex,
    not per character in Python: this runs for every entry of every feed)."""
    sample = text[:600]
    if sample.isascii():
        return False
    letters = _NOT_LETTERS.sub("", sample)
    cjk = len(letters) - len(_CJK.sub("", letters))
    return bool(letters) and cjk / len(letters) > 0.2
