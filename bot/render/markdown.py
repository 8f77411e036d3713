"""Markdown rendering of the neutral briefing, exactly as in shared/docs/briefing-format.md."""

from __future__ import annotations

from urllib.parse import quote

from bot.render.common import AUTOMATIC, considered, stars
from bot.render.sanitize import neutralise_mentions, one_line
from jobs.briefing_model import Briefing, BriefingItem, Link


def text(value: str) -> str:
    """Inline Markdown text: inert mentions, one line, no HTML or link syntax of its own."""
    value = one_line(neutralise_mentions(value))
    for char in ("\\", "`", "*", "_", "[", "]", "<", ">", "|"):
        value = value.replace(char, "\\" + char)
    return value


def url(value: str) -> str:
    return quote(value, safe=":/?&=#%+@,;~!$'*-._")


def link(item: Link) -> str:
    return f"[{text(item.name)}]({url(item.url)})"


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
        "---",
        "",
    ]
    for section in briefing.sections:
        lines += [f"## {section.heading}", ""]
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
    return "\n".join(lines)
