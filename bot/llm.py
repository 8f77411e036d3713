"""The OpenAI client behind `jobs.llm.LLM`: structured JSON output, retries, token budget.

Retries on 429/5xx and timeouts are the `openai` package's own (exponential back-off that honours
Retry-After); we set how many. What it cannot know is our budget: every prompt is counted with
tiktoken before the call, and a call that could push the day over `AINEWS_DAILY_TOKEN_BUDGET`
(prompt plus the maximum output) is refused with `BudgetExhausted`, so callers fall back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from typing import Any, Protocol

import openai
from openai import AsyncOpenAI

from jobs.llm import BudgetExhausted, InvalidOutput, LLMError, LLMReply, TokenCounter
from storage.clock import utcnow
from storage.db import Database
from storage.usage import committed_on, reserve_tokens, settle_tokens, tokens_used_on

log = logging.getLogger(__name__)

# Chat framing adds a few tokens per message beyond their text.
MESSAGE_OVERHEAD_TOKENS = 8
# How often a call waiting for other processes' reservations looks again, in seconds.
OTHERS_POLL = 0.2


class TokenBudget:
    """The day's allowance, shared by every call of every process on the database.

    A call reserves its worst case (prompt plus the output cap) in the day's budget row before
    it is sent (`storage.usage.reserve_tokens`), and settles to what it used. When that does
    not fit beside the calls in flight, it waits for them to settle — their actual usage is
    usually far below what they reserved: this process's calls signal it, another process's
    are polled for — and a call that cannot fit even then is refused with `BudgetExhausted`.
    """

    def __init__(
        self,
        *,
        db: Database,
        daily_limit: int,
        tz: tzinfo,
        clock: Callable[[], datetime] = utcnow,
        others_wait: float = 30.0,
    ) -> None:
        self.db = db
        self.daily_limit = daily_limit
        self.tz = tz
        self.clock = clock
        self.others_wait = others_wait
        self._changed = asyncio.Condition()
        self._reserved = 0

    def today(self) -> date:
        """The local day the budget counts; from the app's clock, so tests can pin it."""
        return self.clock().astimezone(self.tz).date()

    async def remaining_share(self) -> float:
        """The share of today's budget not used yet (recorded usage; reservations in flight
        are worst cases and would make concurrency look like spending)."""
        if self.daily_limit <= 0:
            return 0.0
        used = await self.db.run(tokens_used_on, day=self.today())
        return max(0.0, 1 - used / self.daily_limit)

    async def reserve(self, tokens: int) -> date:
        """Reserve `tokens`; returns the day they count on, for `settle`."""
        waited = 0.0
        async with self._changed:
            while True:
                day = self.today()
                if await self.db.run(
                    reserve_tokens, day=day, tokens=tokens, limit=self.daily_limit
                ):
                    self._reserved += tokens
                    return day
                if self._reserved:
                    await self._changed.wait()  # our own calls in flight will settle
                    continue
                spent = await self.db.run(tokens_used_on, day=day)
                if spent + tokens > self.daily_limit or waited >= self.others_wait:
                    committed = await self.db.run(committed_on, day=day)
                    raise BudgetExhausted(
                        f"daily token budget spent ({committed} of {self.daily_limit} used)"
                    )
                # Other processes' calls hold the room; they settle within a call's time.
                await asyncio.sleep(OTHERS_POLL)
                waited += OTHERS_POLL

    async def settle(
        self, *, day: date, reserved: int, model: str, purpose: str, prompt: int, completion: int
    ) -> None:
        """Record what the call used and release its reservation (one transaction, so a
        waiting call sees the usage and the room together)."""
        async with self._changed:
            try:
                await self.db.run(
                    settle_tokens,
                    day=day,
                    reserved=reserved,
                    model=model,
                    purpose=purpose,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                )
            finally:
                self._reserved -= reserved
                self._changed.notify_all()


class UsageHook(Protocol):
    """Told each call's actual usage: the process's metrics."""

    def __call__(self, *, model: str, prompt: int, completion: int) -> None: ...


class OpenAIChat:
    """`jobs.llm.LLM` over the Chat Completions API with a JSON-schema response format."""

    def __init__(
        self,
        *,
        client: AsyncOpenAI,
        model: str,
        tokens: TokenCounter,
        budget: TokenBudget,
        on_usage: UsageHook | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.tokens = tokens
        self.budget = budget
        self.on_usage = on_usage

    async def budget_remaining(self) -> float:
        return await self.budget.remaining_share()

    def prompt_tokens(self, system: str, user: str) -> int:
        return self.tokens.count(system) + self.tokens.count(user) + 2 * MESSAGE_OVERHEAD_TOKENS

    async def complete_json(
        self,
        *,
        purpose: str,
        system: str,
        user: str,
        schema_name: str,
        schema: dict[str, Any],
        max_output_tokens: int,
    ) -> LLMReply:
        counted = self.prompt_tokens(system, user)
        reserved = counted + max_output_tokens
        day = await self.budget.reserve(reserved)
        prompt_used = completion_used = 0
        try:
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                max_completion_tokens=max_output_tokens,
                temperature=0.2,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": schema_name, "schema": schema, "strict": True},
                },
            )
            usage = response.usage
            prompt_used = usage.prompt_tokens if usage else counted
            completion_used = usage.completion_tokens if usage else 0
        except openai.APIError as exc:
            raise LLMError(f"OpenAI API error: {_describe(exc)}") from exc
        finally:
            await self.budget.settle(
                day=day,
                reserved=reserved,
                model=self.model,
                purpose=purpose,
                prompt=prompt_used,
                completion=completion_used,
            )
            if self.on_usage is not None and (prompt_used or completion_used):
                self.on_usage(model=self.model, prompt=prompt_used, completion=completion_used)
        choice = response.choices[0] if response.choices else None
        content = choice.message.content if choice else None
        if not content:
            raise InvalidOutput("empty reply")
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidOutput(f"reply is not JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise InvalidOutput("reply is not a JSON object")
        return LLMReply(data=data, prompt_tokens=prompt_used, completion_tokens=completion_used)


def _describe(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' {status}' if status else ''}"
