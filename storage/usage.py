"""Token usage per local day, for the daily budget."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from storage.models import TokenUsage


def record_usage(
    *,
    session: Session,
    day: date,
    model: str,
    purpose: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    session.add(
        TokenUsage(
            day=day,
            model=model,
            purpose=purpose,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    )


def tokens_used_on(*, session: Session, day: date) -> int:
    total = session.exec(
        select(
            func.coalesce(func.sum(TokenUsage.prompt_tokens + TokenUsage.completion_tokens), 0)
        ).where(TokenUsage.day == day)
    ).one()
    return int(total)
