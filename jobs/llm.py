"""What jobs need from a language model, as a protocol: the OpenAI client in `bot.llm`
implements it, and jobs never import `bot`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class LLMError(Exception):
    """The model could not give a usable answer; the caller falls back."""


class BudgetExhausted(LLMError):
    """The daily token budget would be exceeded by this call."""


class InvalidOutput(LLMError):
    """The reply was not JSON of the requested shape."""


@dataclass(frozen=True, slots=True)
class LLMReply:
    data: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...

    def truncate(self, text: str, max_tokens: int) -> str: ...


class LLM(Protocol):
    model: str
    tokens: TokenCounter

    async def complete_json(
        self,
        *,
        purpose: str,
        system: str,
        user: str,
        schema_name: str,
        schema: dict[str, Any],
        max_output_tokens: int,
    ) -> LLMReply: ...

    async def budget_remaining(self) -> float:
        """The share (0–1) of today's token budget not used yet: what `jobs.spend` degrades
        on."""
        ...
