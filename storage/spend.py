"""What `ainews stats` counts: tokens per model and summarisation outcomes over local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from storage.models import SummaryOutcome, TokenUsage


@dataclass(frozen=True, slots=True)
class ModelUsage:
    model: str
    calls: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class OutcomeCount:
    method: str
    cause: str | None
    resummary: bool
    articles: int
    reasks: int


def usage_by_model(*, session: Session, first: date, last: date) -> list[ModelUsage]:
    """Tokens per model on the local days first..last (inclusive)."""
    rows = session.exec(
        select(
            TokenUsage.model,
            func.count(),
            func.coalesce(func.sum(TokenUsage.prompt_tokens), 0),
            func.coalesce(func.sum(TokenUsage.completion_tokens), 0),
        )
        .where(TokenUsage.day >= first, TokenUsage.day <= last)
        .group_by(col(TokenUsage.model))
        .order_by(col(TokenUsage.model))
    ).all()
    return [ModelUsage(m, int(n), int(p), int(c)) for m, n, p, c in rows]


def outcome_counts(*, session: Session, first: date, last: date) -> list[OutcomeCount]:
    """Summarisation outcomes on the local days first..last, by method, cause and whether a
    re-summary."""
    rows = session.execute(
        sql_select(
            col(SummaryOutcome.method),
            col(SummaryOutcome.cause),
            col(SummaryOutcome.resummary),
            func.count(),
            func.coalesce(func.sum(SummaryOutcome.reasks), 0),
        )
        .where(col(SummaryOutcome.day) >= first, col(SummaryOutcome.day) <= last)
        .group_by(
            col(SummaryOutcome.method), col(SummaryOutcome.cause), col(SummaryOutcome.resummary)
        )
    ).all()
    return [OutcomeCount(m, c, bool(r), int(n), int(k)) for m, c, r, n, k in rows]
