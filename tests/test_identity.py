"""Entry identity through the real poller against the feed stand-in on 127.0.0.1: within a
source an entry is its id, else its link with the fragment kept; the link without fragment and
tracking parameters only finds the same article in another source. Also: entries without a
link or a date, real publishers' fragment-identified feeds, and migrating a database made at
revision 0004 without losing an article."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import feedparser
import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.app import App, handler_context, open_app, summarize_pending
from handlers.filters import SearchRequest
from handlers.search import find
from jobs.poll import FULLTEXT_PER_POLL, PollConfig, PollReport, poll_sources
from storage.briefings import unsummarised_between
from storage.clock import ensure_utc
from storage.db import Database
from storage.migrate import alembic_config, upgrade_to_head
from storage.models import Article, Source, Summary
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import make_settings, realfeeds_dir
from tests.fakes.feed_server import FeedServer

# A fixed "now" for the poller, later than every date in the hand-made feeds; feed dates lie
# before it, so nothing here depends on the day the tests run.
T0 = datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
INTERVAL = timedelta(minutes=30)
XML = "application/xml"


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None = None
    guid: str | None = None
    date: datetime | None = None
    body: str = ""


def rss(items: list[Item], *, site: str = "https://site.example.jp/") -> bytes:
    """RSS 2.0 as a diary or news CMS writes it; missing fields are left out entirely."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>',
        f"<title>Feed</title><link>{escape(site)}</link><description>d</description>",
    ]
    for item in items:
        out.append(f"<item><title>{escape(item.title)}</title>")
        if item.link is not None:
            out.append(f"<link>{escape(item.link)}</link>")
        if item.guid is not None:
            out.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        if item.date is not None:
            out.append(f"<pubDate>{format_datetime(item.date)}</pubDate>")
        out.append(f"<description>{escape(item.body)}</description></item>")
    out.append("</channel></rss>")
    return "".join(out).encode()


def atom(items: list[Item], *, site: str) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">',
        f'<title>Notes</title><link rel="alternate" href="{escape(site)}"/>',
        "<id>urn:notes</id><updated>2024-05-30T00:00:00Z</updated>",
    ]
    for item in items:
        out.append(f"<entry><id>{escape(item.guid or '')}</id><title>{escape(item.title)}</title>")
        if item.link is not None:
            out.append(f'<link rel="alternate" href="{escape(item.link)}"/>')
        when = item.date or datetime(2024, 5, 30, tzinfo=UTC)
        out.append(f"<updated>{when.isoformat()}</updated>")
        out.append(f"<summary>{escape(item.body)}</summary></entry>")
    out.append("</feed>")
    return "".join(out).encode()


LONG = " ".join(["The model was trained on four trillion tokens and released openly."] * 5)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    database = {}
    if request.param == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    settings = make_settings(tmp_path, AINEWS_FETCH_TIMEOUT=2.0, **database)
    async with open_app(settings, fetching=True, clock=lambda: T0) as app:
        yield app


async def add_feeds(app: App, server: FeedServer, *paths: str) -> None:
    specs = [SourceSpec(url=server.url(p), name=p.strip("/"), category="research") for p in paths]
    await app.db.run(add_missing_sources, specs=specs)


async def poll(
    app: App,
    *,
    at: datetime = T0,
    per_poll: int = FULLTEXT_PER_POLL,
    force: bool = True,
) -> PollReport:
    """The real poller, with its clock and page budget passed in."""
    fetcher, parser = app.require_fetching()
    return await poll_sources(
        db=app.db,
        fetcher=fetcher,
        parser=parser,
        config=PollConfig(interval=INTERVAL, fulltext_per_poll=per_poll),
        force=force,
        clock=lambda: at,
    )


def stored(app: App) -> list[Article]:
    with Session(app.db.engine) as session:
        return list(session.exec(select(Article).order_by(col(Article.id))))


def by_source(app: App) -> dict[str, list[Article]]:
    with Session(app.db.engine) as session:
        names = {s.id: s.name for s in session.exec(select(Source))}
    grouped: dict[str, list[Article]] = {}
    for article in stored(app):
        grouped.setdefault(names[article.source_id], []).append(article)
    return grouped


async def search_urls(app: App, query: str) -> set[str]:
    page = await find(handler_context(app), SearchRequest(text=query, limit=50))
    return {hit.url for hit in page.hits}


async def test_fragment_identified_entries_are_each_stored_and_linked(
    app: App, feed_server: FeedServer
) -> None:
    """tDiary: one page per day, one `#fragment` per post, no guid. Every post is its own
    article, linked with its fragment; the shared day page is never fetched for a teaser."""
    day = feed_server.url("/diary/20240519.html")
    feed_server.add(
        "/diary/20240519.html", f"<html><body><p>{LONG}</p></body></html>", content_type="text/html"
    )
    posts = [
        Item(f"量子計算の日記 その{n}", link=f"{day}#p0{n}", body=f"短い本文{n}。")
        for n in (1, 2, 3)
    ]
    feed_server.add("/diary.rss", rss(posts), content_type=XML)
    await add_feeds(app, feed_server, "/diary.rss")

    report = await poll(app)

    articles = stored(app)
    assert report.new == 3
    assert [a.url for a in articles] == [f"{day}#p01", f"{day}#p02", f"{day}#p03"]
    assert all(a.canonical_url is None and a.guid is None for a in articles)
    assert all(a.page_status is None for a in articles)  # the day page is not this post's page
    assert feed_server.calls_to("/diary/20240519.html") == []
    assert (report.pages_fetched, report.pages_waiting) == (0, 0)

    await summarize_pending(app)
    assert await search_urls(app, "量子計算") == {f"{day}#p01", f"{day}#p02", f"{day}#p03"}

    posts.append(Item("量子計算の日記 その4", link=f"{day}#p04", body="短い本文4。"))
    feed_server.add("/diary.rss", rss(posts), content_type=XML)
    again = await poll(app, at=T0 + INTERVAL)
    assert again.new == 1
    assert len(stored(app)) == 4


async def test_an_entry_with_an_id_but_no_link_is_shown_with_the_sites_link(
    app: App, feed_server: FeedServer
) -> None:
    site = "https://notes.example.org/"
    notes = [
        Item("Kestrel notes: tokenizer", guid="tag:notes.example.org,2024:1", body="Short."),
        Item("Kestrel notes: evaluation", guid="tag:notes.example.org,2024:2", body="Short."),
    ]
    feed_server.add("/notes.atom", atom(notes, site=site), content_type="application/atom+xml")
    await add_feeds(app, feed_server, "/notes.atom")

    report = await poll(app)

    articles = stored(app)
    assert report.new == 2 and len(articles) == 2
    assert {a.url for a in articles} == {site}
    assert {a.guid for a in articles} == {n.guid for n in notes}
    # Not the article's own page: never fetched, never matched against another source.
    assert all(a.canonical_url is None and a.page_status is None for a in articles)
    await summarize_pending(app)
    assert await search_urls(app, "Kestrel") == {site}


async def test_the_same_article_in_two_sources_is_stored_once_and_stories_are_grouped(
    app: App, feed_server: FeedServer
) -> None:
    article = "https://news.example.com/2024/05/kestrel"
    feed_server.add(
        "/a.rss",
        rss(
            [
                Item("Kestrel 7B released", link=f"{article}?utm_source=rss", body=LONG),
                Item(
                    "Hoshizora starts mass production of HZ-2 inference chip",
                    link="https://a.example.com/hz2",
                    body=LONG,
                ),
            ]
        ),
        content_type=XML,
    )
    feed_server.add(
        "/b.atom",
        atom(
            [
                Item("Kestrel 7B is out", guid="urn:b:1", link=f"{article}#main", body=LONG),
                Item(
                    "Hoshizora begins mass production of its HZ-2 inference chip",
                    guid="urn:b:2",
                    link="https://b.example.com/hz-2",
                    body=LONG,
                ),
            ],
            site="https://b.example.com/",
        ),
        content_type="application/atom+xml",
    )
    await add_feeds(app, feed_server, "/a.rss", "/b.atom")

    report = await poll(app)

    articles = stored(app)
    kestrel = [a for a in articles if a.canonical_url == article]
    assert len(kestrel) == 1  # one of the two links, whichever source came first
    assert kestrel[0].url in {article, f"{article}#main"}
    assert report.new == len(articles) == 3
    hz2 = [a for a in articles if "hz" in a.url]
    assert len(hz2) == 2 and hz2[0].source_id != hz2[1].source_id
    assert hz2[0].story_id == hz2[1].story_id == min(a.id or 0 for a in hz2)


async def test_entries_of_one_feed_sharing_a_normalised_url_are_all_kept(
    app: App, feed_server: FeedServer
) -> None:
    """Three posts whose links differ only in tracking parameters: three articles. Their
    shared URL names a page (a live blog), so another source's link to it is not a copy."""
    page = "https://live.example.com/keynote"
    feed_server.add(
        "/live.rss",
        rss(
            [
                Item(
                    f"Keynote update {n}", link=f"{page}?utm_campaign=u{n}", guid=f"u{n}", body=LONG
                )
                for n in (1, 2, 3)
            ]
        ),
        content_type=XML,
    )
    feed_server.add(
        "/other.rss",
        rss([Item("The keynote, start to end", link=page, body=LONG)]),
        content_type=XML,
    )
    await add_feeds(app, feed_server, "/live.rss", "/other.rss")

    await poll(app)

    grouped = by_source(app)
    assert [a.guid for a in grouped["live.rss"]] == ["u1", "u2", "u3"]
    assert {a.url for a in grouped["live.rss"]} == {page}
    assert all(a.canonical_url is None for a in grouped["live.rss"])
    [other] = grouped["other.rss"]
    assert (other.url, other.canonical_url) == (page, page)


async def test_an_undated_entry_is_dated_when_first_seen(app: App, feed_server: FeedServer) -> None:
    dated = datetime(2024, 5, 31, 9, 0, tzinfo=UTC)
    items = [
        Item("Undated one", link="https://u.example.com/1", body=LONG),
        Item("Undated two", link="https://u.example.com/2", body=LONG),
        Item(
            "From the future",
            link="https://u.example.com/3",
            date=datetime(2999, 1, 1, tzinfo=UTC),
            body=LONG,
        ),
        Item("Dated", link="https://u.example.com/4", date=dated, body=LONG),
    ]
    feed_server.add("/undated.rss", rss(items), content_type=XML)
    await add_feeds(app, feed_server, "/undated.rss")

    await poll(app)

    first = {a.title: a for a in stored(app)}
    for title in ("Undated one", "Undated two", "From the future"):
        assert first[title].published_at is None
        assert ensure_utc(first[title].first_seen_at) == T0
    assert first["Dated"].published_at is not None
    assert ensure_utc(first["Dated"].published_at) == dated
    # The briefing's window reads the first-seen time of undated articles.
    around = {"start": T0 - timedelta(minutes=1), "end": T0 + timedelta(minutes=1)}
    assert await app.db.run(unsummarised_between, **around) == 3

    later = T0 + timedelta(hours=2)
    items.append(Item("Undated three", link="https://u.example.com/5", body=LONG))
    feed_server.add("/undated.rss", rss(items), content_type=XML)
    await poll(app, at=later)

    second = {a.title: a for a in stored(app)}
    assert ensure_utc(second["Undated one"].first_seen_at) == T0  # a known entry keeps its date
    assert second["Undated three"].published_at is None
    assert ensure_utc(second["Undated three"].first_seen_at) == later


FRAGMENT_FEEDS = [
    "ja_hatena_bookmark_atom03.xml",
    "ja_tdiary_ishinao_eucjp.rdf",
    "ja_tls_tdiary_rsscgi_eucjp.rdf",
    "ja_hatena_diary_sample.rdf",
    "en_scriptingnews_titleless.rss",
]


def independent_count(data: bytes) -> tuple[int, int]:
    """Distinct entries as the issue counts them (its id, else its link), straight from
    feedparser; and how many distinct links without fragment they have."""
    parsed = feedparser.parse(data)
    keys = {e.get("id") or e.get("link") for e in parsed.entries} - {None, ""}
    pages = {str(e.get("link", "")).partition("#")[0] for e in parsed.entries}
    return len(keys), len(pages)


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
async def test_real_fragment_identified_feeds_keep_every_entry(
    app: App, feed_server: FeedServer
) -> None:
    """Real Hatena, tDiary and scripting.com feeds, byte for byte: every distinct entry is
    stored (before: 15 Hatena bookmarks became 2, and 34 tDiary posts 2)."""
    corpus = realfeeds_dir()
    manifest = {r["file"]: r for r in json.loads((corpus / "manifest.json").read_text())}
    expected: dict[str, int] = {}
    for name in FRAGMENT_FEEDS:
        data = (corpus / name).read_bytes()
        entries, pages = independent_count(data)
        assert pages < entries, name  # the feed really shares page URLs between entries
        expected[name] = entries
        feed_server.add(f"/{name}", data, content_type=XML)
    await add_feeds(app, feed_server, *(f"/{n}" for n in FRAGMENT_FEEDS))

    # No page budget: the entries' pages are on the publishers' hosts, beyond loopback.
    report = await poll(app, per_poll=0)

    assert report.failed == 0, report.errors
    grouped = by_source(app)
    got = {name: len(grouped.get(name, [])) for name in FRAGMENT_FEEDS}
    assert got == expected
    assert expected["ja_hatena_bookmark_atom03.xml"] == 15
    assert expected["ja_tls_tdiary_rsscgi_eucjp.rdf"] == 34
    for name in FRAGMENT_FEEDS:
        urls = [a.url for a in grouped[name]]
        assert len(set(urls)) == len(urls), name  # each linked to its own fragment
        assert manifest[name]["feedparser_entries"] >= len(urls)
    assert all(a.page_status is None for a in stored(app))  # nothing left waiting at budget 0
    assert report.new == sum(expected.values())


# -- migrating a database made at revision 0004 ---------------------------------------------


def _database_at_0004(url: str) -> Database:
    db = Database(url)
    command.upgrade(alembic_config(db.engine), "0004")
    return db


LEGACY_DAY = "/legacy/20060819"


def _legacy_rows(db: Database, feed_url: str, page: str) -> dict[str, int]:
    """Rows as the 0004 poller stored them: normalised unique URLs without fragments (the
    tDiary day page merged into one article), summaries, a search-index row."""
    now = "2026-11-20 00:00:00"
    ids: dict[str, int] = {}
    with db.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO sources (name, url, category, language, enabled, trusted, "
                "error_count, created_at) VALUES ('legacy', :url, 'research', 'ja', true, true, "
                "0, :now)"
            ),
            {"url": feed_url, "now": now},
        )
        source_id = c.execute(text("SELECT id FROM sources")).scalar_one()
        rows = {
            "guid": ("https://hatena.example.jp/b/20060819", "tag:b-1", "ブックマーク一"),
            "plain": ("https://plain.example.com/post", None, "普通の記事"),
            "merged": (page, None, "日記の一つ目"),
        }
        for name, (url, guid, title) in rows.items():
            ids[name] = c.execute(
                text(
                    "INSERT INTO articles (source_id, url, guid, title, language, first_seen_at, "
                    "body_text, content_hash) VALUES (:s, :url, :guid, :title, 'ja', :now, "
                    "'本文', :h) RETURNING id"
                ),
                {"s": source_id, "url": url, "guid": guid, "title": title, "now": now, "h": name},
            ).scalar_one()
        for name in ("guid", "merged"):
            c.execute(
                text(
                    "INSERT INTO summaries (article_id, title_ja, overview, points, why_important,"
                    " keywords, category, importance, method, model, prompt_version, "
                    "content_hash, prompt_tokens, completion_tokens, created_at) VALUES (:a, 't',"
                    " 'o', '[]', 'w', '[]', 'research', 2, 'extractive', 'x', 'v1', :h, 0, 0, "
                    ":now)"
                ),
                {"a": ids[name], "h": name, "now": now},
            )
        if db.backend == "sqlite":
            c.execute(
                text("INSERT INTO article_fts (rowid, title, body) VALUES (:a, 'legacy', 'x')"),
                {"a": ids["plain"]},
            )
    return ids


def _count(db: Database, sql: str) -> int:
    with db.engine.connect() as c:
        return int(c.execute(text(sql)).scalar_one())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'legacy.sqlite3'}"


async def test_a_database_at_0004_migrates_without_losing_an_article(
    database_url: str, tmp_path: Path, feed_server: FeedServer
) -> None:
    page = feed_server.url(LEGACY_DAY)
    feed_url = feed_server.url("/legacy.rss")
    db = _database_at_0004(database_url)
    try:
        ids = _legacy_rows(db, feed_url, page)
        upgrade_to_head(db.engine)
        with Session(db.engine) as session:
            after = {a.id: a for a in session.exec(select(Article))}
            summaries = {s.article_id for s in session.exec(select(Summary))}
        assert set(after) == set(ids.values())
        assert summaries == {ids["guid"], ids["merged"]}  # the SQLite rebuild cascaded nothing
        assert after[ids["guid"]].entry_key == "id:tag:b-1"
        assert after[ids["plain"]].entry_key == "link:https://plain.example.com/post"
        assert after[ids["plain"]].canonical_url == "https://plain.example.com/post"
        assert all(a.page_status is None for a in after.values())
        if db.backend == "sqlite":
            assert _count(db, "SELECT COUNT(*) FROM article_fts") == 1
            assert (
                _count(db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'article_fts_delete'")
                == 1
            )
            with db.engine.connect() as c:
                assert c.execute(text("PRAGMA foreign_key_check")).all() == []
    finally:
        db.dispose()

    # The same diary polled by the new poller: the merged row becomes its post, with the
    # fragment; the other posts join it; the bookmark gets its fragment; nothing twice.
    posts = [
        Item("日記の一つ目", link=f"{page}#p01", body="短い。"),
        Item("日記の二つ目", link=f"{page}#p02", body="短い。"),
        Item("日記の三つ目", link=f"{page}#p03", body="短い。"),
        Item("ブックマーク一", guid="tag:b-1", link="https://hatena.example.jp/b/20060819#2575911"),
        Item("ブックマーク二", guid="tag:b-2", link="https://hatena.example.jp/b/20060819#2575912"),
    ]
    feed_server.add("/legacy.rss", rss(posts), content_type=XML)
    settings = make_settings(tmp_path, DATABASE_URL=database_url)
    async with open_app(settings, fetching=True, clock=lambda: T0) as app:
        report = await poll(app)
        articles = {a.id: a for a in stored(app)}
    assert report.new == 3
    assert len(articles) == 6
    assert articles[ids["merged"]].url == f"{page}#p01"
    assert articles[ids["merged"]].canonical_url is None
    assert articles[ids["guid"]].url == "https://hatena.example.jp/b/20060819#2575911"
    assert sorted(a.url for a in articles.values() if a.url.startswith(page)) == [
        f"{page}#p01", f"{page}#p02", f"{page}#p03"
    ]  # fmt: skip
    assert len({a.entry_key for a in articles.values()}) == 6
