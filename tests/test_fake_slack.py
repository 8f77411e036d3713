"""The Slack stand-in, driven by the real slack_sdk / slack_bolt clients.

These tests pin down the contract other tests rely on: that the real clients can talk to the
server at all (paths, auth headers, body encodings, Socket Mode handshake), and that each
scripted fault reaches the client the way Slack's would.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from tests.fakes.slack_server import (
    BOT_USER_ID,
    SlackServer,
    events_api_payload,
    sign_request,
    slash_command_body,
    slash_command_payload,
)

BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "今日のAIニュース"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*OpenAI* が新モデルを発表"}},
]


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


def web_client(srv: SlackServer, token: str | None = "xoxb-test", **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=srv.base_url + "/api/", **kwargs)


# -- Web API -------------------------------------------------------------------------------


async def test_auth_test_and_post_message_with_blocks(slack: SlackServer) -> None:
    client = web_client(slack)

    auth = await client.auth_test()
    first = await client.chat_postMessage(channel="C1", text="fallback", blocks=BLOCKS)
    second = await client.chat_postMessage(channel="C1", text="reply", thread_ts=first["ts"])

    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0001", "U0BOT", "B0001")
    assert first["channel"] == "C1"
    assert first["message"]["blocks"] == BLOCKS
    assert "thread_ts" not in first["message"]
    assert second["message"]["thread_ts"] == first["ts"]
    assert float(second["ts"]) > float(first["ts"])
    assert [m.ts for m in slack.messages] == [first["ts"], second["ts"]]
    assert slack.messages[0].blocks == BLOCKS
    assert slack.messages[1].thread_ts == first["ts"]

    call = slack.calls_to("chat.postMessage")[0]
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.headers["content-type"].startswith("application/json")
    assert call.params["blocks"] == BLOCKS  # slack_sdk posts JSON, so blocks stay a list
    assert call.token == "xoxb-test"


async def test_form_encoded_blocks_are_kept_as_text_and_decodable(slack: SlackServer) -> None:
    client = web_client(slack)

    await client.api_call(
        "chat.postMessage", data={"channel": "C2", "text": "t", "blocks": json.dumps(BLOCKS)}
    )

    call = slack.calls_to("chat.postMessage")[0]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert isinstance(call.params["blocks"], str)
    assert call.decoded("blocks") == BLOCKS
    assert call.decoded_params["blocks"] == BLOCKS
    assert slack.messages[0].blocks == BLOCKS


async def test_query_string_params_are_merged(slack: SlackServer) -> None:
    slack.admins.add("UADMIN")
    client = web_client(slack)

    admin = await client.users_info(user="UADMIN")
    member = await client.users_info(user="U999")

    assert admin["user"]["is_admin"] is True
    assert member["user"]["is_admin"] is False
    call = slack.calls_to("users.info")[0]
    assert call.http_method == "GET"
    assert call.params == {"user": "UADMIN"}


async def test_missing_token_is_not_authed(slack: SlackServer) -> None:
    client = web_client(slack, token=None)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="hi")

    assert raised.value.response.status_code == 200
    assert raised.value.response["error"] == "not_authed"
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert slack.messages == []


@pytest.mark.parametrize(
    ("token", "method", "error"),
    [
        ("xapp-test", "chat.postMessage", "not_allowed_token_type"),
        ("xoxb-test", "apps.connections.open", "not_allowed_token_type"),
        ("bogus", "auth.test", "invalid_auth"),
    ],
)
async def test_token_types_are_checked(
    slack: SlackServer, token: str, method: str, error: str
) -> None:
    client = web_client(slack, token=token)

    with pytest.raises(SlackApiError) as raised:
        await client.api_call(method, json={"channel": "C1", "text": "hi"})

    assert raised.value.response["error"] == error


async def test_rate_limit_is_retried_by_the_sdk_handler(slack: SlackServer) -> None:
    slack.rate_limit("chat.postMessage", retry_after=1)
    client = web_client(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])

    response = await client.chat_postMessage(channel="C1", text="after the wait")

    assert response["ok"] is True
    calls = slack.calls_to("chat.postMessage")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 1.0  # the handler honoured Retry-After
    assert [m.text for m in slack.messages] == ["after the wait"]


async def test_rate_limit_without_handler_raises_429(slack: SlackServer) -> None:
    slack.rate_limit("chat.postMessage", retry_after=7)
    client = web_client(slack)

    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C1", text="x")
    await client.chat_postMessage(channel="C1", text="x")  # the fault was used up

    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["Retry-After"] == "7"


async def test_fail_is_consumed_in_order(slack: SlackServer) -> None:
    slack.fail("chat.postMessage", "channel_not_found")
    slack.fail("chat.postMessage", "missing_scope", extra={"needed": "chat:write"})
    client = web_client(slack)

    errors = []
    for _ in range(2):
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x")
        errors.append((raised.value.response["error"], raised.value.response.get("needed")))
    await client.chat_postMessage(channel="C1", text="x")

    assert errors == [("channel_not_found", None), ("missing_scope", "chat:write")]
    assert len(slack.messages) == 1


async def test_conversations_open_gives_a_dm_channel(slack: SlackServer) -> None:
    response = await web_client(slack).conversations_open(users="U123")

    assert response["channel"]["id"] == "DU123"
    assert slack.calls_to("conversations.open")[0].params["users"] == "U123"


async def test_ephemeral_update_and_views(slack: SlackServer) -> None:
    client = web_client(slack)

    ephemeral = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    posted = await client.chat_postMessage(channel="C1", text="draft")
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="final")
    view = {"type": "home", "blocks": BLOCKS}
    published = await client.views_publish(user_id="U1", view=view)
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel="C1", ts="1.000000", text="nope")

    assert ephemeral["message_ts"] == slack.ephemeral_messages[0].ts
    assert slack.ephemeral_messages[0].user == "U1"
    assert updated["ts"] == posted["ts"]
    assert (slack.messages[0].text, slack.messages[0].edited) == ("final", True)
    assert published["view"]["blocks"] == BLOCKS
    assert slack.home_views["U1"]["id"] == published["view"]["id"]
    assert raised.value.response["error"] == "message_not_found"


async def test_block_kit_limits_are_enforced(slack: SlackServer) -> None:
    client = web_client(slack)
    too_many = [{"type": "divider"}] * 51
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "あ" * 3001}}]

    for blocks in (too_many, too_long):
        with pytest.raises(SlackApiError) as raised:
            await client.chat_postMessage(channel="C1", text="x", blocks=blocks)
        assert raised.value.response["error"] == "invalid_blocks"
    await client.chat_postMessage(channel="C1", text="x", blocks=too_many[:50])

    assert "/blocks/0/text/text" in raised.value.response["errors"][0]
    assert len(slack.messages) == 1


async def test_response_url_posts_are_recorded(slack: SlackServer) -> None:
    url = slack.response_url("ask")

    reply = await AsyncWebhookClient(url).send(text="回答です", response_type="ephemeral")
    stale = await AsyncWebhookClient(slack.url("/response/unknown")).send(text="x")

    assert reply.status_code == 200
    assert await slack.wait_for_response(1) == [{"text": "回答です", "response_type": "ephemeral"}]
    assert slack.responses_to("ask")[0]["text"] == "回答です"
    assert stale.status_code == 404


async def test_wait_for_times_out_quickly(slack: SlackServer) -> None:
    started = time.monotonic()

    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for("chat.postMessage", timeout=0.05)

    assert time.monotonic() - started < 1.0


# -- Socket Mode ---------------------------------------------------------------------------


async def test_socket_mode_connects_acks_and_reconnects(slack: SlackServer) -> None:
    received: list[SocketModeRequest] = []
    hellos: list[dict[str, Any]] = []

    async def on_request(client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        await client.send_socket_mode_response(
            SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "受け付けました"})
        )

    async def on_message(
        client: AsyncBaseSocketModeClient, message: dict[str, Any], _: Any
    ) -> None:
        if message.get("type") == "hello":
            hellos.append(message)

    client = SocketModeClient(
        app_token="xapp-test", web_client=AsyncWebClient(base_url=slack.base_url + "/api/")
    )
    client.socket_mode_request_listeners.append(on_request)
    client.message_listeners.append(on_message)
    try:
        await client.connect()  # type: ignore[no-untyped-call]
        first = await slack.wait_for_socket_client()
        envelope_id = await slack.send_socket_event(
            "slash_commands", slash_command_payload("今日のニュース")
        )
        ack = await slack.wait_for_ack(envelope_id)

        assert ack == {"text": "受け付けました"}
        assert received[0].type == "slash_commands"
        assert received[0].payload["text"] == "今日のニュース"
        assert received[0].accepts_response_payload is True
        opened = slack.calls_to("apps.connections.open")
        assert opened[0].headers["authorization"] == "Bearer xapp-test"
        assert hellos and hellos[0]["connection_info"]["app_id"] == "A0001"

        # Slack recycles connections; the SDK must fetch a new URL and carry on.
        assert await slack.disconnect_sockets() == 1
        second = await slack.wait_for_socket_client(count=2)
        assert second.ticket != first.ticket
        event = events_api_payload({"type": "app_mention", "text": f"<@{BOT_USER_ID}> hi"})
        envelope_id = await slack.send_socket_event("events_api", event)
        assert await slack.wait_for_ack(envelope_id) == {"text": "受け付けました"}
        assert received[1].type == "events_api"
        assert received[1].accepts_response_payload is False

        # Slack's advance warning: {"type": "disconnect"} makes the SDK reconnect at once.
        assert await slack.send_disconnect("refresh_requested") == 1
        third = await slack.wait_for_socket_client(count=3)
        assert third.ticket not in {first.ticket, second.ticket}
        envelope_id = await slack.send_socket_event("interactive", {"type": "block_actions"})
        assert await slack.wait_for_ack(envelope_id) == {"text": "受け付けました"}
        assert len(slack.calls_to("apps.connections.open")) == 3
    finally:
        await client.close()  # type: ignore[no-untyped-call]


async def test_bolt_app_in_socket_mode_acks_and_responds(slack: SlackServer) -> None:
    app = AsyncApp(client=web_client(slack), signing_secret="unused-in-socket-mode")

    @app.command("/ainews")
    async def ainews(ack: AsyncAck, respond: AsyncRespond, command: dict[str, Any]) -> None:
        await ack("考え中…")
        await respond(f"echo: {command['text']}")

    handler = AsyncSocketModeHandler(app, app_token="xapp-test")
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        payload = slash_command_payload("ping", response_url=slack.response_url("cmd"))
        envelope_id = await slack.send_socket_event("slash_commands", payload)

        assert await slack.wait_for_ack(envelope_id) == {"text": "考え中…"}
        assert (await slack.wait_for_response(1))[0]["text"] == "echo: ping"
        assert slack.calls_to("auth.test")  # Bolt checked its bot token first
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def test_socket_refuses_unissued_tickets(slack: SlackServer) -> None:
    ws_url = slack.base_url.replace("http://", "ws://") + "/socket-mode?ticket=forged"

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            await session.ws_connect(ws_url)

    assert raised.value.status == 401


# -- HTTP-mode signing ---------------------------------------------------------------------


def test_sign_request_matches_slack_sdk_verifier() -> None:
    body = slash_command_body("hello world", user_id="U42", response_url="http://127.0.0.1:1/r")
    headers = sign_request("s3cret", body)
    ts, sig = headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]

    assert SignatureVerifier("s3cret").is_valid(body, ts, sig)
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid(body, ts, sig)
    assert not SignatureVerifier("s3cret").is_valid(body + b"&x=1", ts, sig)
    fields = parse_qs(body.decode())
    assert fields["command"] == ["/ainews"]
    assert fields["text"] == ["hello world"]
    assert fields["user_id"] == ["U42"]
    assert {"team_id", "team_domain", "channel_name", "user_name", "api_app_id"} <= set(fields)


def test_sign_request_uses_the_given_timestamp() -> None:
    headers = sign_request("s3cret", b"a=1", timestamp=1_531_420_618)

    assert headers["X-Slack-Request-Timestamp"] == "1531420618"
    # A stale timestamp is rejected by the verifier's five-minute replay window.
    assert not SignatureVerifier("s3cret").is_valid_request(b"a=1", headers)
