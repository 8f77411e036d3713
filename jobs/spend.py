"""What the model costs, and how the bot economises when the day's token budget runs low.

Degradation follows the share of the local day's budget not yet used (recorded usage, as
`ainews stats` shows it), in three steps, each keeping the previous one:

| remaining | step | what changes |
|---|---|---|
| > 50 % | 0 | nothing |
| ≤ 50 % | 1 | the trend analysis gets half its input and half its output tokens |
| ≤ 25 % | 2 | importance-1 articles are summarised extractively |
| ≤ 10 % | 3 | every article is summarised extractively |

Importance at step 2 is the extractive heuristic's (`estimate_importance`): it is known before
any call, where the model's own rating would cost the call it is meant to save.

A call that does not fit at all is refused by the budget itself (`BudgetExhausted`). Articles
summarised extractively for any of these budget reasons are re-summarised by the model on a
later day while the budget is at step 0 (`jobs.summarize`). The briefing footer says which
steps touched its articles and its trend analysis (`degradation_notes`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from jobs.llm import LLM


class BudgetLevel(IntEnum):
    NORMAL = 0
    LEAN_TREND = 1
    MINOR_EXTRACTIVE = 2
    ALL_EXTRACTIVE = 3


# (remaining share at or below which, the level): checked from the tightest.
THRESHOLDS: Final = (
    (0.10, BudgetLevel.ALL_EXTRACTIVE),
    (0.25, BudgetLevel.MINOR_EXTRACTIVE),
    (0.50, BudgetLevel.LEAN_TREND),
)
# The trend analysis's material at step 0, and the share of it (and of its output cap) kept
# from step 1 on.
TREND_MATERIAL_TOKENS: Final = 6000
LEAN_TREND_SHARE: Final = 0.5


def lean(tokens: int) -> int:
    """A token allowance of the trend analysis from step 1 on."""
    return max(1, int(tokens * LEAN_TREND_SHARE))


def level_for(remaining_share: float) -> BudgetLevel:
    for threshold, level in THRESHOLDS:
        if remaining_share <= threshold:
            return level
    return BudgetLevel.NORMAL


async def budget_level(llm: LLM | None) -> BudgetLevel:
    """Without a model there is nothing to economise on: NORMAL."""
    if llm is None:
        return BudgetLevel.NORMAL
    return level_for(await llm.budget_remaining())


# Why a summary is extractive (`Summary.fallback`, `SummaryOutcome.cause`).
NO_KEY: Final = "no_key"
BUDGET_SPENT: Final = "budget_spent"  # the budget refused the call
BUDGET_MINOR: Final = "budget_minor"  # step 2: an importance-1 article
BUDGET_ALL: Final = "budget_all"  # step 3
REJECTED: Final = "rejected"  # the reply failed validation or grounding, re-ask included
API_ERROR: Final = "api_error"  # transport or API failure after the client's retries
# Only these are re-summarised later: the model was never asked, for want of budget.
BUDGET_CAUSES: Final = frozenset({BUDGET_SPENT, BUDGET_MINOR, BUDGET_ALL})
CAUSE_LABELS: Final = {
    BUDGET_SPENT: "予算切れ",
    BUDGET_MINOR: "予算節約（重要度1）",
    BUDGET_ALL: "予算節約（全記事）",
    REJECTED: "検証で不採用",
    API_ERROR: "APIエラー",
    NO_KEY: "APIキーなし",
}


def degradation_notes(*, lean_trend: bool, causes: Mapping[str, int]) -> tuple[str, ...]:
    """The briefing footer, in plain Japanese: which steps were taken for this briefing's
    articles (`causes`: budget fallbacks among them) and its trend analysis."""
    notes = []
    if lean_trend:
        notes.append(
            "トークン予算の残りが50%以下になったため、トレンド分析は入力と出力を半分に"
            "減らして作成しました。"
        )
    if causes.get(BUDGET_MINOR):
        notes.append(
            "予算の残りが25%以下になったため、重要度1の記事"
            f"{causes[BUDGET_MINOR]}件はモデルを使わず自動抽出で要約しました。"
        )
    if causes.get(BUDGET_ALL):
        notes.append(
            "予算の残りが10%以下になったため、"
            f"{causes[BUDGET_ALL]}件の記事はすべて自動抽出で要約しました。"
        )
    if causes.get(BUDGET_SPENT):
        notes.append(
            f"1日のトークン予算を使い切ったため、{causes[BUDGET_SPENT]}件の記事を"
            "自動抽出で要約しました。"
        )
    if any(causes.get(c) for c in BUDGET_CAUSES):
        notes.append("これらの記事は、予算に余裕のある日にモデルで要約し直します。")
    return tuple(notes)


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1M tokens."""

    input: float
    output: float


# OpenAI's list prices (standard tier, USD per 1M tokens, 2025); AINEWS_MODEL_PRICES adds or
# replaces entries.
DEFAULT_PRICES: Final[Mapping[str, Price]] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "o4-mini": Price(1.10, 4.40),
}


_SNAPSHOT = re.compile(r"(.+)-\d{4}-\d{2}-\d{2}")


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The model's price; a dated snapshot (`gpt-4o-2024-08-06`) has its model's price, and
    nothing else is guessed (`gpt-5-pro` is not `gpt-5`): an unknown model has no price."""
    if model in prices:
        return prices[model]
    snapshot = _SNAPSHOT.fullmatch(model)
    return prices.get(snapshot.group(1)) if snapshot else None


def cost_usd(price: Price, *, prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000
