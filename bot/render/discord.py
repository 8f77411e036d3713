"""Discord rendering of replies and briefings: pure functions returning embeds and strings.

Untrusted text (feeds, the model, a user's query) goes through `escape` once: mentions are
neutralised (`@everyone`, `<@…>`, `<#…>`, `</cmd:…>`), then every character Discord's markdown
acts on is backslash-escaped, so a feed cannot write a masked link, a heading, a quote, a spoiler
or a code block. Bare URLs are left as they are (a backslash inside one would break the link, and
a visible URL deceives no one), but a bare URL ends at `[`, `]`, a backtick or a backslash, which
are escaped like anywhere else: a URL copied whole could otherwise carry `](https://elsewhere)`
into a link label, open a code span, or end in a backslash that cancels the next escape. Footers
are the exception: Discord shows them as plain text, so they get neutralised text without
backslashes (`plain`). Link targets go through `href` (http(s) only, percent-encoded) and every
masked link is made by `anchor`, so the only masked links in a message point at an article's own
sanitised URL.

Limits are Discord's: embed title 256, description 4096, footer 2048 (no fields are used, so
their 1024 never applies), 6000 per message across its embeds, 10 embeds and 2000 characters of
content per message. Long text is
split over several embeds or messages, never cut. Sizes are counted in UTF-16 code units, never
fewer than the code points discord.py's `len(embed)` counts, so both counts stay within limits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import discord

from bot.render.common import (
    AUTOMATIC,
    article_meta,
    considered,
    link_citations,
    paging_text,
    split_text,
    stars,
)
from bot.render.sanitize import (
    code_text,
    http_url,
    inert_line,
    neutralise_mentions,
    one_line,
    spaced,
)
from handlers.reply import ArticleRef, Code, Inline, Line, Reply, Strong
from jobs.briefing_model import Briefing, BriefingItem, Link
from jobs.weekly_model import WeeklyItem, WeeklyReport, ref

MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FOOTER = 2048
MAX_TOTAL = 6000
MAX_EMBEDS = 10
MAX_CONTENT = 2000
TOC_TITLE = 60  # characters of a title in the parent's table of contents

BRAND_COLOUR = 0x3B82F6
CATEGORY_COLOURS: dict[str, int] = {
    "research": 0x8B5CF6,
    "products": 0x3B82F6,
    "funding": 0x22C55E,
    "policy": 0xF59E0B,
    "japan": 0xEF4444,
    "agents": 0x06B6D4,
    "infra": 0x64748B,
    "opensource": 0x84CC16,
    "security": 0xDC2626,
    "society": 0xEC4899,
}

# One pass over the text, left to right: a bare URL is copied whole; a block marker at the start
# of a line (`#`, `-`/`-#`, `1.`) and every inline markup character get a backslash. `>` and `<`
# are escaped everywhere, which also covers quotes and `<t:…>` / `<:emoji:…>` syntax.
_MARKUP = re.compile(
    r"(?P<url>https?://[^\s<\[\]`\\]+[^<.,:;\"')\[\]`\\\s])"
    r"|^(?P<lead>[ \t]*)(?P<marker>[#-]|[0-9]{1,9}[.)])"
    r"|(?P<char>[\\*_~`|\[\]<>])",
    re.MULTILINE,
)
# Markup a split must keep whole: a masked link, a mention, inline code, bold, an escape.
_ATOMS = re.compile(
    r"\[(?:\\.|[^\]\\\n])*\]\((?:<[^>\n]*>|[^)\s]*)\)"
    r"|<@[0-9]+>|`[^`\n]*`|\*\*(?:\\.|[^*\n])*\*\*|\\."
)
_USER_ID = re.compile(r"[0-9]{1,20}")
_CITATION = re.compile(r"\\\[([0-9]+)\\\]")  # `[n]` as `escape` left it


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """One message to send: `channel.send(content or None, embeds=list(embeds))`."""

    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()


# ── text ────────────────────────────────────────────────────────────────────────────────────


def escape(text: str) -> str:
    """Untrusted text made inert for Discord markdown (content, descriptions, titles, fields)."""
    return _MARKUP.sub(_escape_match, neutralise_mentions(text))


def _escape_match(match: re.Match[str]) -> str:
    if match.group("url") is not None:
        return match.group("url")
    marker = match.group("marker")
    if marker is not None:
        lead = match.group("lead")
        if marker[0].isdigit():  # `1.`: the list marker is the punctuation after the number
            return f"{lead}{marker[:-1]}\\{marker[-1]}"
        return f"{lead}\\{marker}"
    return "\\" + match.group("char")


def plain(text: str) -> str:
    """For the fields Discord shows as plain text (footer, author): one line, no mentions."""
    return inert_line(text)


def size(text: str) -> int:
    """Characters as the limits count them, measured in UTF-16 code units (see module doc)."""
    return len(text.encode("utf-16-le")) // 2


def embed_size(embed: discord.Embed) -> int:
    """What an embed adds to a message's 6000: the fields discord.py's `Embed.__len__` sums."""
    total = size(embed.title or "") + size(embed.description or "")
    for field in embed.fields:
        total += size(field.name or "") + size(field.value or "")
    return total + size(embed.footer.text or "") + size(embed.author.name or "")


def href(url: str) -> str | None:
    """A masked link's target, or None when `url` is not http(s): percent-encoded so that no
    `)`, `>`, space or backslash can end or bend it (also the embed's title link)."""
    return http_url(url)


def anchor(url: str, label: str, *, in_content: bool = False) -> str:
    """`[label](url)` where `label` is escaped markdown already; in message content
    `[label](<url>)`, which keeps Discord from adding a preview of every link. The label alone
    when the URL cannot be a link. Every masked link in a message is made here."""
    target = href(url)
    if target is None:
        return label
    return f"[{label or escape(target)}]({f'<{target}>' if in_content else target})"


def link(target: Link, *, in_content: bool = False) -> str:
    """A masked link to `target` labelled with its (escaped) name."""
    return anchor(target.url, escape(one_line(target.name)), in_content=in_content)


def colour(category: str | None) -> discord.Colour:
    return discord.Colour(CATEGORY_COLOURS.get(category or "", BRAND_COLOUR))


# ── briefings ───────────────────────────────────────────────────────────────────────────────


def briefing_parent_embed(briefing: Briefing) -> discord.Embed:
    """The thread's parent: stats and notes, the trend themes, the outlook and the contents.

    This is a summary of what the thread holds, and it must be one embed (the thread starts from
    it): if it would pass 4096 characters the trend text is shortened with a visible "…" (the
    full analysis is in the Markdown rendering); the items themselves are never shortened.
    """
    stats = (
        f"🔍 調査カテゴリ: {briefing.categories_considered} / "
        f"調査記事数: {considered(briefing.articles_considered)} / 掲載: {len(briefing.items)}件"
    )
    stats += "".join(f"\n> {escape(one_line(note))}" for note in briefing.notes)
    trend = briefing.trend
    trend_lines: list[str] = []
    if trend.themes:
        trend_lines.append(f"**📊 本日のトレンド{AUTOMATIC if trend.automatic else ''}**")
        trend_lines += [f"• **{escape(one_line(h.name))}**: {escape(h.text)}" for h in trend.themes]
    if trend.outlook:
        trend_lines += ["", "**今後の展望**", escape(trend.outlook)]
    toc = [
        f"{escape(one_line(s.heading))}: "
        + ", ".join(f"{i.number}. {escape(_shorten(plain(i.title), TOC_TITLE))}" for i in s.items)
        for s in briefing.sections
    ]
    toc_text = "**目次**（記事はこのスレッドに続きます）\n" + "\n".join(toc) if toc else ""
    room = MAX_DESCRIPTION - size(stats) - size(toc_text) - 4  # the blank lines between parts
    trend_text = _clip("\n".join(trend_lines).strip("\n"), max(room, 0))
    parts = [stats, trend_text, _clip(toc_text, MAX_DESCRIPTION - size(stats) - 2)]
    description = "\n\n".join(p for p in parts if p)
    embed = discord.Embed(
        title=f"AI News - {briefing.day.isoformat()}",
        description=_clip(description, MAX_DESCRIPTION),
        colour=discord.Colour(BRAND_COLOUR),
    )
    if briefing.footer:
        embed.set_footer(text=_clip("\n".join(plain(n) for n in briefing.footer), MAX_FOOTER))
    return embed


def _embed_title(prefix: str, title: str) -> tuple[str, list[str]]:
    """An item's embed title, and the lines that open its description: the whole title in
    bold when it is too long for an embed title (which is then shortened)."""
    full = f"{prefix}{escape(one_line(title))}"
    if size(full) <= MAX_TITLE:
        return full, []
    return _short_title(prefix, title), [f"**{escape(one_line(title))}**", ""]


def _item_embeds(
    lines: list[str], title: str, url: str, category: str, footer: str
) -> list[discord.Embed]:
    """An item's text in as many embeds as it needs (same colour); the title and link on the
    first, the footer under the whole text, on the last."""
    embeds = [
        discord.Embed(description=chunk, colour=colour(category))
        for chunk in _descriptions("\n".join(lines))
    ]
    embeds[0].title = title
    embeds[0].url = href(url)
    embeds[-1].set_footer(text=_clip(footer, MAX_FOOTER))
    return embeds


def briefing_item_embeds(item: BriefingItem, heading: str) -> list[discord.Embed]:
    """One item, normally one embed. A description over 4096 characters continues in further
    embeds (same colour, no title; `pack_embeds` keeps them together); the footer with the
    section, the source and the importance goes on the last one, under the whole text."""
    title, lines = _embed_title(f"{item.number}. ", item.title)
    mark = AUTOMATIC if item.automatic else ""
    lines += [
        f"**概要**: {escape(item.overview)}{mark}",
        "",
        "**詳細ポイント**:",
        *(f"• {escape(one_line(point))}" for point in item.points[:3]),
        "",
        f"**なぜ重要か**: {escape(item.why_important)}",
    ]
    if item.keywords:
        keywords = ", ".join(escape(one_line(k)) for k in item.keywords)
        lines += ["", f"**関連キーワード**: {keywords}"]
    if item.related:
        lines += ["", f"**関連報道**: {', '.join(link(r) for r in item.related)}"]
    footer = f"{plain(heading)} ・ {plain(item.source.name)} ・ 重要度 {stars(item.importance)}"
    embeds = _item_embeds(lines, title, item.source.url, item.category, footer)
    if item.published_at is not None and item.published_at.tzinfo is not None:
        embeds[-1].timestamp = item.published_at
    return embeds


def briefing_embeds(briefing: Briefing) -> list[discord.Embed]:
    """The parent followed by every item, for `/ainews digest` (send with `pack_embeds`)."""
    embeds = [briefing_parent_embed(briefing)]
    for section in briefing.sections:
        for item in section.items:
            embeds += briefing_item_embeds(item, section.heading)
    return embeds


def pack_embeds(embeds: Iterable[discord.Embed]) -> list[list[discord.Embed]]:
    """Embeds grouped into messages of at most 10 embeds and 6000 characters.

    An embed without a title continues the one before it (as `briefing_item_embeds` builds
    them): such a group moves whole to the next message rather than being torn apart, and is
    split only when it cannot fit in one message at all.
    """
    groups: list[list[discord.Embed]] = []
    for embed in embeds:
        if embed.title is None and groups:
            groups[-1].append(embed)
        else:
            groups.append([embed])
    messages: list[list[discord.Embed]] = []
    current: list[discord.Embed] = []
    used = 0
    for group in groups:
        group_size = sum(embed_size(e) for e in group)
        fits_alone = len(group) <= MAX_EMBEDS and group_size <= MAX_TOTAL
        if (
            current
            and fits_alone
            and (len(current) + len(group) > MAX_EMBEDS or used + group_size > MAX_TOTAL)
        ):
            messages.append(current)
            current, used = [], 0
        for embed in group:
            embed_chars = embed_size(embed)
            if embed_chars > MAX_TOTAL:
                raise ValueError(f"one embed of {embed_chars} characters exceeds a message")
            if current and (len(current) >= MAX_EMBEDS or used + embed_chars > MAX_TOTAL):
                messages.append(current)
                current, used = [], 0
            current.append(embed)
            used += embed_chars
    if current:
        messages.append(current)
    return messages


# ── the weekly report ───────────────────────────────────────────────────────────────────────


def weekly_title(report: WeeklyReport) -> str:
    return f"AI・機械学習 Weekly Report {report.week}"


def weekly_parent_embed(report: WeeklyReport) -> discord.Embed:
    """The weekly thread's parent: period and counts, then the overview, in one embed (the
    thread starts from it). Past 4096 characters the overview is shortened with a visible "…";
    the items, in the thread, never are."""
    mark = AUTOMATIC if report.automatic else ""
    stats = (
        f"{report.start.isoformat()} 〜 {report.end.isoformat()} ｜ "
        f"収集記事 {report.articles_collected}件 ｜ 掲載 {len(report.items)}件"
    )
    lines = [f"**今週の動向{mark}**", escape(report.summary)]
    if report.topics:
        lines += ["", f"**注目トピック{mark}**"]
        lines += [
            f"• **{escape(one_line(t.name))}** ({', '.join(ref(r) for r in t.refs)})"
            for t in report.topics
        ]
    if report.categories:
        lines += ["", f"**カテゴリー別動向{mark}**"]
        lines += [
            f"• {escape(one_line(c.heading))} **{c.count}件**: {escape(one_line(c.text))}"
            for c in report.categories
        ]
    lines += ["", f"**今後の展望{mark}**", escape(report.outlook)]
    if report.unhealthy_sources:
        names = "、".join(escape(one_line(s)) for s in report.unhealthy_sources)
        lines += ["", f"⚠️ 取得に問題のあるソース: {names}"]
    room = MAX_DESCRIPTION - size(stats) - 2
    description = stats + "\n\n" + _clip("\n".join(lines), max(room, 0))
    return discord.Embed(
        title=weekly_title(report),
        description=_clip(description, MAX_DESCRIPTION),
        colour=discord.Colour(BRAND_COLOUR),
    )


def weekly_item_embeds(item: WeeklyItem) -> list[discord.Embed]:
    """One of the week's items, normally one embed (continued like `briefing_item_embeds`)."""
    title, lines = _embed_title(f"{item.ref} ", item.title)
    mark = AUTOMATIC if item.automatic else ""
    lines += [
        f"**概要**: {escape(item.overview)}{mark}",
        "",
        "**詳細**:",
        f"• **背景**: {escape(one_line(item.background))}",
        f"• **主要ポイント**: {escape(one_line(item.main_points))}",
        f"• **影響と展望**: {escape(one_line(item.impact))}",
        "",
        f"元記事: {link(item.source)}",
    ]
    if item.related:
        lines += ["", f"**関連報道**: {', '.join(link(r) for r in item.related)}"]
    published = item.published_at.date().isoformat() if item.published_at else "日付なし"
    footer = f"公開日 {published} ・ {plain(item.source.name)} ・ {item.country}"
    return _item_embeds(lines, title, item.source.url, item.category, footer)


def weekly_embeds(report: WeeklyReport) -> list[discord.Embed]:
    """The overview followed by every item, for `/ainews weekly` (send with `pack_embeds`)."""
    embeds = [weekly_parent_embed(report)]
    for item in report.items:
        embeds += weekly_item_embeds(item)
    return embeds


# ── replies ─────────────────────────────────────────────────────────────────────────────────


def reply_messages(reply: Reply) -> list[DiscordMessage]:
    """A handler reply as one or more messages (content ≤ 2000, embeds packed). Buttons for
    `reply_controls` belong on the last message."""
    notices = [f"> {escape(one_line(n))}" for n in reply.notices]
    if reply.briefing is not None:
        return _assemble("\n".join(notices), briefing_embeds(reply.briefing))
    if reply.weekly is not None:
        return _assemble("\n".join(notices), weekly_embeds(reply.weekly))
    blocks = [f"**{escape(one_line(reply.title))}**{AUTOMATIC if reply.automatic else ''}"]
    if reply.text:
        blocks.append(_cited(escape(reply.text.strip("\n")), reply.articles))
    if reply.lines:
        blocks.append("\n".join(_line(ln) for ln in reply.lines))
    blocks += notices
    if reply.paging is not None:
        blocks.append(paging_text(reply.paging))
    return _assemble("\n".join(blocks), _article_embeds(reply.articles))


def share_header(user_id: str) -> str:
    """Who shared a reply, sent as its own message before `reply_messages` of the reply. The id
    comes from Discord itself, but is checked to be a snowflake before it goes into markup."""
    if not _USER_ID.fullmatch(user_id):
        raise ValueError(f"not a Discord user id: {user_id!r}")
    return f"<@{user_id}> が共有しました"


def _assemble(content: str, embeds: list[discord.Embed]) -> list[DiscordMessage]:
    """Content in chunks of ≤ 2000, the embeds on the last chunk and after it."""
    batches = pack_embeds(embeds)
    messages = [DiscordMessage(content=c) for c in _chunks(content, MAX_CONTENT)]
    if messages and batches:
        messages[-1] = DiscordMessage(content=messages[-1].content, embeds=tuple(batches.pop(0)))
    return messages + [DiscordMessage(embeds=tuple(batch)) for batch in batches]


def _cited(text: str, articles: tuple[ArticleRef, ...]) -> str:
    def in_content(url: str, label: str) -> str:
        return anchor(url, label, in_content=True)

    return link_citations(text, articles, citation=_CITATION, anchor=in_content)


def _line(ln: Line) -> str:
    rendered = "".join(_part(p) for p in ln.parts)
    return f"• {rendered}" if ln.bullet else rendered


def _part(part: Inline) -> str:
    if isinstance(part, str):
        return spaced(part, escape(one_line(part)))
    if isinstance(part, Code):
        content = code_text(part.text)
        return f"`{content}`" if content else ""
    if isinstance(part, Strong):
        content = escape(one_line(part.text))
        return f"**{content}**" if content else ""
    return link(Link(part.label, part.url), in_content=True)


def _article_embeds(articles: tuple[ArticleRef, ...]) -> list[discord.Embed]:
    """Articles listed in embed descriptions (links there get no previews), a new embed only
    between two articles unless one article alone is longer than a description."""
    descriptions: list[str] = []
    current = ""
    for article in articles:
        for piece in _descriptions(_article_text(article)):
            candidate = f"{current}\n\n{piece}" if current else piece
            if current and size(candidate) > MAX_DESCRIPTION:
                descriptions.append(current)
                current = piece
            else:
                current = candidate
    if current:
        descriptions.append(current)
    return [discord.Embed(description=d, colour=discord.Colour(BRAND_COLOUR)) for d in descriptions]


def _article_text(article: ArticleRef) -> str:
    meta = article_meta(article, escape)
    text = f"**{article.number}.** {link(Link(article.title, article.url))}\n{meta}"
    if article.snippet:
        text += f"\n> {escape(one_line(article.snippet))}"
    return text


# ── splitting ───────────────────────────────────────────────────────────────────────────────


def _chunks(text: str, limit: int) -> list[str]:
    """Non-empty chunks of at most `limit`; blank lines at a chunk's edges are dropped (Discord
    would drop them too, and an embed or message of only whitespace is refused)."""
    chunks = (c.strip("\n") for c in split_text(text, limit, measure=size, atoms=_ATOMS))
    return [c for c in chunks if c.strip()]


def _descriptions(text: str) -> list[str]:
    return _chunks(text, MAX_DESCRIPTION) or ["\u200b"]


def _clip(text: str, limit: int) -> str:
    """For the few texts that must fit one field (a footer, the parent's summary):
    shortened with a visible "…", never silently."""
    if size(text) <= limit:
        return text
    if limit < 1:
        return ""
    kept = text
    while kept and size(kept) > limit - 1:
        kept = kept[: -max(1, (size(kept) - limit + 1) // 2)]
    line_end = kept.rfind("\n")
    if line_end >= len(kept) // 2:  # end at a line rather than inside a link or bold
        return kept[:line_end] + "\n…"
    return kept.removesuffix("\\") + "…"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short_title(prefix: str, title: str) -> str:
    """`<prefix><start of the title>…` within 256; the full title opens the description."""
    words = one_line(title)
    keep = len(words)
    while keep > 0 and size(prefix + escape(words[:keep]) + "…") > MAX_TITLE:
        keep -= max(1, (size(prefix + escape(words[:keep]) + "…") - MAX_TITLE) // 2)
    return prefix + escape(words[: max(keep, 0)]).rstrip() + "…"
