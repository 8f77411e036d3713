"""`stats`: tokens, estimated cost and how articles were summarised — today, this ISO week and
this calendar month, as local days in the configured zone of the context's clock.

Cost is an estimate from `AINEWS_MODEL_PRICES` (USD per 1M input / output tokens); a model
without a price is named rather than counted as free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from handlers.context import HandlerContext
from handlers.reply import Line, Reply, Strong, line
from jobs.spend import CAUSE_LABELS, BudgetLevel, cost_usd, level_for, price_of
from storage.spend import ModelUsage, OutcomeCount, outcome_counts, usage_by_model

PERIODS = (("today", "今日"), ("week", "今週"), ("month", "今月"))
LEVEL_LABELS = {
    BudgetLevel.NORMAL: "通常",
    BudgetLevel.LEAN_TREND: "段階1: トレンド分析を縮小",
    BudgetLevel.MINOR_EXTRACTIVE: "段階2: 重要度1は自動抽出",
    BudgetLevel.ALL_EXTRACTIVE: "段階3: すべて自動抽出",
}


@dataclass(frozen=True, slots=True)
class PeriodStats:
    name: str
    label: str
    first: date
    last: date
    models: tuple[ModelUsage, ...]
    outcomes: tuple[OutcomeCount, ...]
    costs: dict[str, float | None]  # per model; None: no price configured

    @property
    def prompt_tokens(self) -> int:
        return sum(m.prompt_tokens for m in self.models)

    @property
    def completion_tokens(self) -> int:
        return sum(m.completion_tokens for m in self.models)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def calls(self) -> int:
        return sum(m.calls for m in self.models)

    @property
    def cost(self) -> float:
        return sum(c for c in self.costs.values() if c is not None)

    @property
    def unpriced(self) -> list[str]:
        return [m for m, c in self.costs.items() if c is None]

    def articles(self, method: str | None = None, *, resummary: bool = False) -> int:
        return sum(
            o.articles
            for o in self.outcomes
            if o.resummary == resummary and (method is None or o.method == method)
        )

    @property
    def cache_hits(self) -> int:
        return sum(o.articles for o in self.outcomes if o.method == "cached")

    @property
    def reasks(self) -> int:
        return sum(o.reasks for o in self.outcomes)

    @property
    def fallbacks(self) -> dict[str, int]:
        causes: dict[str, int] = {}
        for o in self.outcomes:
            if o.method == "extractive":
                cause = o.cause or "unknown"
                causes[cause] = causes.get(cause, 0) + o.articles
        return dict(sorted(causes.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True, slots=True)
class SpendStats:
    today: date
    budget: int
    periods: tuple[PeriodStats, ...]

    @property
    def used_today(self) -> int:
        return self.periods[0].total_tokens

    @property
    def remaining_share(self) -> float:
        return max(0.0, 1 - self.used_today / self.budget) if self.budget > 0 else 0.0

    @property
    def level(self) -> BudgetLevel:
        return level_for(self.remaining_share)


def period_bounds(today: date) -> dict[str, tuple[date, date]]:
    """Each period from its first local day up to today: the ISO week starts on Monday."""
    return {
        "today": (today, today),
        "week": (today - timedelta(days=today.weekday()), today),
        "month": (today.replace(day=1), today),
    }


async def collect_stats(ctx: HandlerContext) -> SpendStats:
    today = ctx.now.astimezone(ctx.tz).date()
    bounds = period_bounds(today)
    periods = []
    for name, label in PERIODS:
        first, last = bounds[name]
        models = await ctx.db.run(usage_by_model, first=first, last=last)
        outcomes = await ctx.db.run(outcome_counts, first=first, last=last)
        costs: dict[str, float | None] = {}
        for usage in models:
            price = price_of(usage.model, ctx.model_prices)
            costs[usage.model] = (
                None
                if price is None
                else cost_usd(
                    price,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            )
        periods.append(PeriodStats(name, label, first, last, tuple(models), tuple(outcomes), costs))
    return SpendStats(today=today, budget=ctx.daily_token_budget, periods=tuple(periods))


def stats_json(stats: SpendStats) -> dict[str, Any]:
    """`ainews stats --json`."""
    return {
        "day": stats.today.isoformat(),
        "budget": {
            "daily_limit": stats.budget,
            "used_today": stats.used_today,
            "remaining_share": round(stats.remaining_share, 4),
            "level": int(stats.level),
        },
        **{p.name: _period_json(p) for p in stats.periods},
    }


def _period_json(period: PeriodStats) -> dict[str, Any]:
    return {
        "first": period.first.isoformat(),
        "last": period.last.isoformat(),
        "calls": period.calls,
        "prompt_tokens": period.prompt_tokens,
        "completion_tokens": period.completion_tokens,
        "total_tokens": period.total_tokens,
        "cost_usd": round(period.cost, 6),
        "unpriced_models": period.unpriced,
        "models": {
            m.model: {
                "calls": m.calls,
                "prompt_tokens": m.prompt_tokens,
                "completion_tokens": m.completion_tokens,
                "cost_usd": _rounded(period.costs[m.model]),
            }
            for m in period.models
        },
        "summarized": period.articles(),
        "llm": period.articles("llm"),
        "cached": period.articles("cached"),
        "extractive": period.articles("extractive"),
        "resummarized": period.articles(resummary=True),
        "cache_hits": period.cache_hits,
        "reasks": period.reasks,
        "fallbacks": period.fallbacks,
    }


async def handle_stats(ctx: HandlerContext) -> Reply:
    stats = await collect_stats(ctx)
    lines: list[Line] = []
    if stats.budget > 0:
        lines.append(
            line(
                Strong("本日の予算"),
                f": {stats.used_today:,} / {stats.budget:,} トークン"
                f"（残り {stats.remaining_share:.0%}、{LEVEL_LABELS[stats.level]}）",
            )
        )
    for period in stats.periods:
        lines += _period_lines(period)
    return Reply(title=f"利用状況（{stats.today.isoformat()} 時点）", lines=tuple(lines))


def _period_lines(period: PeriodStats) -> list[Line]:
    days = (
        period.first.isoformat()
        if period.first == period.last
        else f"{period.first.isoformat()}〜{period.last.isoformat()}"
    )
    cost = f"推定 {_usd(period.cost)}"
    if period.unpriced:
        cost += f"（価格未設定: {', '.join(period.unpriced)}）"
    fallbacks = "、".join(
        f"{CAUSE_LABELS.get(cause, cause)} {n}件" for cause, n in period.fallbacks.items()
    )
    return [
        line(
            Strong(f"{period.label}（{days}）"),
            f": {period.total_tokens:,} トークン（入力 {period.prompt_tokens:,} / "
            f"出力 {period.completion_tokens:,}、{period.calls}回）、{cost}",
        ),
        line(
            f"要約 {period.articles()}件（モデル {period.articles('llm')} / "
            f"キャッシュ {period.articles('cached')} / 自動抽出 {period.articles('extractive')}）"
            f"、再要約 {period.articles(resummary=True)}件、キャッシュヒット "
            f"{period.cache_hits}件、再質問 {period.reasks}回",
            bullet=True,
        ),
        line(f"フォールバック: {fallbacks or 'なし'}", bullet=True),
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"
