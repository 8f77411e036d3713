"""A real-TCP, OpenAI-compatible stand-in for the summariser's tests.

The summariser uses the real `openai.AsyncOpenAI` client, whose retry logic, error mapping and
response parsing are part of what we rely on. Pointing that client at this server
(``AsyncOpenAI(base_url=srv.base_url + "/v1", api_key="test")``) exercises all of it without
network access or cost, while letting tests script exactly what "the model" says: valid JSON,
malformed text, rate limits and outages.

Replies come from a FIFO script first (`enqueue_json`, `enqueue_text`, `enqueue_error`), then
from `responder`, a plain function tests can swap to derive answers from the request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web
from multidict import CIMultiDict

from bot.demo.local_server import LocalServer

__all__ = [
    "DEFAULT_MODELS",
    "FinishReason",
    "OpenAIServer",
    "Responder",
    "default_responder",
    "error_body",
]

FinishReason = Literal["stop", "length", "content_filter"]
Responder = Callable[[dict[str, Any]], dict[str, Any] | list[Any] | str]
"""Request JSON in; a JSON-serialisable object (sent as JSON text) or a raw string out."""

DEFAULT_MODELS: Final = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")

_ERROR_KINDS: Final[dict[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "not_found"),
    408: ("server_error", "timeout"),
    409: ("server_error", "conflict"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error envelope, so the client builds its usual `APIStatusError`."""
    err_type, code = _ERROR_KINDS.get(status, ("server_error", f"http_{status}"))
    return {
        "error": {
            "message": message or f"Fake OpenAI error (HTTP {status})",
            "type": err_type,
            "param": None,
            "code": code,
        }
    }


def default_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Echo the last user message, so an un-scripted test still gets a deterministic reply."""
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return {"echo": _text_of(message.get("content"))}
    return {"echo": None}


@dataclass(frozen=True, slots=True)
class _Content:
    text: str
    finish_reason: FinishReason


@dataclass(frozen=True, slots=True)
class _Error:
    status: int
    headers: Mapping[str, str]
    body: bytes


class OpenAIServer(LocalServer):
    """Serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1:<ephemeral>.

    Every parsed chat request is appended to `requests` (and its lower-cased headers to
    `request_headers`), including requests answered with a scripted error, so tests can
    count retries and inspect prompts.
    """

    def __init__(self, *, shutdown_timeout: float = 0.5) -> None:
        """Create a stopped server; `shutdown_timeout` bounds teardown with requests in flight."""
        super().__init__(shutdown_timeout=shutdown_timeout)
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.responder: Responder = default_responder
        self.latency: float = 0.0
        """Seconds slept before answering each request, for client-timeout tests."""
        self.models: list[str] = list(DEFAULT_MODELS)
        self._script: deque[_Content | _Error] = deque()
        self._ids = itertools.count(1)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # -- scripting -------------------------------------------------------------------------

    def enqueue_json(self, obj: Any, *, finish_reason: FinishReason = "stop") -> None:
        """Next reply's content is ``json.dumps(obj, ensure_ascii=False)`` (Japanese stays
        readable, as the real model returns it)."""
        self._script.append(_Content(json.dumps(obj, ensure_ascii=False), finish_reason))

    def enqueue_text(self, text: str, *, finish_reason: FinishReason = "stop") -> None:
        """Next reply's content is `text` verbatim, e.g. malformed JSON or prose."""
        self._script.append(_Content(text, finish_reason))

    def enqueue_error(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | str | bytes | None = None,
    ) -> None:
        """Next request fails with HTTP `status` (e.g. 429 with ``{"retry-after": "0"}``).

        `body` defaults to an OpenAI-style error envelope; a dict is JSON-encoded, str/bytes
        are sent raw (to test non-JSON error pages from a proxy).
        """
        payload = error_body(status) if body is None else body
        if isinstance(payload, dict):
            data = json.dumps(payload).encode()
            content_type = "application/json"
        else:
            data = payload.encode() if isinstance(payload, str) else payload
            content_type = "text/plain; charset=utf-8"
        merged: CIMultiDict[str] = CIMultiDict(headers or {})
        merged.setdefault("Content-Type", content_type)
        self._script.append(_Error(status, dict(merged), data))

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed; lets tests assert the script was used up."""
        return len(self._script)

    # -- handlers --------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = await request.json()
        except ValueError:
            return _json_error(400, "Request body is not valid JSON")
        if not isinstance(payload, dict):
            return _json_error(400, "Request body must be a JSON object")
        self.requests.append(payload)
        self.request_headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.latency > 0:
            await asyncio.sleep(self.latency)

        if self._script:
            item = self._script.popleft()
        else:
            produced = self.responder(payload)
            text = produced if isinstance(produced, str) else _dumps(produced)
            item = _Content(text, "stop")
        if isinstance(item, _Error):
            return web.Response(status=item.status, body=item.body, headers=item.headers)

        model = str(payload.get("model") or DEFAULT_MODELS[0])
        completion_id = f"chatcmpl-fake{next(self._ids)}"
        created = int(time.time())
        prompt_tokens = _estimate_tokens(
            "".join(
                _text_of(m.get("content"))
                for m in payload.get("messages") or []
                if isinstance(m, dict)
            )
        )
        completion_tokens = _estimate_tokens(item.text)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if payload.get("stream"):
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return await _stream(
                request, completion_id, created, model, item, usage if include_usage else None
            )
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": item.text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": item.finish_reason,
                    }
                ],
                "usage": usage,
                "system_fingerprint": None,
            },
            dumps=_dumps,
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
                    for name in self.models
                ],
            }
        )

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _json_error(404, f"Unknown request URL: {request.method} {request.path}")


# -- helpers -------------------------------------------------------------------------------


async def _stream(
    request: web.Request,
    completion_id: str,
    created: int,
    model: str,
    item: _Content,
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    """Answer ``stream=True`` as server-sent events in the shape the openai client expects."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    def chunk(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        body.update(extra or {})
        return f"data: {_dumps(body)}\n\n".encode()

    await response.write(
        chunk(
            [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": item.text},
                    "finish_reason": None,
                }
            ]
        )
    )
    await response.write(chunk([{"index": 0, "delta": {}, "finish_reason": item.finish_reason}]))
    if usage is not None:
        await response.write(chunk([], {"usage": usage}))
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response(error_body(status, message), status=status)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _text_of(content: Any) -> str:
    """Message content may be a string or a list of typed parts; keep only the text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _estimate_tokens(text: str) -> int:
    """Roughly characters / 3 — close enough for budget-accounting tests, and never zero."""
    return max(1, len(text) // 3)
