"""Slack Block Kit rendering of replies and briefings (pure functions).

Feed text is untrusted and reaches mrkdwn by two functions only: text through `escape`
(mentions neutralised, then `&`, `<`, `>` escaped) and link targets through `href` (http(s) only,
percent-encoded so that no `>`, `|` or space can end the link, `&` written `&amp;`), joined into
`<url|label>` by `anchor`. So no `<!channel>`, `<@U…>`, `<#C…>`, `<!subteam^…>` or link of an
article's own making is ever live: the only `<…>` sequences in a message are the links built here
and the sharer's `<@U…>`, whose id is checked. (mrkdwn has no escape for `*`, `_`, `~` or a
backtick: such characters in a title may style a few words, but can neither mention anyone nor
link anywhere.) Limits enforced here: 50 blocks per message, 3000
characters per section text, 150 per header. Long text is split over several sections, never cut;
only when a reply has more blocks than a message holds are articles left out, and it says so.
"""

from __future__ import annotations

import re
from typing import Any

from bot.publishing.controls import Control
from bot.render.common import (
    AUTOMATIC,
    article_meta,
    considered,
    link_citations,
    paging_text,
    split_text,
    stars,
)
from bot.render.sanitize import code_text, http_url, neutralise_mentions, one_line, spaced
from handlers.reply import ArticleRef, Code, Href, Inline, Line, Reply, Strong
from jobs.briefing_model import Briefing, BriefingItem, Link
from jobs.weekly_model import WeeklyItem, WeeklyReport, ref

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000
MAX_BUTTON_LABEL = 75

Block = dict[str, Any]
_CITATION = re.compile(r"\[(\d+)\]")
# Markup a split must keep whole: a link or mention `<…>` and an entity `&amp;`.
_ATOMS = re.compile(r"<[^<>\n]*>|&(?:amp|lt|gt);")
_SLACK_ID = re.compile(r"[A-Z0-9]+")


def escape(text: str) -> str:
    """Inert mrkdwn: mentions neutralised, then Slack's three control characters escaped."""
    text = neutralise_mentions(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def href(url: str) -> str | None:
    """A link target for `<url|label>`, or None when `url` is not http(s). `http_url` has
    already percent-encoded `<`, `>`, `|` and whitespace; `&` becomes `&amp;` because Slack
    decodes entities inside links too (a raw `&lt;` in a query would otherwise change the URL)."""
    target = http_url(url)
    return None if target is None else target.replace("&", "&amp;")


def anchor(url: str, label: str) -> str:
    """`<url|label>` where `label` is mrkdwn already (escaped by the caller); the label alone
    when the URL cannot be a link. Every link in a Slack message is made here."""
    target = href(url)
    if target is None:
        return label
    return f"<{target}|{label or target}>"


def link(target: Link) -> str:
    """A link to `target` labelled with its (escaped) name."""
    return anchor(target.url, escape(one_line(target.name)))


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def sections(text: str) -> list[Block]:
    """As many sections as `text` needs, split at line or sentence ends (never cut)."""
    return [section(chunk) for chunk in split_text(text, MAX_SECTION, atoms=_ATOMS) if chunk]


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


def actions(controls: tuple[Control, ...]) -> Block:
    """One button per control. `action_id` and `value` are both the control's action string:
    action ids are unique within the message, and the app routes every `ainews:` action to the
    shared publishing core, which parses the value with `parse_action`."""
    buttons: list[Block] = []
    for control in controls:
        button: Block = {
            "type": "button",
            "action_id": control.action,
            "text": {"type": "plain_text", "text": clip(control.label, MAX_BUTTON_LABEL)},
            "value": control.action,
        }
        if control.primary:
            button["style"] = "primary"
        buttons.append(button)
    return {"type": "actions", "elements": buttons}


# ── replies ─────────────────────────────────────────────────────────────────────────────────


def reply_blocks(reply: Reply, *, controls: tuple[Control, ...] = ()) -> list[Block]:
    """Blocks of a handler reply, with `controls` (from `reply_controls`) as buttons at the end."""
    return _reply_blocks(reply, controls, room=MAX_BLOCKS)


def share_blocks(reply: Reply, user_id: str) -> list[Block]:
    """A shared reply as posted in the channel: who shared it, then the reply without buttons
    (the channel copy is a record of what was shared; everyone in the channel could otherwise
    page or re-share the sharer's reply)."""
    if not _SLACK_ID.fullmatch(user_id):
        raise ValueError(f"not a Slack user id: {user_id!r}")
    return [context(f"<@{user_id}> が共有しました"), *_reply_blocks(reply, (), MAX_BLOCKS - 1)]


def reply_text(reply: Reply) -> str:
    """Plain-text fallback (notifications, screen readers)."""
    lines = [reply.title, reply.text, *(_plain_line(ln) for ln in reply.lines)]
    lines += [f"{a.number}. {a.title} {a.url}" for a in reply.articles]
    if reply.paging is not None:
        lines.append(paging_text(reply.paging))
    lines += reply.notices
    return clip(escape("\n".join(line for line in lines if line)), MAX_FALLBACK)


def _reply_blocks(reply: Reply, controls: tuple[Control, ...], room: int) -> list[Block]:
    tail = [actions(controls)] if controls else []
    if reply.briefing is not None:
        digest = briefing_digest_blocks(reply.briefing, room=room - len(tail) - len(reply.notices))
        return [*digest, *(context(escape(n)) for n in reply.notices), *tail]
    if reply.weekly is not None:
        weekly = weekly_blocks(reply.weekly, room=room - len(tail) - len(reply.notices))
        return [*weekly, *(context(escape(n)) for n in reply.notices), *tail]
    head = [section(_strong(reply.title) + (AUTOMATIC if reply.automatic else ""))]
    if reply.text:
        head += sections(_cited(escape(reply.text), reply.articles))
    if reply.lines:
        head += sections("\n".join(_line(ln) for ln in reply.lines))
    body = [section(_article_text(a)) for a in reply.articles]
    after = [context(paging_text(reply.paging))] if reply.paging is not None else []
    after += [context(escape(n)) for n in reply.notices]
    return _fit(head, body, [*after, *tail], room)


def _fit(head: list[Block], body: list[Block], tail: list[Block], room: int) -> list[Block]:
    """At most `room` blocks. Articles (`body`) go first, and the buttons, paging and notices
    (`tail`) are always kept: a reply without its 次へ button cannot be paged at all."""
    if len(head) + len(body) + len(tail) <= room:
        return [*head, *body, *tail]
    keep = room - len(head) - len(tail) - 1
    if keep >= 0:
        return [*head, *body[:keep], context(f"ほか{len(body) - keep}件は省略"), *tail]
    # Text alone longer than a message (some 140,000 characters): its end is left out.
    return [*head[: room - len(tail) - 1], context("（長すぎるため以降を省略しました）"), *tail]


def _cited(text: str, articles: tuple[ArticleRef, ...]) -> str:
    return link_citations(text, articles, citation=_CITATION, anchor=anchor)


def _line(ln: Line) -> str:
    rendered = "".join(_part(p) for p in ln.parts)
    return f"• {rendered}" if ln.bullet else rendered


def _part(part: Inline) -> str:
    if isinstance(part, str):
        return spaced(part, escape(one_line(part)))
    if isinstance(part, Code):
        content = escape(code_text(part.text))
        return f"`{content}`" if content else ""
    if isinstance(part, Strong):
        return _strong(part.text)
    return link(Link(part.label, part.url))


def _strong(text: str) -> str:
    """`*bold*`. mrkdwn has no escape for `*`; a full-width one cannot end the bold early."""
    content = escape(one_line(text)).replace("*", "＊")
    return f"*{content}*" if content else ""


def _plain_line(ln: Line) -> str:
    def plain(part: Inline) -> str:
        if isinstance(part, Href):
            return f"{part.label} ({part.url})"
        return part if isinstance(part, str) else part.text

    text = "".join(plain(p) for p in ln.parts)
    return f"• {text}" if ln.bullet else text


def _article_text(article: ArticleRef) -> str:
    meta = article_meta(article, escape)
    text = f"*{article.number}.* {link(Link(article.title, article.url))}\n{meta}"
    if article.snippet:
        text += f"\n> {escape(one_line(article.snippet))}"
    return text


# ── briefings ───────────────────────────────────────────────────────────────────────────────


def briefing_parent_blocks(briefing: Briefing) -> list[Block]:
    """The thread's parent: header, stats, notes (e.g. how the last publish went), a short trend
    summary and the section list."""
    blocks: list[Block] = [
        header(f"AI News - {briefing.day.isoformat()}"),
        context(
            f"🔍 調査カテゴリ: {briefing.categories_considered} / "
            f"調査記事数: {considered(briefing.articles_considered)} / "
            f"掲載: {len(briefing.items)}件"
        ),
        *(context(escape(note)) for note in briefing.notes),
    ]
    trend = briefing.trend
    if trend.themes:
        themes = "\n".join(
            f"• *{escape(one_line(h.name))}*: {escape(h.text)}" for h in trend.themes
        )
        mark = AUTOMATIC if trend.automatic else ""
        blocks += sections(f"*📊 本日のトレンド{mark}*\n{themes}")
    if trend.outlook:
        blocks += sections(f"*今後の展望*\n{escape(trend.outlook)}")
    contents = "\n".join(
        f"{escape(s.heading)}: "
        + ", ".join(f"{i.number}. {escape(clip(one_line(i.title), 60))}" for i in s.items)
        for s in briefing.sections
    )
    if contents:
        blocks += sections(f"*目次*（記事はこのスレッドに続きます）\n{contents}")
    footer = [context(escape(note)) for note in briefing.footer]
    return _fit(blocks, [], footer, MAX_BLOCKS)


def briefing_parent_text(briefing: Briefing) -> str:
    return f"AI News - {briefing.day.isoformat()}（{len(briefing.items)}件）"


def briefing_item_blocks(item: BriefingItem, heading: str) -> list[Block]:
    points = "\n".join(f"• {escape(one_line(p))}" for p in item.points[:3])
    mark = AUTOMATIC if item.automatic else ""
    body = (
        f"*概要*: {escape(item.overview)}{mark}\n\n*詳細ポイント*:\n{points}\n\n"
        f"*なぜ重要か*: {escape(item.why_important)}"
    )
    blocks: list[Block] = [
        section(f"*{item.number}. {escape(one_line(item.title))}*"),
        context(f"{escape(heading)} ・ {link(item.source)} ・ 重要度 {stars(item.importance)}"),
        *sections(body),
    ]
    extra = []
    if item.keywords:
        extra.append(f"*関連キーワード*: {escape(', '.join(one_line(k) for k in item.keywords))}")
    if item.related:
        extra.append(f"*関連報道*: {', '.join(link(r) for r in item.related)}")
    if extra:
        blocks.append(context("\n".join(extra)))
    return blocks


def briefing_item_text(item: BriefingItem) -> str:
    return clip(escape(f"{item.number}. {one_line(item.title)} — {item.source.url}"), MAX_FALLBACK)


def briefing_digest_blocks(briefing: Briefing, *, room: int = MAX_BLOCKS) -> list[Block]:
    """`/ainews digest`: the parent and as many whole items as fit in `room` blocks."""
    blocks = briefing_parent_blocks(briefing)
    for section_ in briefing.sections:
        for item in section_.items:
            item_blocks = briefing_item_blocks(item, section_.heading)
            if len(blocks) + len(item_blocks) > room - 1:
                rest = len(briefing.items) - item.number + 1
                return [*blocks, context(f"ほか{rest}件はチャンネルのスレッドでご覧ください")]
            blocks += item_blocks
    return blocks


# ── the weekly report ───────────────────────────────────────────────────────────────────────


def weekly_title(report: WeeklyReport) -> str:
    return f"AI・機械学習 Weekly Report {report.week}"


def weekly_parent_blocks(report: WeeklyReport) -> list[Block]:
    """The weekly thread's parent: period and counts, then the whole overview (the items
    follow in the thread)."""
    mark = AUTOMATIC if report.automatic else ""
    topics = "\n".join(
        f"• {_strong(t.name)} ({', '.join(ref(r) for r in t.refs)})" for t in report.topics
    )
    categories = "\n".join(
        f"• {escape(one_line(c.heading))} *{c.count}件*: {escape(one_line(c.text))}"
        for c in report.categories
    )
    blocks: list[Block] = [
        header(weekly_title(report)),
        context(
            f"{report.start.isoformat()} 〜 {report.end.isoformat()} ｜ "
            f"収集記事 {report.articles_collected}件 ｜ 掲載 {len(report.items)}件"
        ),
        *sections(f"*今週の動向{mark}*\n{escape(report.summary)}"),
    ]
    if topics:
        blocks += sections(f"*注目トピック{mark}*\n{topics}")
    if categories:
        blocks += sections(f"*カテゴリー別動向{mark}*\n{categories}")
    blocks += sections(f"*今後の展望{mark}*\n{escape(report.outlook)}")
    if report.unhealthy_sources:
        names = "、".join(escape(one_line(s)) for s in report.unhealthy_sources)
        blocks.append(context(f"⚠️ 取得に問題のあるソース: {names}"))
    return _fit(blocks, [], [], MAX_BLOCKS)


def weekly_parent_text(report: WeeklyReport) -> str:
    return f"{weekly_title(report)}（{len(report.items)}件）"


def weekly_item_blocks(item: WeeklyItem) -> list[Block]:
    published = item.published_at.date().isoformat() if item.published_at else "日付なし"
    mark = AUTOMATIC if item.automatic else ""
    body = (
        f"*概要*: {escape(item.overview)}{mark}\n\n*詳細*:\n"
        f"• *背景*: {escape(one_line(item.background))}\n"
        f"• *主要ポイント*: {escape(one_line(item.main_points))}\n"
        f"• *影響と展望*: {escape(one_line(item.impact))}"
    )
    blocks: list[Block] = [
        section(f"*{item.ref} {escape(one_line(item.title))}*"),
        context(f"公開日 {published} ・ {link(item.source)} ・ {item.country}"),
        *sections(body),
    ]
    extra = [f"元記事: {anchor(item.source.url, escape(one_line(item.source.name)))}"]
    if item.related:
        extra.append(f"*関連報道*: {', '.join(link(r) for r in item.related)}")
    blocks.append(context("\n".join(extra)))
    return blocks


def weekly_item_text(item: WeeklyItem) -> str:
    return clip(escape(f"{item.ref} {one_line(item.title)} — {item.source.url}"), MAX_FALLBACK)


def weekly_blocks(report: WeeklyReport, *, room: int = MAX_BLOCKS) -> list[Block]:
    """`/ainews weekly`: the overview and as many whole items as fit in `room` blocks."""
    blocks = weekly_parent_blocks(report)
    for item in report.items:
        item_blocks = weekly_item_blocks(item)
        if len(blocks) + len(item_blocks) > room - 1:
            rest = len(report.items) - item.number + 1
            return [
                *blocks,
                context(f"ほか{rest}件はチャンネルの週次レポートのスレッドでご覧ください"),
            ]
        blocks += item_blocks
    return blocks
