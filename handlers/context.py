"""What a handler may use: storage, the model, the clock and who is asking. Built by the
publishing core (or the CLI) for each command; never a Slack or Discord object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from jobs.llm import LLM
from jobs.spend import DEFAULT_PRICES, Price
from storage.db import Database
from storage.taxonomy import Taxonomy


@dataclass(frozen=True, slots=True)
class HandlerContext:
    db: Database
    taxonomy: Taxonomy
    tz: tzinfo
    now: datetime
    llm: LLM | None = None
    max_prompt_tokens: int = 6000
    max_output_tokens: int = 800
    platform: str = "cli"
    user_id: str | None = None
    channel_id: str | None = None
    is_admin: bool = False
    allow_private_sources: bool = False
    ask_limit: int = 0  # model answers per user per `ask_window`; 0 = no limit
    ask_window: timedelta = timedelta(hours=1)
    model_prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    daily_token_budget: int = 0  # for `stats`: today's share left
