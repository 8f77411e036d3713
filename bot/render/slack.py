"""Slack Block Kit rendering of replies and briefings (pure functions).

Feed text is untrusted: mentions are neutralised and `&`, `<`, `>` escaped, so no `<!channel>`,
`<@U…>`, `<#C…>`, `<!subteam^…>` or `<url|label>` link from an article is ever live. Limits
enforced here: 50 blocks per message, 3000 characters per section text, 150 per header.
"""

from __future__ import annotations

import re
from typing import Any

from bot.render.common import AUTOMATIC, considered, stars
from bot.render.sanitize import neutralise_mentions, one_line
from handlers.reply import ArticleRef, Reply
from jobs.briefing_model import Briefing, BriefingItem, Link

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FALLBACK = 3000
SHARE_ACTION = "ainews_share"

Block = dict[str, Any]
_CITATION = re.compile(r"\[(\d+)\]")


def escape(text: str) -> str:
    """Inert mrkdwn: mentions neutralised, then Slack's three control characters escaped."""
    text = neutralise_mentions(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link(target: Link) -> str:
    url = target.url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{url}|{escape(one_line(target.name))}>"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, MAX_HEADER)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


# ── replies ─────────────────────────────────────────────────────────────────────────────────


def reply_blocks(reply: Reply, *, share_value: str | None = None) -> list[Block]:
    """Blocks of a handler reply; `share_value` adds a "share to channel" button."""
    if reply.briefing is not None:
        return briefing_digest_blocks(reply.briefing)
    title = f"*{escape(reply.title)}*" + (AUTOMATIC if reply.automatic else "")
    blocks: list[Block] = [section(title)]
    if reply.text:
        blocks.append(section(_cited(escape(reply.text), reply.articles)))
    for article in reply.articles:
        blocks.append(section(_article_text(article)))
    if share_value and reply.shareable and not reply.error:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": SHARE_ACTION,
                        "text": {"type": "plain_text", "text": "チャンネルに共有"},
                        "value": clip(share_value, 2000),
                    }
                ],
            }
        )
    return _fit(blocks)


def reply_text(reply: Reply) -> str:
    """Plain-text fallback (notifications, screen readers)."""
    lines = [reply.title, reply.text] + [f"{a.number}. {a.title} {a.url}" for a in reply.articles]
    return clip(escape("\n".join(line for line in lines if line)), MAX_FALLBACK)


def _cited(text: str, articles: tuple[ArticleRef, ...]) -> str:
    urls = {a.number: a.url for a in articles}
    return _CITATION.sub(
        lambda m: (
            f"<{urls[int(m.group(1))]}|[{m.group(1)}]>" if int(m.group(1)) in urls else m.group(0)
        ),
        text,
    )


def _article_text(article: ArticleRef) -> str:
    when = article.published.strftime("%Y-%m-%d") if article.published else "日付なし"
    meta = [escape(article.source), when]
    if article.category:
        meta.append(escape(article.category))
    if article.other_sources:
        meta.append(f"ほか{article.other_sources}媒体")
    text = f"*{article.number}.* {link(Link(article.title, article.url))}\n{' ・ '.join(meta)}"
    if article.snippet:
        text += f"\n> {escape(one_line(article.snippet))}"
    return text


def _fit(blocks: list[Block]) -> list[Block]:
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    return [*blocks[: MAX_BLOCKS - 1], context(f"ほか{len(blocks) - MAX_BLOCKS + 1}件は省略")]


# ── briefings ───────────────────────────────────────────────────────────────────────────────


def briefing_parent_blocks(briefing: Briefing) -> list[Block]:
    """The thread's parent: header, stats, a short trend summary and the section list."""
    blocks: list[Block] = [
        header(f"AI News - {briefing.day.isoformat()}"),
        context(
            f"🔍 調査カテゴリ: {briefing.categories_considered} / "
            f"調査記事数: {considered(briefing.articles_considered)} / "
            f"掲載: {len(briefing.items)}件"
        ),
    ]
    trend = briefing.trend
    if trend.themes:
        themes = "\n".join(f"• *{escape(h.name)}*: {escape(h.text)}" for h in trend.themes)
        mark = AUTOMATIC if trend.automatic else ""
        blocks.append(section(f"*📊 本日のトレンド{mark}*\n{themes}"))
    if trend.outlook:
        blocks.append(section(f"*今後の展望*\n{escape(trend.outlook)}"))
    contents = "\n".join(
        f"{escape(s.heading)}: "
        + ", ".join(f"{i.number}. {escape(clip(one_line(i.title), 60))}" for i in s.items)
        for s in briefing.sections
    )
    if contents:
        blocks.append(section(f"*目次*（記事はこのスレッドに続きます）\n{contents}"))
    return _fit(blocks)


def briefing_parent_text(briefing: Briefing) -> str:
    return f"AI News - {briefing.day.isoformat()}（{len(briefing.items)}件）"


def briefing_item_blocks(item: BriefingItem, heading: str) -> list[Block]:
    points = "\n".join(f"• {escape(p)}" for p in item.points[:3])
    mark = AUTOMATIC if item.automatic else ""
    body = (
        f"*概要*: {escape(item.overview)}{mark}\n\n*詳細ポイント*:\n{points}\n\n"
        f"*なぜ重要か*: {escape(item.why_important)}"
    )
    blocks: list[Block] = [
        section(f"*{item.number}. {escape(one_line(item.title))}*"),
        context(f"{escape(heading)} ・ {link(item.source)} ・ 重要度 {stars(item.importance)}"),
        section(body),
    ]
    extra = []
    if item.keywords:
        extra.append(f"*関連キーワード*: {escape(', '.join(item.keywords))}")
    if item.related:
        extra.append(f"*関連報道*: {', '.join(link(r) for r in item.related)}")
    if extra:
        blocks.append(context("\n".join(extra)))
    return blocks


def briefing_item_text(item: BriefingItem) -> str:
    return clip(escape(f"{item.number}. {one_line(item.title)} — {item.source.url}"), MAX_FALLBACK)


def briefing_digest_blocks(briefing: Briefing) -> list[Block]:
    """`/ainews digest`: the parent and as many items as fit in one private message."""
    blocks = briefing_parent_blocks(briefing)
    for section_ in briefing.sections:
        for item in section_.items:
            item_blocks = briefing_item_blocks(item, section_.heading)
            if len(blocks) + len(item_blocks) > MAX_BLOCKS - 1:
                rest = len(briefing.items) - item.number + 1
                return [*blocks, context(f"ほか{rest}件はチャンネルのスレッドでご覧ください")]
            blocks += item_blocks
    return blocks
