"""The trend analysis survives answers shaped as a real model writes them: the organisation's
name repeated in its text, Japanese prose around Latin names, full-width punctuation. Each
field is grounded on its own, so "Google" + "Googleが…" is never read as "googlegoogle"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.demo.run import run_demo
from bot.render.markdown import render_briefing
from tests.conftest import DEMO_DAY, demo_llm_settings, make_settings
from tests.fakes.openai_server import OpenAIServer

# What gpt-4o-mini answers for the demo day's items (names of the items, repeated in the text).
NATURAL = {
    "themes": [
        {
            "name": "業務AIエージェントの実用化",
            "text": "クモシステムズが「Kumo Relay」を発表し、"
            "社内システムとの連携を進めている（#8、#11）。",
        },
        {
            "name": "推論向けハードウェア",
            "text": "Hoshizora AIが推論専用チップ「HZ-2」の量産を開始した（#13）。",
        },
    ],
    "organisations": [
        {
            "name": "Nimbus Labs",
            "text": "Nimbus Labsは新モデル「Nimbus Ultra 2」の提供を開始し、API料金を引き下げた。",
        },
        {
            "name": "Ｈｏｓｈｉｚｏｒａ ＡＩ",
            "text": "Ｈｏｓｈｉｚｏｒａ ＡＩが「HZ-2」の量産を始めた。",
        },
        {"name": "Kumo Relay", "text": "Kumo Relayは承認フローと監査ログを備える。"},
    ],
    "outlook": "業務AIエージェントと推論チップの両面で、実運用に向けた動きが続く見通し。",
}


async def test_a_natural_trend_answer_is_accepted_and_an_ungrounded_one_is_not(
    tmp_path: Path, openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.app import briefing_for, open_app

    database = (await run_demo(make_settings(tmp_path))).database
    llm_settings = demo_llm_settings(tmp_path, database, openai_server)
    # Also natural in shape, but Google is in none of the day's items.
    ungrounded = {
        **NATURAL,
        "organisations": [
            {"name": "Google", "text": "Googleが新しいAIエージェントを発表した。"},
            *NATURAL["organisations"][:1],
        ],
    }
    openai_server.enqueue_json(NATURAL)
    openai_server.enqueue_json(ungrounded)
    with caplog.at_level(logging.WARNING, logger="jobs.briefing"):
        async with open_app(llm_settings, llm=True) as app:
            good = await briefing_for(app, DEMO_DAY)
            bad = await briefing_for(app, DEMO_DAY)

    assert good.trend.automatic is False, caplog.text
    assert good.trend.organisations[0].name == "Nimbus Labs"
    markdown = render_briefing(good)
    assert "## 📊 本日のトレンド分析\n" in markdown
    assert "**Nimbus Labs**: Nimbus Labsは新モデル" in markdown
    assert bad.trend.automatic is True
    rejected = [r for r in caplog.records if r.getMessage().startswith("trend analysis rejected")]
    assert len(rejected) == 1
    assert "google" in str(getattr(rejected[0], "problems", ""))
    assert "googlegoogle" not in str(getattr(rejected[0], "problems", ""))
