"""Renderers (Markdown, Slack Block Kit, Discord embeds): small snapshot-style assertions on the
neutral Reply and Briefing, hostile text, and limits. Real publishers' text comes from the shared
feed corpus (read in place, never copied here)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.publishing.controls import Control, reply_controls
from bot.render import discord as dc
from bot.render import slack
from bot.render.markdown import render_briefing
from bot.render.reply_markdown import render_reply
from bot.render.sanitize import http_url, neutralise_mentions
from handlers.reply import ArticleRef, Code, Href, Paging, Reply, Strong, line
from jobs.briefing_model import Briefing, BriefingItem, BriefingSection, Highlight, Link, Trend
from jobs.feed_parse import parse_feed
from tests.conftest import realfeeds_dir

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOSTILE = (
    "@everyone <@123> <@!456> <@&1> <#1> <!channel> </ask question:99> "
    "[click](http://evil.example) **bold** `tick`\n# heading\n-# small\n> quote"
)
LIVE_MENTION = re.compile(r"<[@#!/]|@everyone|@here")

# ── factories ───────────────────────────────────────────────────────────────────────────────


def _item(number: int = 1, **changes: Any) -> BriefingItem:
    item = BriefingItem(
        number=number,
        article_id=number,
        title=f"〇〇社、推論専用チップの量産を開始 {number}",
        source=Link("Example Tech News", f"https://news.example.com/{number}"),
        importance=3,
        overview="〇〇社が推論専用チップの量産を開始した。",
        points=("電力効率が2倍", "国内3か所に導入", "価格は非公表"),
        why_important="推論コストの低下は採算を左右する。",
        keywords=("推論チップ", "データセンター"),
        category="infra",
        published_at=WHEN,
        automatic=False,
        related=(Link("Another Outlet", "https://another.example.org/chip"),),
    )
    return replace(item, **changes)


def _briefing(*items: BriefingItem, automatic: bool = False) -> Briefing:
    return Briefing(
        day=date(2026, 3, 2),
        categories_considered=3,
        articles_considered=183,
        sections=(BriefingSection("infra", "🖥️ インフラ・ハードウェア", items),),
        trend=Trend(
            themes=(Highlight("推論コストの低下", "各社が推論チップを投入した。"),),
            organisations=(),
            outlook="年内に価格競争が始まる見込み。",
            automatic=automatic,
        ),
        window_start=WHEN,
        window_end=WHEN,
    )


def _article(number: int, **changes: Any) -> ArticleRef:
    article = ArticleRef(
        number=number,
        title=f"記事 {number}",
        url=f"https://news.example.com/a/{number}",
        source="Example",
        published=WHEN,
        category="🖥️ インフラ・ハードウェア",
        snippet="推論チップの量産",
    )
    return replace(article, **changes)


HELP = Reply(
    title="ainews の使い方",
    lines=(
        line(Code("/ainews search 半導体"), " 記事を検索", bullet=True),
        line(Strong("ainews"), " は毎朝 ", Href("説明", "https://example.com/docs?a=1&b=(2)")),
        line("入力: ", Code("a`b")),
    ),
)
PAGED = Reply(
    title="「推論」の検索結果",
    articles=(_article(11), _article(12)),
    paging=Paging(page=2, pages=3, total=25),
    shareable=True,
)


# ── helpers ─────────────────────────────────────────────────────────────────────────────────


def _slack_texts(blocks: list[slack.Block]) -> list[str]:
    texts: list[str] = []
    for block in blocks:
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return texts


def _discord_texts(messages: list[dc.DiscordMessage], *, footers: bool = True) -> list[str]:
    """Everything a reader sees. Footers are plain text on Discord (no markdown, no mentions):
    leave them out when checking for markup."""
    texts = [m.content for m in messages]
    for message in messages:
        for embed in message.embeds:
            texts += [embed.title or "", embed.description or ""]
            texts += [embed.footer.text or ""] if footers else []
    return texts


def _assert_discord_limits(messages: list[dc.DiscordMessage]) -> None:
    for message in messages:
        assert message.content or message.embeds
        assert dc.size(message.content) <= dc.MAX_CONTENT
        assert len(message.embeds) <= dc.MAX_EMBEDS
        assert sum(len(e) for e in message.embeds) <= dc.MAX_TOTAL  # discord.py's own count
        assert sum(dc.embed_size(e) for e in message.embeds) <= dc.MAX_TOTAL
        for embed in message.embeds:
            assert dc.size(embed.title or "") <= dc.MAX_TITLE
            assert 0 < dc.size(embed.description or "") <= dc.MAX_DESCRIPTION
            assert dc.size(embed.footer.text or "") <= dc.MAX_FOOTER


def _assert_slack_limits(blocks: list[slack.Block]) -> None:
    assert len(blocks) <= slack.MAX_BLOCKS
    assert all(len(t) <= slack.MAX_SECTION for t in _slack_texts(blocks))


def _unescape_discord(text: str) -> str:
    """What Discord shows for escaped text: a backslash before punctuation disappears."""
    return re.sub(r"\\([^0-9A-Za-z\s])", r"\1", text)


def _bare(text: str) -> str:
    return "".join(text.split())


# ── lines, controls, paging ─────────────────────────────────────────────────────────────────


def test_markdown_renders_structured_lines() -> None:
    markdown = render_reply(HELP)
    assert markdown.startswith("**ainews の使い方**\n\n- `/ainews search 半導体` 記事を検索\n\n")
    assert "**ainews** は毎朝 [説明](https://example.com/docs?a=1&b=%282%29)" in markdown
    assert "入力: `aˋb`" in markdown  # a backtick cannot close the code span


def test_slack_renders_structured_lines() -> None:
    text = _slack_texts(slack.reply_blocks(HELP))[1]
    assert text == (
        "• `/ainews search 半導体` 記事を検索\n"
        "*ainews* は毎朝 <https://example.com/docs?a=1&amp;b=%282%29|説明>\n"  # `&` in mrkdwn
        "入力: `aˋb`"
    )


def test_discord_renders_structured_lines() -> None:
    [message] = dc.reply_messages(HELP)
    assert message.content == (
        "**ainews の使い方**\n"
        "• `/ainews search 半導体` 記事を検索\n"
        "**ainews** は毎朝 [説明](<https://example.com/docs?a=1&b=%282%29>)\n"
        "入力: `aˋb`"
    )
    assert not re.search(r"(?<!\*)\*ainews\*(?!\*)", message.content)  # no Slack markup


def test_slack_controls_are_buttons_at_the_end() -> None:
    controls = reply_controls(PAGED, 7)
    blocks = slack.reply_blocks(PAGED, controls=controls)
    assert blocks[-1] == {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": "ainews:page:7:1",
                "text": {"type": "plain_text", "text": "前へ"},
                "value": "ainews:page:7:1",
            },
            {
                "type": "button",
                "action_id": "ainews:page:7:3",
                "text": {"type": "plain_text", "text": "次へ"},
                "value": "ainews:page:7:3",
            },
            {
                "type": "button",
                "action_id": "ainews:share:7",
                "text": {"type": "plain_text", "text": "チャンネルに共有"},
                "value": "ainews:share:7",
                "style": "primary",
            },
        ],
    }
    assert blocks[-2] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "ページ 2/3（全25件）"}],
    }
    assert all(b["type"] != "actions" for b in slack.reply_blocks(PAGED))


def test_paging_and_notices_on_every_platform() -> None:
    reply = PAGED.with_notice("DM を送れませんでした")
    assert "ページ 2/3（全25件）" in render_reply(reply)
    assert "> DM を送れませんでした" in render_reply(reply)
    assert "ページ 2/3（全25件）" in "\n".join(_slack_texts(slack.reply_blocks(reply)))
    [message] = dc.reply_messages(reply)
    assert message.content.endswith("> DM を送れませんでした\nページ 2/3（全25件）")
    assert "[記事 11](https://news.example.com/a/11)" in (message.embeds[0].description or "")


def test_share_headers_validate_the_user_id() -> None:
    blocks = slack.share_blocks(PAGED, "U012AB3CD")
    assert blocks[0]["elements"][0]["text"] == "<@U012AB3CD> が共有しました"
    assert all(b["type"] != "actions" for b in blocks)
    assert dc.share_header("80351110224678912") == "<@80351110224678912> が共有しました"
    with pytest.raises(ValueError):
        slack.share_blocks(PAGED, "U1> <!channel")
    with pytest.raises(ValueError):
        dc.share_header("1><@&2")


def test_citations_link_to_their_articles() -> None:
    reply = Reply(title="Q", text="量産を開始した[1]。不明[9]。", articles=(_article(1),))
    url = "https://news.example.com/a/1"
    assert f"量産を開始した[\\[1\\]]({url})。不明\\[9\\]。" in render_reply(reply)
    assert f"量産を開始した<{url}|[1]>。不明[9]。" in _slack_texts(slack.reply_blocks(reply))
    assert f"量産を開始した[\\[1\\]](<{url}>)。不明\\[9\\]。" in dc.reply_messages(reply)[0].content


# ── untrusted text ──────────────────────────────────────────────────────────────────────────


def _hostile_reply() -> Reply:
    return Reply(
        title=HOSTILE,
        text=HOSTILE,
        lines=(line(HOSTILE, Strong(HOSTILE)),),
        articles=(_article(1, title=HOSTILE, snippet=HOSTILE, source=HOSTILE),),
        notices=(HOSTILE,),
    )


def _assert_readable(rendered: str) -> None:
    for word in ("everyone", "click", "bold", "heading", "tick", "quote", "evil.example"):
        assert word in rendered


def test_hostile_text_is_inert_in_markdown() -> None:
    for markdown in (render_reply(_hostile_reply()), render_briefing(_briefing(_hostile_item()))):
        assert not LIVE_MENTION.search(markdown)
        assert "[click](http://evil.example)" not in markdown
        assert "**bold**" not in markdown
        assert not re.search(r"(?m)^(#|-#|>) (heading|small|quote)", markdown)
        _assert_readable(markdown)


def test_hostile_text_is_inert_on_slack() -> None:
    blocks = slack.reply_blocks(_hostile_reply())
    blocks += slack.briefing_item_blocks(_hostile_item(), HOSTILE)
    blocks += slack.briefing_parent_blocks(_briefing(_hostile_item()))
    rendered = "\n".join(_slack_texts(blocks))
    assert not LIVE_MENTION.search(rendered)
    assert "<http://evil.example" not in rendered
    assert "&gt; quote" in rendered  # `>` shown, not parsed
    _assert_readable(rendered)


def test_hostile_text_is_inert_on_discord() -> None:
    messages = dc.reply_messages(_hostile_reply())
    messages += [dc.DiscordMessage(embeds=tuple(dc.briefing_item_embeds(_hostile_item(), "h")))]
    messages += [dc.DiscordMessage(embeds=(dc.briefing_parent_embed(_briefing(_hostile_item())),))]
    assert not any(LIVE_MENTION.search(text) for text in _discord_texts(messages))
    for text in _discord_texts(messages, footers=False):
        assert "[click](http://evil.example)" not in text
        assert not re.search(r"(?<!\\)\*\*bold", text)
        assert not re.search(r"(?m)^(#|-#|>) (heading|small)", text)
    rendered = "\n".join(_discord_texts(messages))
    _assert_readable(rendered)
    assert "\\# heading" in rendered and "\\-# small" in rendered and "\\> quote" in rendered
    assert "\\`tick\\`" in rendered  # a backtick from the text opens no code span


def _hostile_item() -> BriefingItem:
    return _item(
        title=HOSTILE,
        overview=HOSTILE,
        points=(HOSTILE, HOSTILE, HOSTILE),
        why_important=HOSTILE,
        keywords=(HOSTILE,),
        source=Link(HOSTILE, "javascript:alert(1)"),
        related=(Link(HOSTILE, "https://ok.example/a b)(<x>"),),
    )


def test_code_from_untrusted_text_cannot_close_its_span() -> None:
    reply = Reply(title="t", lines=(line(Code(HOSTILE)),))
    slack_line = _slack_texts(slack.reply_blocks(reply))[1]
    discord_line = dc.reply_messages(reply)[0].content.split("\n")[1]
    markdown_line = render_reply(reply).split("\n\n")[1].strip()
    for rendered in (slack_line, discord_line, markdown_line):
        assert rendered.count("`") == 2 and rendered[0] == rendered[-1] == "`"
        assert not LIVE_MENTION.search(rendered) and "\n" not in rendered
    assert "&gt; quote" in slack_line  # Slack parses `<…>` and `&` even inside code


def test_only_http_urls_become_links() -> None:
    assert http_url("javascript:alert(1)") is None
    assert http_url("/relative") is None
    assert http_url("https://ok.example/a b)(<x>|") == "https://ok.example/a%20b%29%28%3Cx%3E%7C"
    item = _hostile_item()
    [embed] = dc.briefing_item_embeds(item, "h")
    assert embed.url is None  # the javascript: source is not a link
    assert "(https://ok.example/a%20b%29%28%3Cx%3E)" in (embed.description or "")
    assert "javascript:" not in "".join(_slack_texts(slack.briefing_item_blocks(item, "h")))


def test_discord_escape_round_trips_to_the_neutralised_text() -> None:
    for text in (HOSTILE, "a\\b 1. x_y ~z~ ||s|| https://ex.com/a_b_(c). ok", "<t:1700000000:R>"):
        assert _unescape_discord(dc.escape(text)) == neutralise_mentions(text)
    assert dc.escape("see https://ex.com/a_b_c.") == "see https://ex.com/a_b_c."  # link kept


# ── limits: split, never cut ────────────────────────────────────────────────────────────────


def _long_overview(chars: int = 10_000) -> str:
    sentences: list[str] = []
    number = 0
    while sum(len(s) for s in sentences) < chars:
        number += 1
        sentences.append(f"第{number}文では推論チップの量産が続く。Sentence {number} ends here. ")
    return "".join(sentences)


def test_long_briefing_item_is_split_across_embeds_without_loss() -> None:
    overview = _long_overview()
    embeds = dc.briefing_item_embeds(_item(overview=overview), "🖥️ インフラ・ハードウェア")
    assert len(embeds) >= 3
    assert embeds[0].title == f"1. {_item().title}"
    assert all(e.title is None and e.colour == embeds[0].colour for e in embeds[1:])
    assert (
        embeds[-1].footer.text == "🖥️ インフラ・ハードウェア ・ Example Tech News ・ 重要度 ⭐⭐⭐"
    )
    joined = "\n".join(e.description or "" for e in embeds)
    assert _bare(overview) in _bare(joined)
    assert "**関連報道**: [Another Outlet](https://another.example.org/chip)" in joined
    messages = [dc.DiscordMessage(embeds=tuple(b)) for b in dc.pack_embeds(embeds)]
    _assert_discord_limits(messages)
    assert [e for m in messages for e in m.embeds] == embeds  # order kept


def test_long_title_stays_whole_in_the_description() -> None:
    title = "とても長い見出し" * 60
    [embed] = dc.briefing_item_embeds(_item(title=title), "h")
    assert dc.size(embed.title or "") <= dc.MAX_TITLE and (embed.title or "").endswith("…")
    assert (embed.description or "").startswith(f"**{title}**\n")


def test_pack_embeds_keeps_an_item_together() -> None:
    small = [dc.briefing_item_embeds(_item(n), "h")[0] for n in range(1, 4)]
    big = dc.briefing_item_embeds(_item(4, overview=_long_overview(5_300)), "h")
    assert len(big) == 2
    assert sum(map(dc.embed_size, small + big)) > dc.MAX_TOTAL >= sum(map(dc.embed_size, big))
    packed = dc.pack_embeds([*small, *big])
    assert packed == [[*small], big]  # the two halves of item 4 moved together
    eleven = [dc.briefing_item_embeds(_item(n), "h")[0] for n in range(1, 12)]
    assert [len(m) for m in dc.pack_embeds(eleven)] == [10, 1]


def test_digest_on_discord_fits_every_message() -> None:
    items = tuple(_item(n, overview=_long_overview(1_500)) for n in range(1, 26))
    messages = dc.reply_messages(Reply(title="AI News", briefing=_briefing(*items)))
    _assert_discord_limits(messages)
    assert len(messages) > 1
    first = messages[0].embeds[0]
    assert first.title == "AI News - 2026-03-02"
    assert "🔍 調査カテゴリ: 3 / 調査記事数: 約180件 / 掲載: 25件" in (first.description or "")
    assert "🖥️ インフラ・ハードウェア: 1. 〇〇社、推論専用チップの量産を開始 1, 2." in (
        first.description or ""
    )
    titles = [e.title for m in messages for e in m.embeds if e.title and e.title[0].isdigit()]
    assert len(titles) == 25


def test_parent_embed_marks_automatic_trends() -> None:
    embed = dc.briefing_parent_embed(_briefing(_item(), automatic=True))
    description = embed.description or ""
    assert "**📊 本日のトレンド（自動抽出）**\n• **推論コストの低下**: 各社が" in description
    assert "**今後の展望**\n年内に価格競争が始まる見込み。" in description


def test_briefing_notes_are_said_above_the_briefing() -> None:
    briefing = replace(_briefing(_item()), notes=("昨日の投稿は2回目で成功しました <!here>",))
    note = "昨日の投稿は2回目で成功しました ＜!here＞"
    assert f"> {note}\n" in render_briefing(briefing)
    assert slack.briefing_parent_blocks(briefing)[2]["elements"][0]["text"] == note
    description = dc.briefing_parent_embed(briefing).description or ""
    assert description.startswith("🔍 調査カテゴリ: 3 / 調査記事数: 約180件 / 掲載: 1件\n> " + note)


def test_long_discord_reply_is_split_into_messages_without_loss() -> None:
    text = _long_overview(7_000) + "出典[1]。"
    reply = Reply(title="Q. 推論", text=text, articles=tuple(_article(n) for n in range(1, 4)))
    messages = dc.reply_messages(reply)
    _assert_discord_limits(messages)
    assert len(messages) >= 4
    content = "\n".join(m.content for m in messages)
    assert _bare(_long_overview(7_000)) in _bare(content)
    assert "出典[\\[1\\]](<https://news.example.com/a/1>)。" in content
    assert messages[-1].embeds  # the articles follow the text


def test_slack_reply_keeps_buttons_and_says_what_was_left_out() -> None:
    reply = Reply(
        title="多すぎる結果",
        text=_long_overview(10_000),
        articles=tuple(_article(n) for n in range(1, 61)),
        paging=Paging(1, 2, 120),
        shareable=True,
    )
    controls = (Control("次へ", "ainews:page:1:2"), Control("共有", "ainews:share:1", primary=True))
    blocks = slack.reply_blocks(reply, controls=controls)
    _assert_slack_limits(blocks)
    assert blocks[-1]["type"] == "actions"
    texts = _slack_texts(blocks)
    assert "ページ 1/2（全120件）" in texts
    assert any(re.fullmatch(r"ほか\d+件は省略", t) for t in texts)
    assert _bare(reply.text) in _bare("".join(texts))  # the text is split, not cut


def test_slack_briefing_item_splits_a_long_overview() -> None:
    overview = _long_overview()
    blocks = slack.briefing_item_blocks(_item(overview=overview), "h")
    _assert_slack_limits(blocks)
    assert _bare(overview) in _bare("".join(_slack_texts(blocks)))


def test_slack_digest_keeps_its_button() -> None:
    items = tuple(_item(n) for n in range(1, 30))
    controls = (Control("共有", "ainews:share:3", primary=True),)
    blocks = slack.reply_blocks(Reply(title="d", briefing=_briefing(*items)), controls=controls)
    _assert_slack_limits(blocks)
    assert blocks[-1]["type"] == "actions"
    assert "ほか" in blocks[-2]["elements"][0]["text"]


# ── real publishers' text ───────────────────────────────────────────────────────────────────


def _real_entries(name: str) -> list[Any]:
    path = realfeeds_dir() / name
    parsed = parse_feed(path.read_bytes(), f"https://feeds.example/{name}")
    assert parsed.error is None and parsed.entries
    return parsed.entries


@pytest.mark.parametrize(
    "name", ["en_morningpaper_papers.rss", "ja_hatebu_hotentry_feedburner.rdf", "en_theverge.atom"]
)
def test_real_feed_text_renders_within_limits(name: str) -> None:
    """Real article bodies (HTML stripped by the poller's own parser): paper reviews of about
    10,000 characters with `*`, `_`, `[`, `#`, backslashes; Japanese with `|`, `*`, `#`."""
    entries = _real_entries(name)
    items = tuple(
        _item(n, title=e.title, overview=e.body_text, source=Link(e.title, e.url))
        for n, e in enumerate(entries[:10], start=1)
    )
    articles = tuple(
        _article(n, title=e.title, url=e.url, snippet=e.body_text[:300])
        for n, e in enumerate(entries, start=1)
    )
    for entry in entries:
        for text in (entry.title, entry.body_text):
            escaped = dc.escape(text)
            assert _unescape_discord(escaped) == neutralise_mentions(text)
            without_urls = re.sub(r"https?://\S+", "", escaped)
            assert not re.search(r"(?<!\\)(?:\\\\)*[*_~`|\[\]<>]", without_urls)
            assert not re.search(r"(?m)^[ \t]*(#|-|[0-9]+\.)", without_urls)

    digest = dc.reply_messages(Reply(title="d", briefing=_briefing(*items)))
    _assert_discord_limits(digest)
    shown = _bare("".join(_discord_texts(digest)))
    for item in items:  # every overview arrives whole, however long
        assert _bare(dc.escape(item.overview)) in shown
    _assert_discord_limits(dc.reply_messages(Reply(title="検索", articles=articles)))

    for item in items:
        _assert_slack_limits(slack.briefing_item_blocks(item, "h"))
    _assert_slack_limits(slack.reply_blocks(Reply(title="検索", articles=articles)))
    markdown = render_briefing(_briefing(*items))
    assert all(_bare(e.title[:20]) in _bare(_unescape_discord(markdown)) for e in entries[:10])
