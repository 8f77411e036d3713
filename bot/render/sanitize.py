"""Untrusted text made inert before any renderer escapes it for its platform."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_BROADCAST = re.compile(r"@(everyone|here|channel|all)\b", re.I)
# Slack's <!channel>, <!here>, <!subteam^…>, <@U…>, <#C…>; Discord's <@123>, <@!123>, <@&123>,
# <#123>, slash-command mentions </name sub:123> and guide links <id:browse>. All of these are
# live only when written with ASCII angle brackets.
_ANGLE_MENTION = re.compile(r"<([!@#][^<>\n]{0,200}|/[^<>\n]{1,120}:\d{1,20}|id:[\w-]{1,40})>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Everything a URL may keep as it is. Left out on purpose: ( ) < > [ ] | \ " ' ` { } ^ and
# whitespace, each of which ends or breaks a link in one of the platforms' link syntaxes.
_URL_SAFE = ":/?&=#%+@,;~!$*-._"


def neutralise_mentions(text: str) -> str:
    """`@everyone` keeps its look but loses its power (a zero-width space after `@`); angle
    mentions become full-width brackets, which no platform parses."""
    text = _CONTROL.sub("", text)
    text = _BROADCAST.sub("@\u200b\\1", text)
    return _ANGLE_MENTION.sub("＜\\1＞", text)


def one_line(text: str) -> str:
    return " ".join(text.split())


def http_url(value: str) -> str | None:
    """The URL percent-encoded so that it cannot end a link early (`)`, `>`, `|`, a space) in
    Markdown, Slack or Discord, or None when it is not http(s): a `javascript:` or relative URL
    from a feed is shown as text, never as a link."""
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(value, safe=_URL_SAFE)


def code_text(text: str) -> str:
    """Content for inline code: one line, inert mentions, and no backtick, which would close
    the span early on every platform (U+02CB looks the same and closes nothing)."""
    return one_line(neutralise_mentions(text)).replace("`", "ˋ")


def spaced(raw: str, rendered: str) -> str:
    """`rendered` with one space put back at each edge where `raw` had whitespace: the parts of
    a line are joined as they are, and escaping one part must not glue it to the next."""
    if not rendered:
        return " " if raw and raw.isspace() else ""
    lead = " " if raw[:1].isspace() else ""
    trail = " " if raw[-1:].isspace() else ""
    return f"{lead}{rendered}{trail}"
