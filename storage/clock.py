"""Time helpers shared by every layer. Datetimes are aware and in UTC everywhere (SQLModel's
UTCDateTime column type enforces it at the database boundary); local time exists only when
rendering and when computing a briefing window."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
