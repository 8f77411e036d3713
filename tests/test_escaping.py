"""One escaping path for every article-derived string and URL that reaches chat.

Hypothesis builds replies (search results, answers with citations, DM bundles) and briefings
whose titles, bodies, snippets, URLs and source names are arbitrary text, biased towards the
pieces that make Slack and Discord act: mentions, link syntax, brackets, backticks, backslashes,
zero-width and bidirectional characters. The checks read the rendered payloads as each platform
would parse them, independently of the renderers:

- Slack: every `<` in a mrkdwn text opens one `<url|label>` link whose URL is one of the input
  URLs' sanitised http(s) forms (so no `<!channel>`, `<@U…>`, `<#C…>`, `<!subteam^…>`, and no
  URL with a raw `>` or `|`), or the sharer's own `<@U…>`.
- Discord: no `@everyone`/`@here` without a zero-width space after the `@`, no `<@…>`, `<@&…>`,
  `<#…>` or `</cmd:…>` that is not backslash-escaped, and every unescaped `[` outside inline code
  opens a masked link to an input URL's sanitised form (the embed's own link likewise).
- Markdown (files, the console): the same link rule, and no raw `<`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render import discord as dc
from bot.render import slack
from bot.render.markdown import render_briefing
from bot.render.reply_markdown import render_reply
from bot.render.sanitize import http_url, neutralise_mentions
from handlers.reply import ArticleRef, Code, Href, Inline, Line, Paging, Reply, Strong
from jobs.briefing_model import Briefing, BriefingItem, BriefingSection, Highlight, Link, Trend

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SLACK_SHARER = "U012AB3CD"
DISCORD_SHARER = "80351110224678912"
FEEDPARSER_LINK = "https://e.example/a><!channel><x"  # a link feedparser keeps as it is

DANGEROUS = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123>",
    "<!subteam^S1>",
    "<!subteam^S1|@team>",
    "<@123>",
    "<@!123>",
    "<@&1>",
    "<#1>",
    "</ask question:99>",
    "<id:browse>",
    "@everyone",
    "@here",
    "@channel",
    "|",
    "||",
    ">",
    "<",
    "&",
    "&lt;",
    "&gt;",
    "&amp;",
    "](",
    "[",
    "]",
    "(",
    ")",
    "`",
    "```",
    "\\",
    "*",
    "**",
    "_",
    "~",
    "#",
    "-# ",
    "> ",
    "1. ",
    "\n",
    " ",
    "[1]",
    "[2]",
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u200e",  # left-to-right mark
    "\u200f",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2069",
    "\x00",
    "@",
    "!",
    "U123",
    "123",
    "everyone",
    "here",
    "https://",
    "http://e.example/",
    "https://evil.example/",
    "[x](https://evil.example)",
    "<https://evil.example|x>",
    FEEDPARSER_LINK,
)
PIECE = st.one_of(st.sampled_from(DANGEROUS), st.text(max_size=6))
TEXT = st.lists(PIECE, max_size=10).map("".join)
URL = st.one_of(
    TEXT,
    TEXT.map(lambda tail: "https://e.example/" + tail),
    TEXT.map(lambda tail: "http://" + tail),
    st.sampled_from(
        (
            FEEDPARSER_LINK,
            "javascript:alert(1)",
            "https://ok.example/a b)(<x>|",
            "https://e.example/?a=1&lt;!here&gt;",
            "HTTPS://E.EXAMPLE/[x](https://evil.example)",
            "/relative",
            "",
        )
    ),
)
LINKS = st.builds(Link, TEXT, URL)


def _inline() -> st.SearchStrategy[Inline]:
    return st.one_of(TEXT, TEXT.map(Code), TEXT.map(Strong), st.builds(Href, TEXT, URL))


@st.composite
def articles(draw: st.DrawFn) -> tuple[ArticleRef, ...]:
    return tuple(
        ArticleRef(
            number=number,
            title=draw(TEXT),
            url=draw(URL),
            source=draw(TEXT),
            published=draw(st.sampled_from((WHEN, None))),
            category=draw(st.one_of(st.none(), TEXT)),
            snippet=draw(TEXT),
            other_sources=draw(st.integers(0, 3)),
        )
        for number in range(1, draw(st.integers(0, 3)) + 1)
    )


@st.composite
def replies(draw: st.DrawFn) -> Reply:
    lines = draw(
        st.lists(
            st.builds(
                lambda parts, bullet: Line(tuple(parts), bullet=bullet),
                st.lists(_inline(), max_size=4),
                st.booleans(),
            ),
            max_size=3,
        )
    )
    return Reply(
        title=draw(TEXT),
        text=draw(TEXT),
        lines=tuple(lines),
        articles=draw(articles()),
        automatic=draw(st.booleans()),
        paging=draw(st.sampled_from((None, Paging(2, 3, 25)))),
        notices=tuple(draw(st.lists(TEXT, max_size=2))),
    )


@st.composite
def items(draw: st.DrawFn, number: int) -> BriefingItem:
    return BriefingItem(
        number=number,
        article_id=number,
        title=draw(TEXT),
        source=draw(LINKS),
        importance=draw(st.integers(1, 3)),
        overview=draw(TEXT),
        points=tuple(draw(st.lists(TEXT, max_size=3))),
        why_important=draw(TEXT),
        keywords=tuple(draw(st.lists(TEXT, max_size=2))),
        category=draw(st.sampled_from(("infra", "research", "unknown"))),
        published_at=draw(st.sampled_from((WHEN, None))),
        automatic=draw(st.booleans()),
        related=tuple(draw(st.lists(LINKS, max_size=2))),
    )


@st.composite
def briefings(draw: st.DrawFn) -> Briefing:
    count = draw(st.integers(1, 3))
    section_items = tuple(draw(items(n)) for n in range(1, count + 1))
    highlights = st.lists(st.builds(Highlight, TEXT, TEXT), max_size=2)
    return Briefing(
        day=date(2026, 3, 2),
        categories_considered=3,
        articles_considered=draw(st.integers(0, 500)),
        sections=(BriefingSection("infra", draw(TEXT), section_items),),
        trend=Trend(
            themes=tuple(draw(highlights)),
            organisations=tuple(draw(highlights)),
            outlook=draw(TEXT),
            automatic=draw(st.booleans()),
        ),
        window_start=WHEN,
        window_end=WHEN,
        notes=tuple(draw(st.lists(TEXT, max_size=2))),
    )


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ── what the input may link to ──────────────────────────────────────────────────────────────


def _urls_of_reply(reply: Reply) -> list[str]:
    urls = [a.url for a in reply.articles]
    urls += [p.url for ln in reply.lines for p in ln.parts if isinstance(p, Href)]
    if reply.briefing is not None:
        urls += _urls_of_briefing(reply.briefing)
    return urls


def _urls_of_briefing(briefing: Briefing) -> list[str]:
    return [link.url for item in briefing.items for link in (item.source, *item.related)]


def _sanitised(urls: Iterable[str]) -> set[str]:
    """The http(s) forms the renderers may link to. Each is checked here on its own terms, so
    the property does not merely trust `http_url`."""
    targets = {target for url in urls if (target := http_url(url)) is not None}
    for target in targets:
        assert re.match(r"(?i)https?://", target), target
        assert not re.search(r"[\s<>|()\[\]\\`\"']", target), target
    return targets


# ── Slack ───────────────────────────────────────────────────────────────────────────────────


def _slack_texts(payload: Any) -> Iterator[tuple[str, str]]:
    """Every (type, text) of a Block Kit payload, at any depth."""
    if isinstance(payload, dict):
        if payload.get("type") in ("mrkdwn", "plain_text") and isinstance(payload.get("text"), str):
            yield payload["type"], payload["text"]
        for value in payload.values():
            yield from _slack_texts(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from _slack_texts(value)


def assert_slack_inert(blocks: list[slack.Block], urls: Iterable[str], *, sharer: str = "") -> None:
    allowed = {target.replace("&", "&amp;") for target in _sanitised(urls)}
    texts = list(_slack_texts(blocks))
    assert texts
    for kind, text in texts:
        if kind == "plain_text":  # never parsed by Slack; ours are fixed words anyway
            assert not re.search(r"<[!@#]", text), text
            continue
        assert_slack_mrkdwn_inert(text, allowed, sharer=sharer)


def assert_slack_mrkdwn_inert(text: str, allowed: set[str], *, sharer: str = "") -> None:
    """Slack reads `<…>` up to the next `>`: each one here must be a link we made."""
    for start in (m.start() for m in re.finditer("<", text)):
        sequence = re.compile(r"<([^<>]*)>").match(text, start)
        assert sequence is not None, f"unclosed < in {text!r}"
        inner = sequence.group(1)
        if sharer and inner == f"@{sharer}":
            continue
        url, bar, _label = inner.partition("|")
        assert bar, f"<{inner}> is not a link: {text!r}"
        assert url in allowed, f"link to {url!r}, not an article's URL: {text!r}"


# ── Discord and Markdown ────────────────────────────────────────────────────────────────────

_DISCORD_MENTION = re.compile(r"<(?:@[!&]?\d+|#\d+|/[^<>\n]+:\d+|id:[\w-]+)>")
_BROADCAST = re.compile(r"@(?:everyone|here)", re.I)
_MASKED_LINK = re.compile(r"\[((?:\\.|[^\\\[\]`])*)\]\((<?)([^()<>\s]*)(>?)\)")


def _escaped(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 1


def read_markdown(text: str) -> tuple[list[str], str]:
    """The masked links' targets in `text` and the text outside inline code, read as Discord
    (and CommonMark) read it: a backslash escapes the next character and inline code is
    literal. Any other unescaped `[` fails: the renderers escape every bracket that is not a
    link of their own."""
    targets: list[str] = []
    outside: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            outside.append(text[index : index + 2])
            index += 2
        elif char == "`":
            end = text.find("`", index + 1)
            assert end != -1, f"unclosed code span in {text!r}"
            index = end + 1
        elif char == "[":
            match = _MASKED_LINK.match(text, index)
            assert match is not None, f"a [ that opens no link of ours: {text[index:]!r}"
            assert (match.group(2) == "<") == (match.group(4) == ">"), text
            targets.append(match.group(3))
            outside.append(match.group(0))
            index = match.end()
        else:
            outside.append(char)
            index += 1
    return targets, "".join(outside)


def link_targets(text: str) -> list[str]:
    return read_markdown(text)[0]


def assert_no_live_discord_mention(text: str) -> None:
    assert not _BROADCAST.search(text), f"live @everyone/@here in {text!r}"
    for match in _DISCORD_MENTION.finditer(text):
        assert _escaped(text, match.start()), f"live {match.group(0)} in {text!r}"


def assert_discord_inert(messages: list[dc.DiscordMessage], urls: Iterable[str]) -> None:
    allowed = _sanitised(urls)
    assert messages
    for message in messages:
        markdown = [message.content]
        for embed in message.embeds:
            assert embed.url is None or embed.url in allowed, embed.url
            markdown += [embed.title or "", embed.description or ""]
            markdown += [f.name or "" for f in embed.fields] + [f.value or "" for f in embed.fields]
            plain = [embed.footer.text or "", embed.author.name or ""]
            for text in plain:
                assert_no_live_discord_mention(text)
        for text in markdown:
            assert_no_live_discord_mention(text)
            for target in link_targets(text):
                assert target in allowed, f"masked link to {target!r}: {text!r}"


def assert_markdown_inert(markdown: str, urls: Iterable[str]) -> None:
    allowed = _sanitised(urls)
    assert not _BROADCAST.search(markdown)
    targets, outside_code = read_markdown(markdown)
    assert "<" not in re.sub(r"\\.", "", outside_code, flags=re.S), markdown  # all `\<`
    for target in targets:
        assert target in allowed, f"link to {target!r}: {markdown!r}"


# ── the properties ──────────────────────────────────────────────────────────────────────────


@PROPERTY
@given(replies())
def test_no_reply_makes_a_live_mention_or_foreign_link_on_slack(reply: Reply) -> None:
    urls = _urls_of_reply(reply)
    assert_slack_inert(slack.reply_blocks(reply), urls)
    assert_slack_inert(slack.share_blocks(reply, SLACK_SHARER), urls, sharer=SLACK_SHARER)
    assert_slack_mrkdwn_inert(slack.reply_text(reply), set())  # the fallback has no links


@PROPERTY
@given(briefings())
def test_no_briefing_makes_a_live_mention_or_foreign_link_on_slack(briefing: Briefing) -> None:
    urls = _urls_of_briefing(briefing)
    assert_slack_inert(slack.briefing_parent_blocks(briefing), urls)
    assert_slack_inert(slack.reply_blocks(Reply(title="d", briefing=briefing)), urls)
    for section in briefing.sections:
        for item in section.items:
            assert_slack_inert(slack.briefing_item_blocks(item, section.heading), urls)
            assert_slack_mrkdwn_inert(slack.briefing_item_text(item), set())


@PROPERTY
@given(replies())
def test_no_reply_makes_a_live_mention_or_foreign_link_on_discord(reply: Reply) -> None:
    urls = _urls_of_reply(reply)
    assert_discord_inert(dc.reply_messages(reply), urls)


@PROPERTY
@given(briefings())
def test_no_briefing_makes_a_live_mention_or_foreign_link_on_discord(briefing: Briefing) -> None:
    urls = _urls_of_briefing(briefing)
    assert_discord_inert(dc.reply_messages(Reply(title="d", briefing=briefing)), urls)
    for section in briefing.sections:
        for item in section.items:
            embeds = dc.briefing_item_embeds(item, section.heading)
            assert_discord_inert([dc.DiscordMessage(embeds=tuple(embeds))], urls)


@PROPERTY
@given(replies(), briefings())
def test_markdown_renderings_link_only_to_articles(reply: Reply, briefing: Briefing) -> None:
    assert_markdown_inert(render_reply(reply), _urls_of_reply(reply))
    assert_markdown_inert(render_briefing(briefing), _urls_of_briefing(briefing))


# ── the cases that started it, and the checkers themselves ──────────────────────────────────


def _reply_citing(url: str) -> Reply:
    """An answer citing [1], and a DM bundle's shape: articles with their links."""
    article = ArticleRef(1, "記事", url, "Example", WHEN, snippet="s")
    return Reply(title="Q", text="量産を開始した[1]。", articles=(article,))


def test_a_link_feedparser_keeps_is_a_dead_end_on_every_platform() -> None:
    reply = _reply_citing(FEEDPARSER_LINK)
    encoded = "https://e.example/a%3E%3C!channel%3E%3Cx"
    slack_text = "\n".join(t for _, t in _slack_texts(slack.reply_blocks(reply)))
    assert f"<{encoded}|[1]>" in slack_text  # the citation still links to the article
    assert f"<{encoded}|記事>" in slack_text
    assert "<!channel>" not in slack_text
    [message] = dc.reply_messages(reply)
    assert f"[\\[1\\]](<{encoded}>)" in message.content
    assert f"[記事]({encoded})" in (message.embeds[0].description or "")
    assert f"[\\[1\\]]({encoded})" in render_reply(reply)
    item = BriefingItem(
        1,
        1,
        "t",
        Link("src", FEEDPARSER_LINK),
        2,
        "o",
        (),
        "w",
        (),
        "infra",
        None,
        False,
        related=(Link("rel", FEEDPARSER_LINK),),
    )
    item_text = "\n".join(t for _, t in _slack_texts(slack.briefing_item_blocks(item, "h")))
    assert f"<{encoded}|src>" in item_text and f"<{encoded}|rel>" in item_text
    assert "<!channel>" not in slack.briefing_item_text(item)
    assert dc.briefing_item_embeds(item, "h")[0].url == encoded


def test_slack_writes_ampersands_in_links_as_entities() -> None:
    """Slack decodes entities inside a link as well: a query's `&lt;` must reach the browser
    as `&lt;`, not as `<`."""
    reply = _reply_citing("https://e.example/?q=&lt;!here&gt;&b=1")
    text = next(t for _, t in _slack_texts(slack.reply_blocks(reply)) if "[1]" in t)
    assert "<https://e.example/?q=&amp;lt;!here&amp;gt;&amp;b=1|[1]>" in text


def test_a_bare_url_cannot_carry_a_masked_link_on_discord() -> None:
    hostile = "see https://a.example/x[label](https://evil.example/y) or https://a.example/x\\"
    escaped = dc.escape(hostile + "[y](https://evil.example)")
    assert link_targets(escaped) == []
    assert "https://a.example/x\\[label\\](https://evil.example/y)" in escaped
    assert dc.escape("`https://a.example/`code`") == "\\`https://a.example/\\`code\\`"


def test_broadcasts_and_nested_mentions_are_neutralised() -> None:
    assert neutralise_mentions("@everyone_x @here1") == "@\u200beveryone_x @\u200bhere1"
    assert "<@" not in neutralise_mentions("<@1<@2>>").replace("＜@", "")
    assert neutralise_mentions("<\u202e@123>") == "＜@123＞"  # bidi control dropped first
    # Lines are joined before mentions are looked for, so a mention broken over two is caught.
    assert dc.plain("<@123\n>") == "＜@123 ＞"
    assert slack.escape("x\n<!channel\n>") == "x\n&lt;!channel\n&gt;"


def test_the_checkers_catch_what_they_look_for() -> None:
    """Each check fails on the payload it exists to refuse (else a passing property proves
    nothing)."""
    cases: list[tuple[Any, ...]] = [
        (assert_slack_mrkdwn_inert, "hi <!channel>", set()),
        (assert_slack_mrkdwn_inert, "<https://evil.example|x>", {"https://ok.example"}),
        (assert_slack_mrkdwn_inert, "<https://ok.example", {"https://ok.example"}),
        (assert_no_live_discord_mention, "@everyone"),
        (assert_no_live_discord_mention, "\\\\<@123>"),
        (assert_markdown_inert, "x [a](https://evil.example) y", ["https://ok.example"]),
        (assert_markdown_inert, "\\\\<!channel>", []),
        (link_targets, "\\\\[a] b"),  # an escaped backslash, then a bracket of its own
        (link_targets, "`[a](https://evil.example)"),
    ]
    for check, *arguments in cases:
        try:
            check(*arguments)
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__}{tuple(arguments)!r} passed")
    assert link_targets("`[a](x)` \\[b](y) [c](<https://ok.example>)") == ["https://ok.example"]
    assert_no_live_discord_mention("\\<@123> @\u200beveryone")
