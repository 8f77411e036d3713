"""Plain-text helpers for untrusted feed content: HTML to text, sentences, hashing."""

from __future__ import annotations

import hashlib
import html
import re
import threading
import unicodedata
from typing import Any

from lxml import etree

# Bodies beyond this many characters are cut before the summariser tokenises, truncates or
# scans them: a 10 MB body (the feed size cap) would otherwise cost seconds of CPU per article,
# and no article is that long (100,000 characters is a short novel, ~25,000 English words).
MAX_BODY_CHARS = 100_000

# Elements whose content is never visible text. `template` can nest; the others are raw text
# (script, style) or whole subtrees (noscript, parsed as markup with scripting off).
_DROPPED = frozenset({"script", "style", "noscript", "template"})
# A line break at `<br>` and at the end of these elements (explicit or implied by the parser:
# `<p>a<p>b` ends the first paragraph as browsers do).
_BLOCKS = frozenset(
    {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote", "section"}
    | {"article", "pre"}
)
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[.,;:!?、。）」』】])")
_SPACE_AFTER_PUNCT = re.compile(r"([「『（【。、]) +")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]+")
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])\s*|(?<=[.])\s+(?=[A-Z0-9\"'「『(（])")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, paragraphs kept as line breaks. Feeds are untrusted:
    scripts and styles go entirely, entities are decoded once, and nothing is interpreted.

    Linear in the input: libxml2's HTML5 tokenizer streams events to `_TextTarget` without
    building a tree (a tree would stop at libxml2's nesting limit of 256 levels and lose the
    rest), so 100,000 nested or unclosed tags, unterminated comments and 10 MB of markup cost
    one pass. Every tag separates words (a space) as the regex stripper this replaces did."""
    if "<" not in markup:
        return _tidy(html.unescape(markup))
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        # One parser per thread, reused: setting up a parser context costs more than parsing
        # a typical entry. Encoding is fixed, so a `<meta charset>` in the markup cannot
        # make libxml2 reinterpret text that is already decoded.
        parser = etree.HTMLParser(
            target=_TextTarget(),
            encoding="utf-8",
            recover=True,
            no_network=True,
            huge_tree=False,
        )
        _parsers.parser = parser
    try:
        parser.feed(_utf8(markup))
        text: str = parser.close()
    except BaseException:
        _parsers.parser = None  # its state is unknown now; the next call starts afresh
        raise
    return _tidy(text)


_parsers = threading.local()


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from a broken numeric reference upstream)
        return text.encode("utf-8", "replace")


class _TextTarget:
    """lxml parser target: collects text nodes, separators for tags, and nothing inside
    `_DROPPED` elements (their text is cut off again when the element ends, so a nested or
    unclosed one cannot leave its content behind)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._dropped_from: list[int] = []
        self.data = self._parts.append  # called for every text node: no Python frame

    def start(self, tag: str, attrib: Any) -> None:
        if tag == "br":
            self._parts.append("\n")
        elif tag in _DROPPED:
            self._dropped_from.append(len(self._parts))
        else:
            self._parts.append(" ")

    def end(self, tag: str) -> None:
        if tag in _BLOCKS:
            self._parts.append("\n")
        elif tag in _DROPPED and self._dropped_from:
            del self._parts[self._dropped_from.pop() :]
            self._parts.append(" ")
        else:
            self._parts.append(" ")

    def comment(self, text: str) -> None:
        self._parts.append(" ")

    def close(self) -> str:
        text = "".join(self._parts)
        self._parts.clear()
        self._dropped_from.clear()
        return text


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
