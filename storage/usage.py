"""Token usage per local day, and the daily budget all processes share.

The budget is one row per day (`TokenBudgetDay.committed`: spent plus reserved in flight). A
call reserves its worst case with a conditional UPDATE — it succeeds only if the sum stays
within the limit — and settles to what it actually used. Processes racing for the last
tokens are serialised by the row, so together they never pass the limit. A process killed
mid-call leaves its reservation counted until the day ends: the budget errs on the side of
spending less."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import TokenBudgetDay, TokenUsage


def record_usage(
    *,
    session: Session,
    day: date,
    model: str,
    purpose: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Record one call's tokens; they count against `day`'s budget row as well."""
    _ensure_day(session, day)
    session.add(
        TokenUsage(
            day=day,
            model=model,
            purpose=purpose,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
    )
    _add(session, day, prompt_tokens + completion_tokens)


def tokens_used_on(*, session: Session, day: date) -> int:
    total = session.exec(
        select(
            func.coalesce(func.sum(TokenUsage.prompt_tokens + TokenUsage.completion_tokens), 0)
        ).where(TokenUsage.day == day)
    ).one()
    return int(total)


def _ensure_day(session: Session, day: date) -> None:
    """The day's row, starting from what was recorded before it existed."""
    table = TokenBudgetDay.__table__  # type: ignore[attr-defined]
    session.execute(
        insert_or_ignore(session, table).values(
            day=day, committed=tokens_used_on(session=session, day=day)
        )
    )


def _add(session: Session, day: date, tokens: int) -> None:
    if tokens:
        session.execute(
            update(TokenBudgetDay)
            .where(col(TokenBudgetDay.day) == day)
            .values(committed=col(TokenBudgetDay.committed) + tokens)
        )


def reserve_tokens(*, session: Session, day: date, tokens: int, limit: int) -> bool:
    """Reserve `tokens` of `day`'s budget if they fit within `limit`: one conditional UPDATE
    of the day's row, which concurrent reservations of every process queue on."""
    _ensure_day(session, day)
    result = session.execute(
        update(TokenBudgetDay)
        .where(col(TokenBudgetDay.day) == day, col(TokenBudgetDay.committed) + tokens <= limit)
        .values(committed=col(TokenBudgetDay.committed) + tokens)
    )
    return bool(getattr(result, "rowcount", 0))


def settle_tokens(
    *,
    session: Session,
    day: date,
    reserved: int,
    model: str,
    purpose: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Replace a reservation by what the call used (one transaction)."""
    _add(session, day, -reserved)
    if prompt_tokens or completion_tokens:
        record_usage(
            session=session,
            day=day,
            model=model,
            purpose=purpose,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


def committed_on(*, session: Session, day: date) -> int:
    """Tokens spent and reserved on `day` by every process."""
    value = session.exec(
        select(TokenBudgetDay.committed).where(col(TokenBudgetDay.day) == day)
    ).first()
    return int(value) if value is not None else tokens_used_on(session=session, day=day)
