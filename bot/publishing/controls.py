"""The buttons under a reply, decided once for every platform.

A button carries only a stored reply's id (and a page number), never the command: sharing posts
exactly the reply the user saw, without calling the model again, and the value fits Discord's
100-character `custom_id` as well as Slack's `action_id`/`value`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.reply import Reply

PREFIX = "ainews:"
_ACTION = re.compile(r"ainews:(share|page):(\d{1,18})(?::(\d{1,6}))?")


@dataclass(frozen=True, slots=True)
class Control:
    label: str
    action: str  # what the platform sends back: parsed by `parse_action`
    primary: bool = False


@dataclass(frozen=True, slots=True)
class Share:
    reply_id: int


@dataclass(frozen=True, slots=True)
class Page:
    reply_id: int
    page: int


Action = Share | Page


def reply_controls(reply: Reply, reply_id: int | None) -> tuple[Control, ...]:
    """前へ / 次へ for a paged reply, and チャンネルに共有 for a shareable one."""
    if reply_id is None or reply.error:
        return ()
    controls: list[Control] = []
    if reply.paging is not None:
        if reply.paging.has_previous:
            controls.append(Control("前へ", f"{PREFIX}page:{reply_id}:{reply.paging.page - 1}"))
        if reply.paging.has_next:
            controls.append(Control("次へ", f"{PREFIX}page:{reply_id}:{reply.paging.page + 1}"))
    if reply.shareable:
        controls.append(Control("チャンネルに共有", f"{PREFIX}share:{reply_id}", primary=True))
    return tuple(controls)


def parse_action(value: str) -> Action | None:
    match = _ACTION.fullmatch(value)
    if match is None:
        return None
    kind, reply_id, page = match.group(1), int(match.group(2)), match.group(3)
    if kind == "share":
        return Share(reply_id)
    return Page(reply_id, int(page)) if page else None
