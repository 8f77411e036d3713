"""Markdown rendering of the neutral briefing, exactly as in shared/docs/briefing-format.md.

Feed text reaches Markdown through `text` and link targets through `href`, joined by `anchor`
(also used by `reply_markdown`): one path for each, as on Slack and Discord."""

from __future__ import annotations

import re

from bot.render.common import AUTOMATIC, considered, stars
from bot.render.sanitize import http_url, inert_line
from jobs.briefing_model import Briefing, BriefingItem, Link
from jobs.weekly_model import WeeklyItem, WeeklyReport, ref

# What makes a line a heading, quote, list item or thematic break when it starts the line.
# `>`, `*` and `|` are escaped everywhere already.
_BLOCK_MARKER = re.compile(r"^([#+=-]|[0-9]{1,9}(?=[.)]))")


def text(value: str) -> str:
    """Inline Markdown text: inert mentions, one line, no HTML, link or block syntax of its own
    (a feed title `# …` or `- …` must not become a heading or a list)."""
    value = inert_line(value)
    for char in ("\\", "`", "*", "_", "~", "[", "]", "<", ">", "|"):
        value = value.replace(char, "\\" + char)
    return _BLOCK_MARKER.sub(_escape_marker, value)


def _escape_marker(match: re.Match[str]) -> str:
    marker = match.group(1)
    if marker[0].isdigit():  # `1.` / `1)`: the list marker is the punctuation after the number
        return f"{marker}\\"
    return f"\\{marker}"


def href(url: str) -> str | None:
    """A link target, or None when `url` is not http(s); percent-encoded so that no `)`,
    `>`, space or backslash can end the link early."""
    return http_url(url)


def anchor(url: str, label: str) -> str:
    """`[label](url)` where `label` is escaped Markdown already, or the label alone when the
    URL cannot be a link. Every link of a rendering is made here."""
    target = href(url)
    return f"[{label}]({target})" if target else label


def link(item: Link) -> str:
    """A link to `item` labelled with its (escaped) name."""
    return anchor(item.url, text(item.name))


def render_item(item: BriefingItem) -> list[str]:
    lines = [
        f"### {item.number}. {text(item.title)}",
        "",
        "| 項目 | 内容 |",
        "|------|------|",
        f"| ソース | {link(item.source)} |",
        f"| 重要度 | {stars(item.importance)} |",
        "",
        f"**概要**: {text(item.overview)}{AUTOMATIC if item.automatic else ''}",
        "",
        "**詳細ポイント**:",
        *(f"- {text(point)}" for point in item.points[:3]),
        "",
        f"**なぜ重要か**: {text(item.why_important)}",
        "",
        f"**関連キーワード**: {', '.join(text(k) for k in item.keywords)}",
    ]
    if item.related:
        lines += ["", f"**関連報道**: {', '.join(link(r) for r in item.related)}"]
    return lines


def render_briefing(briefing: Briefing) -> str:
    shown = len(briefing.items)
    lines = [
        f"# AI News - {briefing.day.isoformat()}",
        "",
        f"> 🔍 調査カテゴリ: {briefing.categories_considered} / "
        f"調査記事数: {considered(briefing.articles_considered)} / 掲載: {shown}件",
        "",
        *(f"> {text(note)}\n" for note in briefing.notes),
        "---",
        "",
    ]
    for section in briefing.sections:
        lines += [f"## {text(section.heading)}", ""]
        for item in section.items:
            lines += [*render_item(item), "", "---", ""]
    trend = briefing.trend
    lines += [f"## 📊 本日のトレンド分析{AUTOMATIC if trend.automatic else ''}", ""]
    lines += ["### 主要テーマ"]
    lines += [f"**{text(h.name)}**: {text(h.text)}" for h in trend.themes] or ["（該当なし）"]
    lines += ["", "### 注目企業・組織"]
    lines += [f"**{text(h.name)}**: {text(h.text)}" for h in trend.organisations] or [
        "（該当なし）"
    ]
    lines += ["", "### 今後の展望", text(trend.outlook), ""]
    if briefing.footer:
        lines += ["---", "", *(f"> {text(note)}\n" for note in briefing.footer)]
    return "\n".join(lines)


# ── the weekly report ───────────────────────────────────────────────────────────────────────


def render_weekly(report: WeeklyReport) -> str:
    """The weekly report exactly as in the format's "Weekly report" section. The overview's
    headings carry （自動抽出） when it was computed from counts."""
    mark = AUTOMATIC if report.automatic else ""
    lines = [
        "# AI・機械学習 Weekly Report",
        f"{report.start.isoformat()} 〜 {report.end.isoformat()} ｜ "
        f"収集記事 {report.articles_collected}件 ｜ 掲載 {len(report.items)}件",
        "",
        f"## 今週の動向{mark}",
        text(report.summary),
        "",
        f"## 注目トピック{mark}",
        *(f"- **{text(t.name)}** ({', '.join(ref(r) for r in t.refs)})" for t in report.topics),
        *([] if report.topics else ["（該当なし）"]),
        "",
        f"## カテゴリー別動向{mark}",
        "| カテゴリー | 件数 | 動向 |",
        "|---|---|---|",
        *(f"| {text(c.heading)} | {c.count} | {text(c.text)} |" for c in report.categories),
        "",
        f"## 今後の展望{mark}",
        text(report.outlook),
        "",
    ]
    if report.unhealthy_sources:
        names = "、".join(text(s) for s in report.unhealthy_sources)
        lines += [f"> ⚠️ 取得に問題のあるソース: {names}", ""]
    lines += ["---", ""]
    for item in report.items:
        lines += [*render_weekly_item(item), ""]
    return "\n".join(lines)


def render_weekly_item(item: WeeklyItem) -> list[str]:
    published = item.published_at.date().isoformat() if item.published_at else "日付なし"
    lines = [
        f"## {item.ref} {text(item.title)}",
        f"公開日 {published} ｜ {text(item.source.name)} ｜ {item.country}",
        "",
        f"**概要**: {text(item.overview)}{AUTOMATIC if item.automatic else ''}",
        "",
        "**詳細**:",
        f"- **背景**: {text(item.background)}",
        f"- **主要ポイント**: {text(item.main_points)}",
        f"- **影響と展望**: {text(item.impact)}",
        "",
        f"元記事: {href(item.source.url) or text(item.source.url)}",
    ]
    if item.related:
        lines += ["", f"**関連報道**: {', '.join(link(r) for r in item.related)}"]
    return lines
