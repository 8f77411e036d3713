"""Untrusted text made inert before any renderer escapes it for its platform."""

from __future__ import annotations

import re

_BROADCAST = re.compile(r"@(everyone|here|channel|all)\b", re.I)
# Slack's <!channel>, <!here>, <!subteam^…>, <@U…>, <#C…> and Discord's <@123>, <@&123>, <#123>.
_ANGLE_MENTION = re.compile(r"<([!@#][^<>\n]{0,200})>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def neutralise_mentions(text: str) -> str:
    """`@everyone` keeps its look but loses its power (a zero-width space after `@`); angle
    mentions become full-width brackets, which no platform parses."""
    text = _CONTROL.sub("", text)
    text = _BROADCAST.sub("@\u200b\\1", text)
    return _ANGLE_MENTION.sub("＜\\1＞", text)


def one_line(text: str) -> str:
    return " ".join(text.split())
