"""The Slack adapter against the Slack stand-in: real slack-bolt and slack_sdk, real HTTP and
WebSocket on 127.0.0.1, nothing monkeypatched."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session, select

from bot.app import App, briefing_for, open_app
from bot.platforms.slack import SlackBot, build_slack
from bot.publishing.chat import ChatCore
from bot.publishing.platform import Platform
from bot.render.slack import MAX_BLOCKS, MAX_SECTION
from bot.scheduler import JobRunner
from handlers.filters import SearchRequest
from handlers.search import find
from storage.models import Article
from storage.sources import SourceSpec, add_missing_sources
from storage.subscriptions import subscribe
from tests.conftest import (
    DEMO_DAY,
    demo_clock,
    make_settings,
    matching_urls,
    redate_for_a_live_run,
)
from tests.fakes.openai_server import OpenAIServer
from tests.fakes.slack_server import (
    SlackServer,
    block_actions_body,
    events_api_payload,
    sign_request,
    slash_command_body,
    slash_command_payload,
)
from tests.test_cli import AINEWS

SECRET = "test-signing-secret"
CHANNEL = "C0BRIEF"


@pytest.fixture
async def slack() -> AsyncIterator[SlackServer]:
    async with SlackServer() as server:
        yield server


@dataclass
class Running:
    app: App
    platform: Platform
    runner: JobRunner

    @property
    def bot(self) -> SlackBot:
        assert isinstance(self.platform.intake, SlackBot)
        return self.platform.intake

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.bot.http_port}/slack/events"


def slack_settings(tmp_path: Path, database: Path, slack: SlackServer, **extra: Any) -> Any:
    return make_settings(
        tmp_path,
        DATABASE_URL=f"sqlite:///{database}",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        AINEWS_SLACK_CHANNEL=CHANNEL,
        SLACK_API_URL=slack.api_url,
        AINEWS_HTTP_HOST="127.0.0.1",
        AINEWS_HTTP_PORT=0,
        AINEWS_SLACK_POST_INTERVAL=0,
        AINEWS_BRIEFING_LEASE=0,
        AINEWS_ADMIN_USERS="UADMIN",
        **extra,
    )


@asynccontextmanager
async def slack_running(settings: Any, *, llm: bool = False) -> AsyncIterator[Running]:
    """The Slack platform as `ainews run` builds it, on the demo clock."""
    async with open_app(settings, llm=llm, clock=demo_clock) as app:
        runner = JobRunner()
        platform = build_slack(app, core=ChatCore(app, spawn=runner.spawn), spawn=runner.spawn)
        await platform.intake.start_intake()
        try:
            yield Running(app, platform, runner)
        finally:
            await runner.drain(5)
            await platform.intake.close()


@pytest.fixture
async def running(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> AsyncIterator[Running]:
    async with slack_running(slack_settings(tmp_path, demo_database, slack)) as running:
        yield running


async def post_signed(
    events_url: str,
    body: bytes,
    *,
    secret: str = SECRET,
    content_type: str = "application/x-www-form-urlencoded",
    **kw: Any,
) -> int:
    headers = {"Content-Type": content_type, **sign_request(secret, body, **kw)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(events_url, data=body, headers=headers) as response,
    ):
        await response.read()
        return response.status


async def post_event(events_url: str, event: dict[str, Any]) -> int:
    """An Events API callback carrying `event`, signed, as Slack sends it (JSON)."""
    body = json.dumps(events_api_payload(event)).encode()
    return await post_signed(events_url, body, content_type="application/json")


async def post_command(
    events_url: str,
    slack: SlackServer,
    text: str,
    *,
    user: str = "U123",
    secret: str = SECRET,
    timestamp: int | None = None,
    name: str = "cmd",
) -> int:
    body = slash_command_body(text, user_id=user, response_url=slack.response_url(name))
    return await post_signed(events_url, body, secret=secret, timestamp=timestamp)


async def click(
    events_url: str, slack: SlackServer, action_id: str, *, user: str = "U123", name: str = "click"
) -> int:
    body = block_actions_body(action_id, user_id=user, response_url=slack.response_url(name))
    return await post_signed(events_url, body)


def buttons(answer: dict[str, Any]) -> dict[str, str]:
    """Label → action_id of the buttons under a reply."""
    return {
        e["text"]["text"]: e["action_id"]
        for b in answer["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }


def article_urls(answer: dict[str, Any]) -> list[str]:
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    return re.findall(r"<(https?://[^|>]+)\|", text)


async def test_signed_search_command_is_acked_then_answered(
    running: Running, slack: SlackServer
) -> None:
    status = await post_command(running.events_url, slack, "search 規制")
    assert status == 200
    [answer] = await slack.wait_for_response()
    assert answer["response_type"] == "ephemeral"
    texts = str(answer["blocks"])
    assert "規制" in texts and "techinsight.example.jp" in texts
    share = buttons(answer)["チャンネルに共有"]
    assert share.startswith("ainews:share:") and len(share) <= 100  # an id, not the command


async def test_search_pages_with_buttons_and_typed_page(
    running: Running, slack: SlackServer
) -> None:
    """Every matching article is reachable: 10 per page, 次へ / 前へ through signed
    block_actions, `page:N` typed as text, and the page count and total shown."""
    from handlers.filters import parse_search_text
    from storage.clock import utcnow

    app = running.app
    request = parse_search_text("AI", taxonomy=app.taxonomy, now=utcnow(), tz=app.settings.tz)
    every = await find(handler_context_for(app), SearchRequest(text="AI", limit=1000))
    assert every.total > 10  # the demo has more than one page of these
    pages = -(-every.total // 10)
    await post_command(running.events_url, slack, "search AI")
    [first] = await slack.wait_for_response()
    seen = article_urls(first)
    assert len(seen) == 10 and f"1/{pages}" in str(first["blocks"])
    assert f"全{every.total}件" in str(first["blocks"])
    assert "前へ" not in buttons(first)
    answer = first
    for page in range(2, pages + 1):
        status = await click(running.events_url, slack, buttons(answer)["次へ"])
        assert status == 200
        answer = (await slack.wait_for_response(count=page))[-1]
        assert answer.get("replace_original") is True  # the page replaces the message
        assert f"{page}/{pages}" in str(answer["blocks"])
        seen += article_urls(answer)
    assert "次へ" not in buttons(answer) and "前へ" in buttons(answer)
    assert sorted(seen) == sorted(h.url for h in every.hits)
    assert request.page == 1
    await post_command(running.events_url, slack, f"search AI page:{pages}")
    typed = (await slack.wait_for_response(count=pages + 1))[-1]
    assert article_urls(typed) == article_urls(answer)


def handler_context_for(app: App) -> Any:
    from bot.app import handler_context

    return handler_context(app)


async def test_share_posts_the_stored_reply_without_asking_the_model_again(
    tmp_path: Path, demo_database: Path, slack: SlackServer, openai_server: OpenAIServer
) -> None:
    answers = iter(["Kumo Relayは配送を最適化する[1]。", "まったく別の答え[1]。"])
    openai_server.responder = lambda _: {
        "answerable": True,
        "answer": next(answers),
        "citations": [1],
    }
    settings = slack_settings(
        tmp_path,
        demo_database,
        slack,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
    )
    async with slack_running(settings, llm=True) as running:
        await post_command(running.events_url, slack, "ask Kumo Relayとは？")
        [answer] = await slack.wait_for_response()
        asked = len(openai_server.requests)
        assert await click(running.events_url, slack, buttons(answer)["チャンネルに共有"]) == 200
        [shared] = await slack.wait_for_message()
    assert len(openai_server.requests) == asked  # shared by id: no second model call
    assert shared.channel == "C123"  # where the button was clicked
    posted = json.dumps(shared.blocks, ensure_ascii=False)
    assert "<@U123> が共有しました" in posted
    assert "配送を最適化する" in posted and "別の答え" not in posted
    assert "ainews:share" not in posted  # no buttons on the shared copy


async def test_someone_elses_or_a_forged_button_is_refused(
    running: Running, slack: SlackServer
) -> None:
    await post_command(running.events_url, slack, "search 規制")
    [answer] = await slack.wait_for_response()
    await click(running.events_url, slack, buttons(answer)["チャンネルに共有"], user="UOTHER")
    await click(running.events_url, slack, "ainews:share:999999")
    refused = await slack.wait_for_response(count=3)
    assert all("使えなくなりました" in str(r["blocks"]) for r in refused[1:])
    assert slack.messages == []


@pytest.mark.parametrize(
    ("secret", "age"),
    [("wrong-secret", 0), (SECRET, 6 * 60)],
    ids=["bad-signature", "older-than-5-minutes"],
)
async def test_unsigned_or_stale_requests_get_401_and_do_nothing(
    running: Running, slack: SlackServer, secret: str, age: int
) -> None:
    status = await post_command(
        running.events_url, slack, "search 規制", secret=secret, timestamp=int(time.time()) - age
    )
    assert status == 401
    await asyncio.sleep(0.2)  # give a wrongly accepted command time to answer
    assert slack.responses == []


async def test_healthz(running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        url = running.events_url.replace("/slack/events", "/healthz")
        async with http.get(url) as response:
            assert response.status == 200
            assert (await response.json()) == {"ok": True}


async def test_help_unknown_and_bad_arguments_always_answer(
    running: Running, slack: SlackServer
) -> None:
    for n, text in enumerate(
        ("help", "frobnicate", "search category:nope 半導体", "subscribe xyz"), start=1
    ):
        await post_command(running.events_url, slack, text)
        await slack.wait_for_response(count=n)  # one at a time: the answers come in order
    joined = [str(a["blocks"]) for a in slack.responses]
    assert "/ainews search" in joined[0] and "subscribe" in joined[0]
    assert "frobnicate" in joined[1] and "/ainews search" in joined[1]
    assert "nope" in joined[2] and "research" in joined[2]
    assert "xyz" in joined[3]


async def test_admin_commands_refuse_non_admins(running: Running, slack: SlackServer) -> None:
    await post_command(
        running.events_url, slack, "sources add https://feeds.example.org/rss policy"
    )
    await post_command(running.events_url, slack, "post-digest")
    answers = await slack.wait_for_response(count=2)
    assert all("管理者だけ" in str(a["blocks"]) for a in answers)
    assert slack.messages_in(CHANNEL) == []
    await post_command(
        running.events_url, slack, "sources add https://feeds.example.org/rss policy", user="UADMIN"
    )
    [*_, added] = await slack.wait_for_response(count=3)
    assert "追加しました" in str(added["blocks"])


async def test_chat_cannot_add_a_loopback_source(running: Running, slack: SlackServer) -> None:
    await post_command(
        running.events_url, slack, "sources add http://127.0.0.1:8080/feed.xml", user="UADMIN"
    )
    [answer] = await slack.wait_for_response()
    assert "not a public address" in str(answer["blocks"])


async def test_briefing_thread_parent_then_replies_in_order_within_limits(
    running: Running, slack: SlackServer
) -> None:
    briefing = await briefing_for(running.app, DEMO_DAY)
    assert await running.platform.thread.publish(briefing) is True
    assert await running.platform.thread.publish(briefing) is False  # once per channel and day

    messages = slack.messages_in(CHANNEL)
    parent, replies = messages[0], messages[1:]
    assert parent.thread_ts is None and "AI News - 2026-11-23" in str(parent.blocks)
    assert len(replies) == len(briefing.items) == 20
    assert all(r.thread_ts == parent.ts for r in replies)
    numbers = [int(str(r.blocks[0]["text"]["text"]).strip("*").split(".")[0]) for r in replies]
    assert numbers == list(range(1, 21))
    for message in messages:
        assert len(message.blocks) <= MAX_BLOCKS and message.text
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION


async def test_rate_limits_during_the_thread_lose_and_double_nothing(
    running: Running, slack: SlackServer
) -> None:
    slack.rate_limit("chat.postMessage", times=2, retry_after=0)
    briefing = await briefing_for(running.app, DEMO_DAY)
    assert await running.platform.thread.publish(briefing)
    replies = slack.messages_in(CHANNEL)[1:]
    assert len(replies) == 20 and len({r.text for r in replies}) == 20
    assert len(slack.calls_to("chat.postMessage")) == 21 + 2


async def test_a_restart_mid_thread_resumes_without_duplicates(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    from slack_sdk.errors import SlackApiError

    settings = slack_settings(tmp_path, demo_database, slack)
    original = len(slack.messages)

    async def crash_after_seven() -> None:
        await slack.wait_for_message(count=original + 7)
        slack.fail("chat.postMessage", error="fatal_error", times=None)

    async with slack_running(settings) as first:
        briefing = await briefing_for(first.app, DEMO_DAY)
        watcher = asyncio.create_task(crash_after_seven())
        with pytest.raises(SlackApiError):
            await first.platform.thread.publish(briefing)
        await watcher
    first_run = list(slack.messages_in(CHANNEL))
    assert 7 <= len(first_run) < 21  # stopped midway (the watcher polls, so a few more)
    slack.clear_faults()
    async with slack_running(settings) as second:  # a new process: resumes from the claim
        assert await second.platform.thread.publish(await briefing_for(second.app, DEMO_DAY))
    messages = slack.messages_in(CHANNEL)
    parents = [m for m in messages if m.thread_ts is None]
    replies = [m for m in messages if m.thread_ts is not None]
    assert len(parents) == 1
    assert len(replies) == 20 and len({r.text for r in replies}) == 20
    [edit] = slack.calls_to("chat.update")  # the resumed thread's parent is redrawn
    assert edit.params["ts"] == parents[0].ts


async def test_a_failed_scheduled_publish_is_retried_and_reported_next_day(
    running: Running, slack: SlackServer
) -> None:
    from dataclasses import replace

    from bot.publishing.destinations import Destinations
    from storage.briefings import briefing_outcome

    app = running.app
    destinations = Destinations(
        [running.platform.thread],
        db=app.db,
        tz=app.settings.tz,
        retry_first=0.05,
        clock=demo_clock,
    )
    slack.fail("chat.postMessage", error="fatal_error", times=2)  # Slack down, twice
    briefing = await briefing_for(app, DEMO_DAY)
    assert await destinations.publish_with_retry(running.platform.thread, briefing)
    messages = slack.messages_in(CHANNEL)
    assert len([m for m in messages if m.thread_ts is None]) == 1 and len(messages) == 21
    outcome = await app.db.run(briefing_outcome, day=DEMO_DAY, destination="slack:" + CHANNEL)
    assert outcome is not None and outcome.status == "posted" and outcome.attempts == 2
    next_day = replace(briefing, day=DEMO_DAY + timedelta(days=1))
    [note] = await destinations.notes_for(running.platform.thread, next_day.day)
    assert "2回の失敗" in note and DEMO_DAY.isoformat() in note


async def test_a_publish_failing_all_day_gives_up_at_midnight(
    running: Running, slack: SlackServer
) -> None:
    from datetime import datetime

    from bot.publishing.destinations import Destinations

    app = running.app
    late = datetime.combine(DEMO_DAY, datetime.min.time(), tzinfo=app.settings.tz) + timedelta(
        hours=23, minutes=59, seconds=59, microseconds=900_000
    )
    destinations = Destinations(
        [running.platform.thread],
        db=app.db,
        tz=app.settings.tz,
        retry_first=0.05,
        clock=lambda: late,
    )
    slack.fail("chat.postMessage", error="fatal_error", times=None)
    briefing = await briefing_for(app, DEMO_DAY)
    assert await destinations.publish_with_retry(running.platform.thread, briefing) is False
    [note] = await destinations.notes_for(running.platform.thread, DEMO_DAY + timedelta(days=1))
    assert "投稿できませんでした" in note and "fatal_error" in note


async def test_publishing_is_serialised_per_destination(
    running: Running, slack: SlackServer
) -> None:
    """With the lease at 0 every claim looks abandoned: only the per-destination lock keeps a
    second publish (say, post-digest during the scheduled run) from doubling the thread."""
    briefing = await briefing_for(running.app, DEMO_DAY)
    thread = running.platform.thread
    results = await asyncio.gather(thread.publish(briefing), thread.publish(briefing))
    assert sorted(results) == [False, True]
    assert len(slack.messages_in(CHANNEL)) == 21


async def test_post_digest_never_forgets_a_thread_in_progress(
    running: Running, slack: SlackServer
) -> None:
    from jobs.briefing_model import to_payload
    from storage.briefings import claim_briefing, mark_posted

    app = running.app
    briefing = await briefing_for(app, DEMO_DAY)
    thread = running.platform.thread
    thread.lease = 120
    other = await app.db.run(  # another process is posting this thread right now
        claim_briefing,
        day=DEMO_DAY,
        destination=thread.destination,
        payload=to_payload(briefing),
        lease_seconds=120,
    )
    assert other is not None and other.id is not None
    assert await thread.repost(briefing) is False
    assert slack.messages_in(CHANNEL) == []
    await app.db.run(mark_posted, briefing_id=other.id, parent_ref="1700000000.000001")
    assert await thread.repost(briefing) is True  # a posted one may be posted again
    assert len(slack.messages_in(CHANNEL)) == 21


async def test_dm_bundles_one_message_per_user(running: Running, slack: SlackServer) -> None:
    db = running.app.db
    await db.run(subscribe, platform="slack", user_id="UALICE", categories=["agents", "security"])
    await db.run(subscribe, platform="slack", user_id="UBOB", categories=["infra"])
    await _add_and_summarise(running.app, count=3)  # new summaries after subscribing

    sent = await running.platform.fanout.send()
    again = await running.platform.fanout.send()

    opened = [c.params.get("users") for c in slack.calls_to("conversations.open")]
    assert sorted(opened) == ["UALICE", "UBOB"]
    dms = [m for m in slack.messages if m.channel.startswith("D")]
    assert len(dms) == sent == 2
    assert again == 0  # the cursor moved: nothing is sent twice


async def test_closed_dms_are_recorded_told_once_and_not_retried(
    running: Running, slack: SlackServer
) -> None:
    def open_dm(call: Any) -> dict[str, Any]:
        if call.params.get("users") == "UCLOSED":
            return {"ok": False, "error": "cannot_dm_bot"}
        return {"ok": True, "channel": {"id": "D" + str(call.params.get("users"))}}

    slack.set_handler("conversations.open", open_dm)
    db = running.app.db
    for user in ("UCLOSED", "UOPEN"):
        await db.run(subscribe, platform="slack", user_id=user, categories=["agents"])
    await _add_and_summarise(running.app, count=1)
    assert await running.platform.fanout.send() == 1
    assert await running.platform.fanout.send() == 0
    tried = [c.params.get("users") for c in slack.calls_to("conversations.open")]
    assert tried.count("UCLOSED") == 1  # recorded, not retried every interval
    await post_command(running.events_url, slack, "subscriptions", user="UCLOSED")
    [first] = await slack.wait_for_response()  # one at a time: which reply is "next" is fixed
    await post_command(running.events_url, slack, "help", user="UCLOSED", name="again")
    _, second = await slack.wait_for_response(count=2)
    assert "DMでお送りできませんでした" in str(first["blocks"])
    assert "DMでお送りできませんでした" not in str(second["blocks"])  # told once


async def _add_and_summarise(app: App, *, count: int) -> None:
    from bot.app import summarize_pending
    from storage.articles import NewArticle, insert_new_articles
    from storage.clock import utcnow

    [spec] = [SourceSpec(url="https://dm.example.com/rss", name="DM Test", category="agents")]
    await app.db.run(add_missing_sources, specs=[spec])
    with Session(app.db.engine) as session:
        source_id = session.exec(select(Article.source_id)).first()
    bodies = [
        ("エージェント基盤の新版を公開", "新しいAIエージェント基盤が公開された。" * 5, "agents"),
        ("脆弱性への注意喚起", "セキュリティ企業が脆弱性を公表した。" * 5, "security"),
        ("データセンターを新設", "GPUを備えたデータセンターを新設する。" * 5, "infra"),
    ][:count]
    articles = [
        NewArticle(
            url=f"https://dm.example.com/{i}",
            guid=None,
            title=title,
            language="ja",
            published_at=utcnow(),
            body_text=body,
            content_hash=f"dm{i}",
        )
        for i, (title, body, _) in enumerate(bodies)
    ]
    assert source_id is not None
    await app.db.run(
        insert_new_articles, source_id=source_id, articles=articles, first_seen_at=utcnow()
    )
    await summarize_pending(app)


async def test_a_hostile_article_is_posted_inert(running: Running, slack: SlackServer) -> None:
    await post_command(running.events_url, slack, "search calendar invite")
    [answer] = await slack.wait_for_response()
    text = json.dumps(answer["blocks"], ensure_ascii=False)
    assert "ignore all previous instructions" in text.lower()
    assert "<!channel>" not in text and "@everyone" not in text
    assert "@\u200beveryone" in text  # still readable, no longer a mention


async def test_commands_are_acked_before_a_slow_model_answers(
    tmp_path: Path, demo_database: Path, slack: SlackServer, openai_server: OpenAIServer
) -> None:
    """The ack never waits for the work: with the model taking 1.5 s per answer, all five
    HTTP acks are back while no answer has been posted yet; the answers follow."""
    openai_server.latency = 1.5
    openai_server.responder = lambda _: {"answerable": False, "answer": "", "citations": []}
    settings = slack_settings(
        tmp_path,
        demo_database,
        slack,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
    )
    async with slack_running(settings, llm=True) as running:
        acks = await asyncio.gather(
            *(post_command(running.events_url, slack, "ask 規制とは？") for _ in range(5))
        )
        assert all(status == 200 for status in acks)
        assert slack.responses == []  # acked first, answered after
        answers = await slack.wait_for_response(count=5)
    assert len(answers) == 5 and len(openai_server.requests) == 5


async def test_socket_mode_commands_are_acked_and_answered(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    settings = slack_settings(tmp_path, demo_database, slack, SLACK_APP_TOKEN="xapp-test")
    async with slack_running(settings):
        await slack.wait_for_socket_client()
        payload = slash_command_payload(
            "search 半導体", user_id="U123", response_url=slack.response_url("socket")
        )
        envelope = await slack.send_socket_event("slash_commands", dict(payload))
        await slack.wait_for_ack(envelope)
        [answer] = await slack.wait_for_response()
    assert "半導体" in json.dumps(answer["blocks"], ensure_ascii=False)
    assert slack.calls_to("apps.connections.open")


async def test_a_mention_is_answered_in_a_thread(running: Running, slack: SlackServer) -> None:
    mention = {
        "type": "app_mention",
        "user": "U123",
        "text": "<@U0BOT> Kumo Relayとは？",
        "ts": "1700000000.000200",
        "channel": "C0TALK",
        "event_ts": "1700000000.000200",
    }
    assert await post_event(running.events_url, mention) == 200
    [message] = await slack.wait_for_message()
    assert message.channel == "C0TALK" and message.thread_ts == "1700000000.000200"
    assert "Kumo Relay" in json.dumps(message.blocks, ensure_ascii=False)


async def test_app_home_shows_and_toggles_subscriptions(
    running: Running, slack: SlackServer
) -> None:
    opened = {"type": "app_home_opened", "user": "UHOME", "tab": "home"}
    assert await post_event(running.events_url, opened) == 200
    [view] = [c.decoded("view") for c in await slack.wait_for("views.publish")]
    toggles = [b["accessory"] for b in view["blocks"] if "accessory" in b]
    assert len(toggles) == 10 and all(b["text"]["text"] == "購読" for b in toggles)
    body = block_actions_body(
        "ainews_toggle_subscription", value="policy", user_id="UHOME", view_type="home"
    )
    assert await post_signed(running.events_url, body) == 200
    [_, second] = await slack.wait_for("views.publish", count=2)
    toggled = [
        b
        for b in second.decoded("view")["blocks"]
        if b.get("accessory", {}).get("value") == "policy"
    ]
    assert toggled[0]["accessory"]["text"]["text"] == "解除"
    from storage.subscriptions import subscriptions_of

    subscribed = await running.app.db.run(subscriptions_of, platform="slack", user_id="UHOME")
    assert subscribed == ["policy"]


async def test_ask_is_rate_limited_per_user(
    tmp_path: Path, demo_database: Path, slack: SlackServer, openai_server: OpenAIServer
) -> None:
    openai_server.responder = lambda _: {
        "answerable": True,
        "answer": "規制が議論されている[1]。",
        "citations": [1],
    }
    settings = slack_settings(
        tmp_path,
        demo_database,
        slack,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
        AINEWS_ASK_LIMIT=2,
    )
    async with slack_running(settings, llm=True) as running:
        for _ in range(3):
            await post_command(running.events_url, slack, "ask 規制の動きは？")
            await slack.wait_for_response(count=len(slack.responses) + 1)
        await post_command(running.events_url, slack, "ask 規制の動きは？", user="UOTHER")
        answers = await slack.wait_for_response(count=4)
    assert len(openai_server.requests) == 3  # two for U123, one for UOTHER
    limited = str(answers[2]["blocks"])
    assert "上限" in limited and "60分あたり2回" in limited
    assert "上限" not in str(answers[3]["blocks"])  # per user


async def test_shutdown_answers_a_command_acked_during_the_grace_window(
    tmp_path: Path, demo_database: Path, slack: SlackServer, openai_server: OpenAIServer
) -> None:
    """SIGTERM while a slow answer is being written: intake stops first (a new command is
    refused), the acked one is still answered, then the process ends."""
    from bot.scheduler import run_bot

    openai_server.latency = 1.0
    openai_server.responder = lambda _: {
        "answerable": True,
        "answer": "規制が議論されている[1]。",
        "citations": [1],
    }
    settings = slack_settings(
        tmp_path,
        demo_database,
        slack,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
        AINEWS_SHUTDOWN_GRACE=10,
        AINEWS_POLL_INTERVAL=600,
        AINEWS_BRIEFING_TIME="03:00",
        AINEWS_PUBLISH_RETRY=1,
    )
    stop = asyncio.Event()
    started: list[Platform] = []
    async with open_app(settings, llm=True, clock=demo_clock) as app:
        run = asyncio.create_task(run_bot(app, stop=stop, ready=started.extend))
        while not started:
            await asyncio.sleep(0.01)
        bot = started[0].intake
        assert isinstance(bot, SlackBot)
        events_url = f"http://127.0.0.1:{bot.http_port}/slack/events"
        assert await post_command(events_url, slack, "ask 規制の動きは？") == 200  # acked
        while not openai_server.requests:  # the answer is being written
            await asyncio.sleep(0.01)
        stop.set()  # SIGTERM
        with pytest.raises(aiohttp.ClientConnectionError):
            while True:  # intake stops at once: soon nothing is accepted
                await post_command(events_url, slack, "help", name="late")
                await asyncio.sleep(0.01)
        await asyncio.wait_for(run, timeout=20)
    answered = slack.responses_to("cmd")
    assert len(answered) == 1 and "規制が議論されている" in str(answered[0]["blocks"])


def live_run_env(
    tmp_path: Path,
    database: Path,
    slack: SlackServer,
    *,
    briefing_time: dt_time,
    admins: str = "UADMIN",
) -> dict[str, str]:
    """The environment of a real `ainews run` process on `database` with Slack pointed at the
    stand-in; `briefing_time` keeps any briefing from falling due while the test runs."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{database}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "AINEWS_FETCH_TIMEOUT": "2",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "AINEWS_SLACK_CHANNEL": CHANNEL,
        "SLACK_API_URL": slack.api_url,
        "AINEWS_HTTP_HOST": "127.0.0.1",
        "AINEWS_HTTP_PORT": "0",
        "AINEWS_SLACK_POST_INTERVAL": "0",
        "AINEWS_ADMIN_USERS": admins,
        "AINEWS_SHUTDOWN_GRACE": "2",
        "AINEWS_BRIEFING_TIME": briefing_time.strftime("%H:%M"),
    }


async def test_ainews_run_in_http_mode_answers_and_posts_on_demand(
    tmp_path: Path, demo_database: Path, slack: SlackServer
) -> None:
    """The acceptance path: the real `ainews run` process, Slack stand-in as SLACK_API_URL.
    The process reads the real clock, so the demo data is redated to end just before the
    latest briefing time that has passed."""
    from storage.clock import utcnow

    settings = make_settings(tmp_path)
    async with open_app(settings) as app:
        config = app.briefing_config
    day, briefing_time = redate_for_a_live_run(
        f"sqlite:///{demo_database}", config=config, now=utcnow()
    )
    expected = await matching_urls(tmp_path, demo_database, "半導体")
    assert 0 < len(expected) <= 10  # one page
    env = live_run_env(tmp_path, demo_database, slack, briefing_time=briefing_time)
    process = await asyncio.create_subprocess_exec(
        AINEWS, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        log = b""
        while b"slack listening" not in log:
            log += await asyncio.wait_for(process.stderr.readline(), timeout=20)
        port = int(re.search(rb"port=(\d+)", log).group(1))  # type: ignore[union-attr]
        events_url = f"http://127.0.0.1:{port}/slack/events"
        assert await post_command(events_url, slack, "search 半導体") == 200
        [answer] = await slack.wait_for_response(timeout=10)
        assert sorted(article_urls(answer)) == expected  # every matching article
        assert await post_command(events_url, slack, "post-digest", user="UADMIN") == 200
        await slack.wait_for_message(count=21, timeout=30)
        parent = slack.messages_in(CHANNEL)[0]
        assert f"AI News - {day.isoformat()}" in json.dumps(parent.blocks, ensure_ascii=False)
        assert len([m for m in slack.messages_in(CHANNEL) if m.thread_ts == parent.ts]) == 20
    finally:
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), timeout=30)
        await asyncio.wait_for(process.wait(), timeout=30)
    assert process.returncode == 0, (log + rest).decode()
    assert b"Traceback" not in rest, (log + rest).decode()
