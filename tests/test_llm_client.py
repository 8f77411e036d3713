"""`bot.llm.OpenAIChat` and `TokenBudget`, as `open_app` wires them, over the real `openai`
client talking to the `OpenAIServer` stand-in: request shape, retries, error mapping, and a
daily budget that is counted before each call and cannot be overspent by concurrent calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openai
import pytest
import tiktoken
from sqlmodel import Session, col, select

from bot.app import open_app
from bot.llm import MESSAGE_OVERHEAD_TOKENS, OpenAIChat
from bot.tokens import TiktokenCounter
from jobs.llm import BudgetExhausted, InvalidOutput, LLMError
from storage.models import TokenUsage
from storage.usage import record_usage
from tests.conftest import make_settings
from tests.fakes.openai_server import OpenAIServer

FAST_RETRY = {"retry-after-ms": "1"}
SYSTEM = "あなたはテスト用のアシスタントです。JSONだけを返してください。"
USER = (
    "<<<ARTICLE 0011223344556677>>>\nNimbus-2は120億パラメータ。\n"
    "<<<END ARTICLE 0011223344556677>>>"
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["answer"],
    "properties": {"answer": {"type": "string"}},
}
MAX_OUTPUT = 150
# The budget's clock, fixed (passed to open_app): a test that records usage and then calls
# again must not see a fresh
# budget because midnight in Tokyo (15:00 UTC) passed in between.
BUDGET_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
BUDGET_DAY = BUDGET_NOW.date()


def budget_clock() -> datetime:
    return BUDGET_NOW


@asynccontextmanager
async def chat(tmp_path: Path, server: OpenAIServer, **overrides: Any) -> AsyncIterator[OpenAIChat]:
    env: dict[str, Any] = {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": server.base_url + "/v1",
        "AINEWS_LLM_MAX_RETRIES": 2,
        "AINEWS_LLM_TIMEOUT": 10.0,
    }
    async with open_app(
        make_settings(tmp_path, **(env | overrides)), llm=True, clock=budget_clock
    ) as app:
        assert isinstance(app.llm, OpenAIChat)
        yield app.llm


async def ask(llm: OpenAIChat, *, purpose: str = "test") -> Any:
    return await llm.complete_json(
        purpose=purpose,
        system=SYSTEM,
        user=USER,
        schema_name="answer",
        schema=SCHEMA,
        max_output_tokens=MAX_OUTPUT,
    )


def _usage(*, session: Session) -> list[TokenUsage]:
    return list(session.exec(select(TokenUsage).order_by(col(TokenUsage.id))))


def reservation(llm: OpenAIChat) -> int:
    """What one `ask` reserves: the counted prompt plus the output cap."""
    return llm.prompt_tokens(SYSTEM, USER) + MAX_OUTPUT


async def test_request_shape_reply_and_recorded_usage(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue_json({"answer": "Nimbus-2は120億パラメータ"})
    async with chat(tmp_path, openai_server, AINEWS_MODEL="gpt-4o") as llm:
        reply = await ask(llm, purpose="summary")
        usage = await llm.budget.db.run(_usage)

    assert reply.data == {"answer": "Nimbus-2は120億パラメータ"}
    [request] = openai_server.requests
    assert request["model"] == "gpt-4o"
    assert request["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER},
    ]
    assert request["max_completion_tokens"] == MAX_OUTPUT
    assert request["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    assert openai_server.request_headers[0]["authorization"] == "Bearer test-key"
    # The fake reports len(text) // 3 tokens; those numbers, not our estimate, are recorded.
    assert reply.prompt_tokens == len(SYSTEM + USER) // 3
    assert reply.completion_tokens > 0
    [row] = usage
    assert (row.model, row.purpose) == ("gpt-4o", "summary")
    assert (row.prompt_tokens, row.completion_tokens) == (
        reply.prompt_tokens,
        reply.completion_tokens,
    )


async def test_prompt_is_counted_with_the_models_tiktoken_encoding(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    async with chat(tmp_path, openai_server) as llm:
        assert isinstance(llm.tokens, TiktokenCounter)
        encoding = tiktoken.get_encoding("o200k_base")
        expected = (
            len(encoding.encode(SYSTEM)) + len(encoding.encode(USER)) + 2 * MESSAGE_OVERHEAD_TOKENS
        )
        assert llm.prompt_tokens(SYSTEM, USER) == expected


async def test_budget_admits_a_call_that_fits_exactly_and_refuses_one_token_less(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue_json({"answer": "ok"})
    async with chat(tmp_path, openai_server) as probe:
        needed = reservation(probe)

    async with chat(tmp_path, openai_server, AINEWS_DAILY_TOKEN_BUDGET=needed - 1) as llm:
        with pytest.raises(BudgetExhausted, match=f"of {needed - 1} used"):
            await ask(llm)
    assert openai_server.requests == []  # refused before anything was sent

    async with chat(tmp_path, openai_server, AINEWS_DAILY_TOKEN_BUDGET=needed) as llm:
        reply = await ask(llm)
    assert reply.data == {"answer": "ok"}
    assert len(openai_server.requests) == 1


async def test_usage_recorded_today_counts_and_yesterdays_does_not(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.responder = lambda request: {"answer": "ok"}
    async with chat(tmp_path, openai_server, AINEWS_DAILY_TOKEN_BUDGET=10_000) as llm:
        today = llm.budget.today()
        await llm.budget.db.run(
            record_usage,
            day=today - timedelta(days=1),
            model="gpt-4o-mini",
            purpose="summary",
            prompt_tokens=9_000,
            completion_tokens=1_000,
        )
        await ask(llm)  # yesterday's spending is not today's
        await llm.budget.db.run(
            record_usage,
            day=today,
            model="gpt-4o-mini",
            purpose="briefing",
            prompt_tokens=10_000 - reservation(llm),
            completion_tokens=0,
        )
        with pytest.raises(BudgetExhausted):
            await ask(llm)
    assert len(openai_server.requests) == 1


async def test_concurrent_calls_wait_for_room_instead_of_overspending(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.responder = lambda request: {"answer": "ok"}
    openai_server.latency = 0.3  # all calls are in flight before any usage is recorded
    async with chat(tmp_path, openai_server) as probe:
        needed = reservation(probe)

    budget = 2 * needed + needed // 2
    async with chat(tmp_path, openai_server, AINEWS_DAILY_TOKEN_BUDGET=budget) as llm:
        results = await asyncio.gather(*(ask(llm) for _ in range(4)), return_exceptions=True)
        usage = await llm.budget.db.run(_usage)
        assert llm.budget._reserved == 0

    # Only two reservations fit at once; the others wait for them to settle, and then fit,
    # because the replies used far less than the output cap they reserved.
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(openai_server.requests) == 4
    assert len(usage) == 4
    assert sum(u.prompt_tokens + u.completion_tokens for u in usage) <= budget


async def test_rate_limit_is_retried_honouring_retry_after(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue_error(429, headers=FAST_RETRY)
    openai_server.enqueue_json({"answer": "ok"})
    async with chat(tmp_path, openai_server) as llm:
        reply = await ask(llm)
        usage = await llm.budget.db.run(_usage)

    assert reply.data == {"answer": "ok"}
    assert len(openai_server.requests) == 2
    assert len(usage) == 1


async def test_server_errors_beyond_retries_become_llm_error_and_release_the_reservation(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    for _ in range(3):
        openai_server.enqueue_error(500, headers=FAST_RETRY)
    openai_server.enqueue_json({"answer": "later"})
    async with chat(tmp_path, openai_server) as probe:
        needed = reservation(probe)

    # Room for exactly one call: the failed one must not keep its reservation.
    async with chat(tmp_path, openai_server, AINEWS_DAILY_TOKEN_BUDGET=needed) as llm:
        with pytest.raises(LLMError, match="InternalServerError 500") as caught:
            await ask(llm)
        assert not isinstance(caught.value, openai.APIError)
        assert len(openai_server.requests) == 3  # one try and AINEWS_LLM_MAX_RETRIES=2
        assert llm.budget._reserved == 0
        assert await llm.budget.db.run(_usage) == []
        reply = await ask(llm)
    assert reply.data == {"answer": "later"}


async def test_authentication_error_is_not_retried(
    tmp_path: Path, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue_error(401)
    async with chat(tmp_path, openai_server) as llm:
        with pytest.raises(LLMError, match="AuthenticationError 401"):
            await ask(llm)
    assert len(openai_server.requests) == 1


async def test_timeout_becomes_llm_error(tmp_path: Path, openai_server: OpenAIServer) -> None:
    openai_server.latency = 2.0
    async with chat(
        tmp_path, openai_server, AINEWS_LLM_TIMEOUT=0.2, AINEWS_LLM_MAX_RETRIES=0
    ) as llm:
        async with asyncio.timeout(1.5):
            with pytest.raises(LLMError, match="APITimeoutError"):
                await ask(llm)
        assert llm.budget._reserved == 0


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Sure! Here is the summary you asked for.", "not JSON"),
        ('{"answer": "cut off in the mid', "not JSON"),
        ('["answer"]', "not a JSON object"),
        ("", "empty reply"),
    ],
)
async def test_unusable_reply_is_invalid_output_but_its_tokens_are_recorded(
    tmp_path: Path, openai_server: OpenAIServer, script: str, message: str
) -> None:
    openai_server.enqueue_text(script, finish_reason="length" if "cut off" in script else "stop")
    async with chat(tmp_path, openai_server) as llm:
        with pytest.raises(InvalidOutput, match=message):
            await ask(llm)
        usage = await llm.budget.db.run(_usage)
    assert len(openai_server.requests) == 1
    [row] = usage
    assert row.prompt_tokens > 0
