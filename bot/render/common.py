"""Wording shared by every rendering of the briefing format."""

from __future__ import annotations

AUTOMATIC = "（自動抽出）"


def stars(importance: int) -> str:
    return "⭐" * max(1, min(3, importance))


def considered(count: int) -> str:
    """`約180件` from 100 up (rounded to tens), the exact count below."""
    if count >= 100:
        return f"約{round(count, -1)}件"
    return f"{count}件"
