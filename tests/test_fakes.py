"""Tests of the stand-in servers themselves.

The rest of the suite trusts `FeedServer` and `OpenAIServer` to behave like the real services;
if a fake quietly stopped sending 304s or error envelopes, the poller and summariser tests would
pass while proving nothing. These tests pin that behaviour using the same real clients the bot
uses (aiohttp for feeds, `openai.AsyncOpenAI` for the model).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import feedparser
import openai
import pytest
from openai import AsyncOpenAI

from tests.fakes.feed_server import DEFAULT_LAST_MODIFIED, FeedServer, Response
from tests.fakes.openai_server import OpenAIServer

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Test feed</title><link>http://example.invalid/</link>
<description>d</description>
<item><title>最新のAIニュース</title><link>http://example.invalid/1</link><guid>1</guid></item>
</channel></rss>
"""


async def _wait_for(predicate: Callable[[], bool]) -> None:
    """Poll until the server has noticed something asynchronous (e.g. a disconnect)."""
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("server did not reach the expected state within 1 s")


@asynccontextmanager
async def _openai(srv: OpenAIServer, *, max_retries: int = 0) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        base_url=srv.base_url + "/v1", api_key="test", max_retries=max_retries, timeout=5.0
    ) as client:
        yield client


# -- FeedServer -------------------------------------------------------------------------------


async def test_serves_feed_records_call_and_404s_unknown_paths() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        assert srv.base_url.startswith("http://127.0.0.1:")
        srv.add("/feed.xml", RSS)
        async with http.get(srv.url("/feed.xml?x=1"), headers={"User-Agent": "ainews"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
            assert await r.text() == RSS
        async with http.get(srv.url("/missing.xml")) as r:
            assert r.status == 404

        [call] = srv.calls_to("/feed.xml")
        assert (call.method, call.path, call.query) == ("GET", "/feed.xml", "x=1")
        assert call.headers["user-agent"] == "ainews"
        assert [c.path for c in srv.calls] == ["/feed.xml", "/missing.xml"]


async def test_conditional_get_with_etag_and_etag_changes_on_new_body() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        etag = srv.add("/feed.xml", RSS)
        async with http.get(srv.url("/feed.xml")) as r:
            assert r.status == 200
            assert r.headers["ETag"] == etag
            assert etag is not None and etag.startswith('"') and etag.endswith('"')

        async with http.get(srv.url("/feed.xml"), headers={"If-None-Match": etag}) as r:
            assert r.status == 304
            assert await r.read() == b""
            assert r.headers["ETag"] == etag
        assert srv.calls_to("/feed.xml")[-1].headers["if-none-match"] == etag

        new_etag = srv.add("/feed.xml", RSS.replace("Test feed", "Updated"))
        assert new_etag != etag
        async with http.get(srv.url("/feed.xml"), headers={"If-None-Match": etag}) as r:
            assert r.status == 200
            assert r.headers["ETag"] == new_etag
            assert "Updated" in await r.text()


async def test_conditional_get_with_if_modified_since() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.add("/feed.xml", RSS, etag=None)
        async with http.get(srv.url("/feed.xml")) as r:
            assert r.status == 200
            assert "ETag" not in r.headers
            last_modified = r.headers["Last-Modified"]
        assert last_modified == "Mon, 01 Jan 2024 09:00:00 GMT"
        assert DEFAULT_LAST_MODIFIED.year == 2024

        async with http.get(
            srv.url("/feed.xml"), headers={"If-Modified-Since": last_modified}
        ) as r:
            assert r.status == 304
        earlier = "Sun, 31 Dec 2023 09:00:00 GMT"
        async with http.get(srv.url("/feed.xml"), headers={"If-Modified-Since": earlier}) as r:
            assert r.status == 200


async def test_sequence_429_then_200_repeats_last() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.sequence(
            "/feed.xml",
            [Response(429, headers={"Retry-After": "1"}), Response(200, RSS)],
        )
        statuses: list[int] = []
        for _ in range(3):
            async with http.get(srv.url("/feed.xml")) as r:
                statuses.append(r.status)
                if r.status == 429:
                    assert r.headers["Retry-After"] == "1"
                else:
                    assert await r.text() == RSS
        assert statuses == [429, 200, 200]
        assert len(srv.calls_to("/feed.xml")) == 3


async def test_status_fault() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.status("/down.xml", 503, headers={"Retry-After": "2"}, body="maintenance")
        async with http.get(srv.url("/down.xml")) as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "2"
            assert await r.text() == "maintenance"


async def test_redirects_are_followed_by_aiohttp() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.add("/new.xml", RSS)
        srv.redirect("/old.xml", "/new.xml", permanent=True)
        srv.redirect("/tmp.xml", "/new.xml", permanent=False, preserve_method=True)
        async with http.get(srv.url("/old.xml")) as r:
            assert r.status == 200
            assert [h.status for h in r.history] == [301]
            assert str(r.url) == srv.url("/new.xml")
        async with http.get(srv.url("/tmp.xml"), allow_redirects=False) as r:
            assert r.status == 307
            assert r.headers["Location"] == srv.url("/new.xml")


async def test_redirect_loops_raise_too_many_redirects() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.redirect_loop("/loop.xml")
        srv.redirect_loop("/a.xml", via="/b.xml")
        with pytest.raises(aiohttp.TooManyRedirects):
            async with http.get(srv.url("/loop.xml"), max_redirects=5):
                pass
        # aiohttp gives up once it has made `max_redirects` requests; no URL was repeated.
        assert [c.query for c in srv.calls_to("/loop.xml")] == ["", "n=1", "n=2", "n=3", "n=4"]
        with pytest.raises(aiohttp.TooManyRedirects):
            async with http.get(srv.url("/a.xml"), max_redirects=4):
                pass
        assert [c.path for c in srv.calls[-4:]] == ["/a.xml", "/b.xml", "/a.xml", "/b.xml"]


async def test_huge_body_streams_and_client_can_stop_early() -> None:
    size = 20 * 1024 * 1024
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.huge("/huge.xml", size)
        async with http.get(srv.url("/huge.xml")) as r:
            assert r.status == 200
            assert r.content_length == size
            received = b""
            while len(received) < 2 * 1024 * 1024:
                received += await r.content.readany()
            assert received.startswith(b'<?xml version="1.0"')
            assert received.count(b"<item>") > 1000
            r.close()  # abandon the remaining ~18 MB
        await _wait_for(lambda: srv.disconnects == ["/huge.xml"])


async def test_huge_body_is_exact_size_and_parses_as_a_feed() -> None:
    size = 100_001
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.huge("/huge.xml", size)
        async with http.get(srv.url("/huge.xml")) as r:
            body = await r.read()
    assert len(body) == size
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert parsed.feed.title == "Huge feed"
    assert len(parsed.entries) > 400


async def test_slow_endpoint_times_out_client_and_is_cancelled() -> None:
    async with FeedServer() as srv:
        srv.slow("/slow.xml", RSS, delay=10.0)
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as http:
            with pytest.raises(TimeoutError):
                async with http.get(srv.url("/slow.xml")) as r:
                    await r.read()
        await _wait_for(lambda: srv.disconnects == ["/slow.xml"])
    assert time.monotonic() - started < 2.0


async def test_global_latency_delays_every_response() -> None:
    async with FeedServer() as srv, aiohttp.ClientSession() as http:
        srv.add("/feed.xml", RSS)
        srv.latency = 0.1
        started = time.monotonic()
        async with http.get(srv.url("/feed.xml")) as r:
            assert r.status == 200
        assert time.monotonic() - started >= 0.1


# -- OpenAIServer -----------------------------------------------------------------------------


async def test_openai_enqueued_json_is_parsed_by_real_client() -> None:
    async with OpenAIServer() as srv, _openai(srv) as client:
        srv.enqueue_json({"title": "要約", "score": 3})
        messages: Any = [
            {"role": "system", "content": "You summarise."},
            {"role": "user", "content": "記事本文" * 30},
        ]
        completion = await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, temperature=0
        )
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == '{"title": "要約", "score": 3}'
    assert json.loads(choice.message.content) == {"title": "要約", "score": 3}
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == (len("You summarise.") + 120) // 3
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    [request] = srv.requests
    assert request["model"] == "gpt-4o-mini"
    assert request["temperature"] == 0
    assert request["messages"][1]["content"] == "記事本文" * 30
    assert srv.request_headers[0]["authorization"] == "Bearer test"
    assert srv.pending == 0


async def test_openai_invalid_text_is_returned_verbatim() -> None:
    async with OpenAIServer() as srv, _openai(srv) as client:
        srv.enqueue_text('{"title": "broken"')
        srv.enqueue_text("plain prose", finish_reason="length")
        first = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
        second = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "y"}]
        )
    assert first.choices[0].message.content == '{"title": "broken"'
    assert second.choices[0].message.content == "plain prose"
    assert second.choices[0].finish_reason == "length"


async def test_openai_default_and_custom_responder() -> None:
    async with OpenAIServer() as srv, _openai(srv) as client:
        echoed = await client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "こんにちは"},
            ],
        )
        assert echoed.choices[0].message.content == '{"echo": "こんにちは"}'

        srv.responder = lambda req: {"n": len(req["messages"])}
        custom = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a"}]
        )
        assert custom.choices[0].message.content == '{"n": 1}'
        srv.responder = lambda req: "raw string"
        raw = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a"}]
        )
        assert raw.choices[0].message.content == "raw string"


async def test_openai_errors_map_to_client_exceptions() -> None:
    async with OpenAIServer() as srv, _openai(srv) as client:
        srv.enqueue_error(429, headers={"retry-after": "0"})
        srv.enqueue_error(500)
        srv.enqueue_error(503, body="upstream down")
        msgs: Any = [{"role": "user", "content": "x"}]
        with pytest.raises(openai.RateLimitError) as rate:
            await client.chat.completions.create(model="m", messages=msgs)
        assert rate.value.status_code == 429
        assert rate.value.code == "rate_limit_exceeded"
        assert rate.value.response.headers["retry-after"] == "0"
        with pytest.raises(openai.InternalServerError) as internal:
            await client.chat.completions.create(model="m", messages=msgs)
        assert internal.value.status_code == 500
        assert internal.value.type == "server_error"
        with pytest.raises(openai.InternalServerError) as unavailable:
            await client.chat.completions.create(model="m", messages=msgs)
        assert unavailable.value.status_code == 503
        assert unavailable.value.response.text == "upstream down"
        # Script used up: the default responder answers again.
        ok = await client.chat.completions.create(model="m", messages=msgs)
        assert ok.choices[0].message.content == '{"echo": "x"}'
    assert len(srv.requests) == 4


async def test_openai_client_retries_429_then_succeeds() -> None:
    async with OpenAIServer() as srv, _openai(srv, max_retries=2) as client:
        srv.enqueue_error(429, headers={"retry-after": "0"})
        srv.enqueue_json({"ok": True})
        completion = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
    assert completion.choices[0].message.content == '{"ok": true}'
    assert len(srv.requests) == 2
    assert [h["x-stainless-retry-count"] for h in srv.request_headers] == ["0", "1"]


async def test_openai_streaming_models_and_unknown_route() -> None:
    async with OpenAIServer() as srv, _openai(srv) as client:
        srv.enqueue_text("streamed answer")
        stream = await client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage_seen = False
        async for chunk in stream:
            parts.extend(c.delta.content or "" for c in chunk.choices)
            usage_seen = usage_seen or chunk.usage is not None
        assert "".join(parts) == "streamed answer"
        assert usage_seen

        models = await client.models.list()
        assert "gpt-4o-mini" in [m.id for m in models.data]

        async with (
            aiohttp.ClientSession() as http,
            http.post(srv.base_url + "/v1/embeddingz", json={}) as r,
        ):
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "not_found"
