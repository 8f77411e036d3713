"""Stories across languages: a Japanese and an English report of one launch become one item.

The poller cannot group them (their feed titles share no words); once the model has written a
Japanese title for each, `jobs.cross_language` can. The feeds are shaped as ITmedia's RSS 2.0
and The Verge's Atom feed are, and the fake model answers as a real one does: a Japanese
headline of its own wording (not the feed title), Latin names kept in Latin script.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.app import open_app, poll_once, summarize_pending
from jobs.briefing import briefing_day_for
from jobs.stories import SAME_LANGUAGE, TRANSLATED, title_tokens
from storage.models import Article
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import make_settings
from tests.fakes.feed_server import FeedServer
from tests.fakes.openai_server import OpenAIServer

FENCE = re.compile(r"<<<ARTICLE (?P<nonce>[0-9a-f]+)>>>\n(?P<text>.*)\n<<<END ARTICLE", re.S)


def itmedia_rss(now: datetime, base: str) -> bytes:
    published = format_datetime(now - timedelta(hours=3))
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
<title>ITmedia AI＋ 最新記事一覧</title>
<link>https://www.itmedia.co.jp/aiplus/</link>
<description>ITmedia AI＋の最新記事一覧です。</description>
<language>ja</language>
<item>
<title>Google、新AIモデル「Gemini 3」発表　推論性能が大幅に向上</title>
<link>{base}/aiplus/articles/2611/19/news101.html</link>
<description><![CDATA[米Googleは11月18日（現地時間）、新しいAIモデル「Gemini 3」を発表した。
推論性能が大幅に向上し、Google検索やGeminiアプリで同日から利用できる。
開発者向けにはAPIで提供する。]]></description>
<pubDate>{published}</pubDate>
</item>
<item>
<title>Microsoft、小型AIモデル「Phi-5」を公開</title>
<link>{base}/aiplus/articles/2611/19/news102.html</link>
<description><![CDATA[米Microsoftは、小型言語モデル「Phi-5」を公開した。
スマートフォンでも動作し、オープンなライセンスで配布する。
研究者や開発者が自由に改良できるという。]]></description>
<pubDate>{published}</pubDate>
</item>
</channel>
</rss>
""".encode()


def verge_atom(now: datetime, base: str) -> bytes:
    updated = (now - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-US">
<title type="html">The Verge</title>
<id>https://www.theverge.com/rss/index.xml</id>
<link type="text/html" rel="alternate" href="https://www.theverge.com/"/>
<updated>{updated}</updated>
<entry>
<published>{updated}</published>
<updated>{updated}</updated>
<title type="html">Google launches Gemini 3 with big gains in reasoning</title>
<content type="html">&lt;p&gt;Google is releasing Gemini 3, its newest AI model, which the
company says is far better at reasoning. Gemini 3 is available today in the Gemini app and in
Google Search, and developers can use it through the API.&lt;/p&gt;</content>
<link rel="alternate" type="text/html" href="{base}/news/812345/google-gemini-3-launch"/>
<id>https://www.theverge.com/?p=812345</id>
<author><name>Emma Roth</name></author>
</entry>
</feed>
""".encode()


# What the model writes for each article, keyed by a word of its feed title: its own Japanese
# headline (not a copy of the feed title), names in Latin script, as gpt-4o-mini answers.
ANSWERS: dict[str, dict[str, Any]] = {
    "Gemini 3」発表": {
        "title_ja": "Google、推論性能を高めた新モデル「Gemini 3」を発表",
        "overview": "Googleは新しいAIモデル「Gemini 3」を発表した。推論性能が大幅に向上した。",
        "points": [
            "推論性能が大幅に向上",
            "Google検索とGeminiアプリで利用可能",
            "開発者向けにAPIで提供",
        ],
        "why_important": "検索やアプリに最新モデルがすぐ組み込まれる。",
        "keywords": ["Gemini 3", "Google", "推論"],
        "category": "products",
        "importance": 3,
    },
    "Gemini 3 with": {
        "title_ja": "Google、推論能力を大きく高めた「Gemini 3」を発表",
        "overview": "Googleは最新のAIモデル「Gemini 3」を公開した。推論能力が向上したという。",
        "points": [
            "推論能力が大きく向上",
            "GeminiアプリとGoogle検索で本日から提供",
            "開発者はAPIで利用できる",
        ],
        "why_important": "主力サービスへの新モデル投入は競争を左右する。",
        "keywords": ["Gemini 3", "Google", "AIモデル"],
        "category": "products",
        "importance": 3,
    },
    "Phi-5": {
        "title_ja": "Microsoft、小型AIモデル「Phi-5」を公開",
        "overview": "Microsoftは小型言語モデル「Phi-5」を公開した。スマートフォンでも動作する。",
        "points": [
            "スマートフォンでも動作",
            "オープンなライセンスで配布",
            "研究者や開発者が改良できる",
        ],
        "why_important": "端末上で動くモデルの選択肢が広がる。",
        "keywords": ["Phi-5", "Microsoft", "小型モデル"],
        "category": "opensource",
        "importance": 2,
    },
}


def model(request: dict[str, Any]) -> dict[str, Any]:
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    match = FENCE.search(user)
    if match is None:  # the briefing's trend request: unusable, so the counts are used
        return {}
    title = match["text"].partition("\n")[0]
    return next((answer for key, answer in ANSWERS.items() if key in title), {"title": title})


async def test_japanese_and_english_reports_of_one_launch_become_one_item(
    tmp_path: Path, feed_server: FeedServer, openai_server: OpenAIServer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    feed_server.add("/itmedia.xml", itmedia_rss(now, feed_server.url("")))
    feed_server.add(
        "/verge.xml", verge_atom(now, feed_server.url("")), content_type="application/atom+xml"
    )
    openai_server.responder = model
    settings = make_settings(
        tmp_path,
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=openai_server.base_url + "/v1",
        AINEWS_FULLTEXT_PER_POLL=0,
    )
    async with open_app(settings, fetching=True, llm=True) as app:
        await app.db.run(
            add_missing_sources,
            specs=[
                SourceSpec(
                    url=feed_server.url("/itmedia.xml"), name="ITmedia AI＋", category="japan"
                ),
                SourceSpec(
                    url=feed_server.url("/verge.xml"), name="The Verge", category="products"
                ),
            ],
        )
        polled = await poll_once(app)
        assert (polled.new, polled.failed) == (3, 0)
        with Session(app.db.engine) as session:
            before = {a.title: a.story_id for a in session.exec(select(Article))}
        assert len(set(before.values())) == 3  # the feed titles alone group nothing

        report = await summarize_pending(app)
        assert report.llm == 3, report.as_dict()
        briefing = await briefing_for_now(app, now)

    with Session(app.db.engine) as session:
        stories = {a.title: a.story_id for a in session.exec(select(Article))}

    def story_of(words: str) -> int | None:
        return next(story for title, story in stories.items() if words in title)

    assert story_of("Google launches Gemini 3") == story_of("「Gemini 3」発表")
    assert story_of("「Phi-5」を公開") != story_of("「Gemini 3」発表")

    items = [item for section in briefing.sections for item in section.items]
    assert len(items) == 2, [i.title for i in items]
    gemini = next(i for i in items if "Gemini" in i.title)
    assert {gemini.source.name, *(link.name for link in gemini.related)} == {
        "ITmedia AI＋",
        "The Verge",
    }
    phi = next(i for i in items if "Phi-5" in i.title)
    assert phi.related == ()


async def briefing_for_now(app: Any, now: datetime) -> Any:
    from bot.app import briefing_for

    return await briefing_for(app, briefing_day_for(now, app.briefing_config))


# Pairs of Japanese titles as the model writes them: the same story (different wording), and
# different stories phrased alike. The rule must take the first and refuse the second.
SAME_STORY = [
    (
        "Google、新AIモデル「Gemini 3」を発表　推論性能が大幅向上",
        "Google、推論性能を高めた新モデル「Gemini 3」を発表",
    ),
    (
        "OpenAI、GPT-5を正式リリース　無料ユーザーにも提供",
        "OpenAIがGPT-5を発表、無料ユーザーにも提供開始",
    ),
    ("NVIDIA、次世代GPU「Rubin」を発表", "NVIDIAが次世代AIチップ「Rubin」を公開"),
    ("Apple、Siriに生成AIを統合　iOS 19で", "AppleがiOS 19でSiriに生成AI機能を搭載"),
]
DIFFERENT_STORIES = [
    ("Google、新AIモデル「Gemini 3」を発表", "Microsoft、新AIモデル「Phi-5」を発表"),
    ("NVIDIA、次世代GPU「Rubin」を発表", "AMD、次世代GPU「MI400」を発表"),
]


def verdict(a: str, b: str, rule: Any) -> bool:
    mine, theirs = title_tokens(a), title_tokens(b)
    shared = mine & theirs
    return bool(rule.accepts(len(shared) / len(mine | theirs), shared))


@pytest.mark.parametrize(("a", "b"), SAME_STORY)
def test_translated_titles_of_one_story_match(a: str, b: str) -> None:
    assert verdict(a, b, TRANSLATED)


@pytest.mark.parametrize(("a", "b"), DIFFERENT_STORIES)
def test_alike_titles_of_different_stories_do_not(a: str, b: str) -> None:
    assert not verdict(a, b, TRANSLATED)
    assert not verdict(a, b, SAME_LANGUAGE)
