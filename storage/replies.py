"""Replies kept for their buttons (share, page) and the per-user use counts behind rate limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from storage.clock import ensure_utc
from storage.models import CommandUse, StoredReply


def store_reply(
    *, session: Session, platform: str, user_id: str, command: str, payload: dict[str, Any]
) -> int:
    row = StoredReply(platform=platform, user_id=user_id, command=command, payload=payload)
    session.add(row)
    session.flush()
    assert row.id is not None
    return row.id


def load_reply(*, session: Session, reply_id: int) -> StoredReply | None:
    return session.get(StoredReply, reply_id)


def prune_replies(*, session: Session, before: datetime) -> int:
    """Buttons older than `before` stop working; returns how many replies were dropped."""
    result = session.execute(delete(StoredReply).where(col(StoredReply.created_at) < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def use_if_allowed(
    *,
    session: Session,
    platform: str,
    user_id: str,
    command: str,
    now: datetime,
    window: timedelta,
    limit: int,
) -> datetime | None:
    """Record one use and return None when the user has had fewer than `limit` uses in the
    `window` before `now`; otherwise record nothing and return when the oldest counted use
    leaves the window (so the reply can say when to try again)."""
    since = now - window
    where = (
        col(CommandUse.platform) == platform,
        col(CommandUse.user_id) == user_id,
        col(CommandUse.command) == command,
        col(CommandUse.used_at) >= since,
    )
    used = session.exec(select(func.count()).select_from(CommandUse).where(*where)).one()
    if used >= limit:
        oldest = session.exec(select(func.min(CommandUse.used_at)).where(*where)).one()
        return ensure_utc(oldest) + window if oldest is not None else now + window
    session.add(CommandUse(platform=platform, user_id=user_id, command=command, used_at=now))
    session.execute(delete(CommandUse).where(col(CommandUse.used_at) < since))
    return None
