"""The poll job against a real local HTTP server: storage, conditional GET, faults, dedup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot.app import App, open_app, poll_once, summarize_pending
from storage.articles import count_unsummarised
from storage.clock import utcnow
from storage.models import Article, Source, Summary
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import TEST_FEEDS, make_settings
from tests.fakes.feed_server import FeedServer, Response

KESTREL = "https://wire.example.com/2026/11/22/kestrel"


def feed_bytes(name: str, server: FeedServer | None = None) -> bytes:
    data = (TEST_FEEDS / name).read_bytes()
    if server is not None:
        data = data.replace(KESTREL.encode(), server.url("/kestrel").encode())
    return data


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    """Every poll test runs on both databases."""
    database = {}
    if request.param == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    settings = make_settings(
        tmp_path, AINEWS_MAX_FEED_BYTES=1_000_000, AINEWS_FETCH_TIMEOUT=1.0, **database
    )
    async with open_app(settings, fetching=True) as app:
        yield app


async def add_feeds(app: App, server: FeedServer, *paths: str) -> None:
    specs = [SourceSpec(url=server.url(p), name=p.strip("/"), category="research") for p in paths]
    await app.db.run(add_missing_sources, specs=specs)


def articles(app: App) -> list[Article]:
    with Session(app.db.engine) as session:
        return list(session.exec(select(Article).order_by(col(Article.id))))


def sources(app: App) -> dict[str, Source]:
    with Session(app.db.engine) as session:
        return {s.name: s for s in session.exec(select(Source))}


async def test_first_poll_stores_everything_once_and_second_is_conditional(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    feed_server.add("/arxiv.rdf", feed_bytes("rdf_arxiv.xml"), content_type="application/rdf+xml")
    await add_feeds(app, feed_server, "/ja.xml", "/arxiv.rdf")

    first = await poll_once(app)

    assert (first.sources, first.new, first.failed, first.not_modified) == (2, 5, 0, 0)
    stored = articles(app)
    assert len(stored) == 5
    assert len({a.url for a in stored}) == 5
    guideline = next(a for a in stored if "guideline" in a.url)
    assert guideline.url == "https://ja.example.jp/news/2026/11/23/guideline"  # utm_* dropped
    assert guideline.guid == "ja-example-0001"
    assert guideline.language == "ja"
    assert "<p>" not in guideline.body_text and "意見募集は12月20日まで" in guideline.body_text
    assert guideline.published_at is not None and guideline.published_at.utcoffset() == timedelta(0)
    assert guideline.published_at.hour == 22  # 07:10 +0900 is 22:10 UTC the day before

    second = await poll_once(app, force=True)

    assert (second.new, second.not_modified, second.failed) == (0, 2, 0)
    assert len(articles(app)) == 5
    last_call = feed_server.calls_to("/ja.xml")[-1]
    assert last_call.headers.get("if-none-match", "").startswith('"')
    assert "if-modified-since" in last_call.headers


async def test_second_poll_skips_sources_not_yet_due(app: App, feed_server: FeedServer) -> None:
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    await add_feeds(app, feed_server, "/ja.xml")
    await poll_once(app)
    again = await poll_once(app)
    assert again.sources == 0
    assert len(feed_server.calls_to("/ja.xml")) == 1


async def test_each_fault_fails_alone_and_keeps_what_is_stored(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/good.xml", feed_bytes("rss2_ja.xml"))
    await add_feeds(app, feed_server, "/good.xml")
    await poll_once(app)
    before = {a.url for a in articles(app)}
    assert len(before) == 3

    feed_server.add("/atom.xml", feed_bytes("atom_en.xml", feed_server))
    feed_server.slow("/slow.xml", feed_bytes("rss2_ja.xml"), delay=5)
    feed_server.status("/500.xml", 500)
    feed_server.status("/429.xml", 429, headers={"Retry-After": "7200"})
    feed_server.redirect_loop("/loop.xml")
    feed_server.add("/malformed.xml", feed_bytes("malformed.xml"))
    feed_server.add("/page.html", feed_bytes("html_page.html"), content_type="text/html")
    feed_server.add("/empty.xml", b"")
    feed_server.huge("/huge.xml", 20 * 1024 * 1024)
    sjis = feed_bytes("rss2_ja.xml").decode().replace("UTF-8", "Shift_JIS")
    sjis = sjis.replace("ja.example.jp", "sjis.example.jp").encode("shift_jis", "replace")
    feed_server.add("/sjis.xml", sjis, content_type="application/rss+xml; charset=utf-8")
    faulty = {
        "slow.xml": "timed out",
        "500.xml": "HTTP 500",
        "429.xml": "HTTP 429",
        "loop.xml": "too many redirects",
        "malformed.xml": "malformed feed",
        "page.html": "HTML page",
        "empty.xml": "empty response",
        "huge.xml": "larger than",
    }
    await add_feeds(app, feed_server, "/atom.xml", "/sjis.xml", *(f"/{n}" for n in faulty))

    report = await poll_once(app)

    assert report.failed == len(faulty)
    assert {e["source"] for e in report.errors} == set(faulty)
    state = sources(app)
    for name, expected in faulty.items():
        assert expected in (state[name].last_error or ""), (name, state[name].last_error)
        assert state[name].error_count == 1
    # Retry-After is honoured: no new attempt before the server said so.
    assert state["429.xml"].next_poll_at is not None
    assert state["429.xml"].next_poll_at >= utcnow() + timedelta(seconds=7000)
    # Every other source was polled; nothing stored earlier was lost.
    assert state["atom.xml"].last_error is None and state["sjis.xml"].last_error is None
    urls = {a.url for a in articles(app)}
    assert before <= urls
    assert "https://sjis.example.jp/news/2026/11/23/hz2" in urls
    sjis_titles = {a.title for a in articles(app) if "sjis.example.jp" in a.url}
    assert "Hoshizora AI、推論専用チップ「HZ-2」の量産を開始" in sjis_titles


async def test_backoff_grows_and_success_resets_it(app: App, feed_server: FeedServer) -> None:
    feed_server.sequence(
        "/flaky.xml",
        [Response(500), Response(500), Response(200, feed_bytes("rss2_ja.xml"))],
    )
    await add_feeds(app, feed_server, "/flaky.xml")
    delays = []
    for _ in range(2):
        await poll_once(app, force=True)
        source = sources(app)["flaky.xml"]
        assert source.next_poll_at is not None and source.last_polled_at is not None
        delays.append(source.next_poll_at - source.last_polled_at)
    assert delays[1] > delays[0] > timedelta(minutes=30)
    await poll_once(app, force=True)
    source = sources(app)["flaky.xml"]
    assert (source.error_count, source.last_error) == (0, None)
    assert len(articles(app)) == 3


async def test_permanent_redirect_updates_the_stored_url(app: App, feed_server: FeedServer) -> None:
    feed_server.add("/new-home.xml", feed_bytes("rss2_ja.xml"))
    feed_server.redirect("/old.xml", "/new-home.xml", permanent=True)
    feed_server.add("/elsewhere.xml", feed_bytes("rdf_arxiv.xml"))
    feed_server.redirect("/temp.xml", "/elsewhere.xml", permanent=False)
    await add_feeds(app, feed_server, "/old.xml", "/temp.xml")

    report = await poll_once(app)

    assert report.new == 5
    state = sources(app)
    assert state["old.xml"].url == feed_server.url("/new-home.xml")
    assert state["temp.xml"].url == feed_server.url("/temp.xml")


async def test_dedup_by_url_and_near_duplicate_titles_across_feeds(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    feed_server.add("/atom.xml", feed_bytes("atom_en.xml", feed_server))
    feed_server.add("/other.xml", feed_bytes("rss2_other.xml"))
    feed_server.add("/kestrel", feed_bytes("kestrel_page.html"), content_type="text/html")
    await add_feeds(app, feed_server, "/ja.xml", "/atom.xml", "/other.xml")

    report = await poll_once(app)

    stored = articles(app)
    # The guideline link appears in two feeds (once with tracking parameters): stored once.
    assert sum("guideline" in a.url for a in stored) == 1
    assert report.new == len(stored) == 8
    by_url = {a.url.removeprefix("https://"): a for a in stored}
    ja_pair = [
        by_url["ja.example.jp/news/2026/11/23/hz2"],
        by_url["other.example.jp/2026/11/23/hoshizora-hz2"],
    ]
    en_pair = [
        by_url["wire.example.com/2026/11/22/hoshizora-hz2"],
        by_url["other.example.jp/en/2026/11/23/hoshizora-hz2"],
    ]
    for pair in (ja_pair, en_pair):  # one story, named after its first stored article
        assert pair[0].story_id == pair[1].story_id == min(a.id or 0 for a in pair)
    assert ja_pair[0].story_id != en_pair[0].story_id
    grouped = {a.id for a in ja_pair + en_pair}
    assert all(a.story_id == a.id for a in stored if a.id not in grouped)


async def test_teaser_entries_get_the_article_text_from_their_page(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/atom.xml", feed_bytes("atom_en.xml", feed_server))
    feed_server.add("/kestrel", feed_bytes("kestrel_page.html"), content_type="text/html")
    await add_feeds(app, feed_server, "/atom.xml")

    report = await poll_once(app)

    assert (report.pages_fetched, report.pages_failed, report.pages_waiting) == (1, 0, 0)
    kestrel = next(a for a in articles(app) if a.url.endswith("/kestrel"))
    assert kestrel.page_status == "fetched"
    assert "7 billion parameters" in kestrel.body_text
    assert "4 trillion tokens" in kestrel.body_text
    assert "Advertisement" not in kestrel.body_text and "Privacy" not in kestrel.body_text
    assert len(feed_server.calls_to("/kestrel")) == 1


async def test_a_slow_source_does_not_hold_up_the_others(app: App, feed_server: FeedServer) -> None:
    feed_server.slow("/slow.xml", feed_bytes("rss2_ja.xml"), delay=5)
    feed_server.add("/fast.xml", feed_bytes("rdf_arxiv.xml"))
    await add_feeds(app, feed_server, "/slow.xml", "/fast.xml")
    report = await poll_once(app)
    fast_call = feed_server.calls_to("/fast.xml")[0]
    slow_call = feed_server.calls_to("/slow.xml")[0]
    assert report.new == 2 and report.failed == 1
    assert abs(fast_call.at - slow_call.at) < 0.5  # fetched concurrently, not one after another
    # The feeds phase lasted until the slow source gave up (its fetch timeout, 1 s here), and
    # the report says so: the phase an operator looks at when polls run long.
    assert report.seconds["feeds"] >= 1.0
    assert report.seconds["feeds"] > report.seconds["stories"]


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
async def test_sources_added_from_chat_cannot_reach_private_addresses(
    app: App, feed_server: FeedServer
) -> None:
    """An untrusted source on 127.0.0.1 is refused, by name (resolver) and by IP literal;
    the operator's own source on the same server still works."""
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    localhost_url = feed_server.url("/ja.xml").replace("127.0.0.1", "localhost")
    await app.db.run(
        add_missing_sources,
        specs=[SourceSpec(url=feed_server.url("/ja.xml"), name="ip", category="japan")],
        trusted=False,
    )
    await app.db.run(
        add_missing_sources,
        specs=[SourceSpec(url=localhost_url, name="name", category="japan")],
        trusted=False,
    )
    await add_feeds(app, feed_server, "/ja.xml?operator=1")

    report = await poll_once(app)

    errors = {e["source"]: e["error"] for e in report.errors}
    assert set(errors) == {"ip", "name"}
    assert all("is not a public address" in e for e in errors.values())
    assert report.new == 3  # the operator's source
    assert len(feed_server.calls_to("/ja.xml")) == 1


async def test_operator_may_allow_private_sources(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    settings = make_settings(tmp_path, AINEWS_ALLOW_PRIVATE_SOURCES="true")
    async with open_app(settings, fetching=True) as app:
        await app.db.run(
            add_missing_sources,
            specs=[SourceSpec(url=feed_server.url("/ja.xml"), name="chat", category="japan")],
            trusted=False,
        )
        report = await poll_once(app)
    assert (report.new, report.failed) == (3, 0)


BACKLOG = 730
EPISODE_DAY = datetime(2024, 1, 1, tzinfo=UTC)


def podcast(server: FeedServer, count: int) -> bytes:
    """A podcast feed of `count` episodes, newest first, one a day, each with a teaser only;
    every episode's page is served with its full show notes."""
    items = []
    for n in range(count, 0, -1):
        page = f"/episodes/{n}"
        notes = " ".join(
            f"In episode {n} the hosts discuss model release number {k} at length."
            for k in range(8)
        )
        server.add(
            page,
            f"<html><body><article><h1>Episode {n}</h1><p>{notes}</p></article></body></html>",
            content_type="text/html",
        )
        when = format_datetime(EPISODE_DAY + timedelta(days=n))
        items.append(
            f"<item><title>Episode {n}</title><link>{server.url(page)}</link>"
            f"<guid>episode-{n}</guid><pubDate>{when}</pubDate>"
            f"<description>Episode {n}, listen now…</description></item>"
        )
    head = "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Cast</title>"
    return (head + "".join(items) + "</channel></rss>").encode()


def episode_pages(server: FeedServer) -> list[int]:
    return [int(c.path.rsplit("/", 1)[1]) for c in server.calls if c.path.startswith("/episodes/")]


def summarised_ids(app: App) -> set[int]:
    with Session(app.db.engine) as session:
        return set(session.exec(select(Summary.article_id)))


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
async def test_a_730_episode_backlog_is_fetched_20_pages_a_poll_newest_first(
    app: App, feed_server: FeedServer
) -> None:
    """The first poll stores all 730 episodes but fetches only the 20 newest pages; each later
    poll the next 20, until the backlog is done. A waiting episode is not summarised."""
    feed_server.add("/cast.rss", podcast(feed_server, BACKLOG))
    await add_feeds(app, feed_server, "/cast.rss")

    first = await poll_once(app)

    assert first.new == BACKLOG
    assert (first.pages_fetched, first.pages_failed, first.pages_waiting) == (20, 0, 710)
    assert sorted(episode_pages(feed_server)) == list(range(BACKLOG - 19, BACKLOG + 1))
    assert await app.db.run(count_unsummarised) == 20
    summary = await summarize_pending(app)
    assert summary.total == 20
    done = {a.id for a in articles(app) if a.page_status == "fetched"}
    assert summarised_ids(app) == done and len(done) == 20
    assert all("release number 7" in a.body_text for a in articles(app) if a.id in done)

    polls = 1
    while True:
        feed_server.clear_calls()
        report = await poll_once(app, force=True)
        polls += 1
        fetched = episode_pages(feed_server)
        newest = BACKLOG - 20 * (polls - 1)
        assert sorted(fetched) == list(range(max(newest - 19, 1), newest + 1)), polls
        assert report.not_modified == 1 and report.pages_fetched == len(fetched) <= 20
        assert report.pages_waiting == max(BACKLOG - 20 * polls, 0)
        if report.pages_waiting == 0:
            break
    assert polls == 37  # ⌈730 / 20⌉
    assert {a.page_status for a in articles(app)} == {"fetched"}
    await summarize_pending(app)
    assert len(summarised_ids(app)) == BACKLOG


async def test_article_pages_wait_until_every_feed_is_polled(
    app: App, feed_server: FeedServer
) -> None:
    """A page fetch never delays another source's feed: pages are requested only once the
    slowest feed of the poll has answered."""
    feed_server.add("/cast.rss", podcast(feed_server, 3))
    feed_server.slow("/slow.xml", feed_bytes("rdf_arxiv.xml"), delay=0.5)
    await add_feeds(app, feed_server, "/cast.rss", "/slow.xml")

    report = await poll_once(app)

    assert report.failed == 0 and report.pages_fetched == 3
    slow_answered = feed_server.calls_to("/slow.xml")[0].at + 0.5
    first_page = min(c.at for c in feed_server.calls if c.path.startswith("/episodes/"))
    assert first_page >= slow_answered - 0.05


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
async def test_a_failed_page_keeps_the_teaser_and_lets_the_article_be_summarised(
    app: App, feed_server: FeedServer
) -> None:
    feed_server.add("/cast.rss", podcast(feed_server, 2))
    feed_server.status("/episodes/2", 500)
    await add_feeds(app, feed_server, "/cast.rss")

    report = await poll_once(app)

    assert (report.pages_fetched, report.pages_failed, report.pages_waiting) == (1, 1, 0)
    states = {a.title: (a.page_status, a.body_text) for a in articles(app)}
    assert states["Episode 2"] == ("failed", "Episode 2, listen now…")
    assert states["Episode 1"][0] == "fetched"
    assert (await summarize_pending(app)).total == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_stopped_poll_records_what_it_polled_and_gives_back_the_rest(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, feed_server: FeedServer
) -> None:
    """SIGTERM past the grace period cancels a poll mid-way: the sources already polled keep
    their outcome, and the claim of the one still in flight is released at once, so another
    process (or the next start) polls it without waiting for the lease to run out."""
    import asyncio

    database = {}
    if backend == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    settings = make_settings(tmp_path, AINEWS_FETCH_TIMEOUT=60.0, **database)
    feed_server.add("/ja.xml", feed_bytes("rss2_ja.xml"))
    feed_server.slow("/hangs.xml", feed_bytes("rss2_ja.xml"), delay=60)
    async with open_app(settings, fetching=True) as app:
        await add_feeds(app, feed_server, "/ja.xml", "/hangs.xml")
        poll = asyncio.create_task(poll_once(app))
        async with asyncio.timeout(30):  # the fast feed stored, the slow one asked for
            while not articles(app) or all(c.path != "/hangs.xml" for c in feed_server.calls):
                await asyncio.sleep(0.02)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        state = sources(app)
    # The fast feed's outcome is recorded if it was in hand (else its claim is given back).
    assert all(s.claimed_by is None and s.claimed_until is None for s in state.values())
    assert state["hangs.xml"].last_polled_at is None  # never answered
    assert "/hangs.xml" in feed_server.disconnects  # the request was abandoned, not finished
