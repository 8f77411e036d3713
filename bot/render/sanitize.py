"""Untrusted text made inert before any renderer escapes it for its platform.

Each renderer has one function for text (`slack.escape`, `discord.escape`, `markdown.text`) and
one for link targets (`slack.href`, `discord.href`, `markdown.href`); both start here, so a
mention or a link end in a feed is caught the same way on every platform.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# No word boundary after the name: `@everyone_x` or `@here1` still reach Discord's parser as
# `@everyone` / `@here` followed by text, and a zero-width space costs nothing where it is not.
_BROADCAST = re.compile(r"@(everyone|here|channel|all)", re.I)
# Slack's <!channel>, <!here>, <!subteam^…>, <@U…>, <#C…>; Discord's <@123>, <@!123>, <@&123>,
# <#123>, slash-command mentions </name sub:123> and guide links <id:browse>. All of these are
# live only when written with ASCII angle brackets.
_ANGLE_MENTION = re.compile(r"<([!@#][^<>\n]{0,200}|/[^<>\n]{1,120}:\d{1,20}|id:[\w-]{1,40})>")
# C0 controls but tab and newline, DEL, and the bidirectional controls (LRM, RLM, ALM, the
# embeddings, overrides and isolates) that can make a line read differently from its bytes.
# Zero-width spaces and joiners stay: they cannot form a mention, and emoji need the joiner.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# Everything a URL may keep as it is. Left out on purpose: ( ) < > [ ] | \ " ' ` { } ^ and
# whitespace, each of which ends or breaks a link in one of the platforms' link syntaxes.
_URL_SAFE = ":/?&=#%+@,;~!$*-._"
# `@everyone` / `@here` inside a link target (`https://e.example/@everyone`): Discord looks for
# them in the whole message text, link targets included, so their `@` is percent-encoded.
_URL_BROADCAST = re.compile(r"@(?=everyone|here)", re.I)
_URL_NEWLINES = re.compile(r"[\t\n\r]")


def neutralise_mentions(text: str) -> str:
    """`@everyone` keeps its look but loses its power (a zero-width space after `@`); angle
    mentions become full-width brackets, which no platform parses.

    Repeated until nothing changes: one pass over `<@1<@2>>` turns the inner mention and leaves
    an outer `<@1＜@2＞>`, which must go too (each pass removes ASCII brackets, so it ends)."""
    text = _CONTROL.sub("", text)
    text = _BROADCAST.sub("@\u200b\\1", text)
    while True:
        neutral = _ANGLE_MENTION.sub("＜\\1＞", text)
        if neutral == text:
            return text
        text = neutral


def one_line(text: str) -> str:
    return " ".join(text.split())


def inert_line(text: str) -> str:
    """One line with inert mentions, joined *before* neutralising: a mention broken over two
    lines (`<@12\\n3>`) must not become live once the lines are joined."""
    return neutralise_mentions(one_line(text))


def http_url(value: str) -> str | None:
    """The URL percent-encoded so that it cannot end a link early (`)`, `>`, `|`, a space) in
    Markdown, Slack or Discord nor mention anyone, or None when it is not http(s): a
    `javascript:` or relative URL from a feed is shown as text, never as a link."""
    # As browsers (and urlsplit) read a URL: C0 controls and spaces at the ends, and tabs and
    # newlines anywhere, are not part of it. Encoding them instead would turn `\x00https://…`
    # into a relative link to `%00https://…`.
    value = _URL_NEWLINES.sub("", value).strip("".join(map(chr, range(0x21))))
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return _URL_BROADCAST.sub("%40", quote(value, safe=_URL_SAFE))


def code_text(text: str) -> str:
    """Content for inline code: one line, inert mentions, and no backtick, which would close
    the span early on every platform (U+02CB looks the same and closes nothing)."""
    return inert_line(text).replace("`", "ˋ")


def spaced(raw: str, rendered: str) -> str:
    """`rendered` with one space put back at each edge where `raw` had whitespace: the parts of
    a line are joined as they are, and escaping one part must not glue it to the next."""
    if not rendered:
        return " " if raw and raw.isspace() else ""
    lead = " " if raw[:1].isspace() else ""
    trail = " " if raw[-1:].isspace() else ""
    return f"{lead}{rendered}{trail}"
