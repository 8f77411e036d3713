"""The `ainews` command as an operator runs it: a real process, real environment variables."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.render.markdown import text
from tests.conftest import TEST_FEEDS
from tests.fakes.feed_server import FeedServer

AINEWS = str(Path(sys.executable).with_name("ainews"))


@dataclass
class Result:
    code: int
    out: str
    err: str


async def ainews(tmp_path: Path, *args: str, **env: str) -> Result:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "AINEWS_VAR_DIR": str(tmp_path / "var"),
        "AINEWS_SOURCES_FILE": str(tmp_path / "none.toml"),
        "TIKTOKEN_CACHE_DIR": str(tmp_path.parent / "tiktoken-cache"),
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        AINEWS,
        *args,
        cwd=tmp_path,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_poll_json_counts_then_not_modified(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.add("/ja.xml", (TEST_FEEDS / "rss2_ja.xml").read_bytes())
    feed_server.add("/arxiv.rdf", (TEST_FEEDS / "rdf_arxiv.xml").read_bytes())
    feed_server.status("/gone.xml", 410)
    for path, category in (
        ("/ja.xml", "japan"),
        ("/arxiv.rdf", "research"),
        ("/gone.xml", "policy"),
    ):
        added = await ainews(
            tmp_path, "sources", "add", feed_server.url(path), "--category", category
        )
        assert added.code == 0, added.err

    first = await ainews(tmp_path, "poll", "--json")
    second = await ainews(tmp_path, "poll", "--json", "--force")

    assert first.code == 0, first.err
    report = json.loads(first.out)
    assert set(report) == {
        "sources",
        "new",
        "not_modified",
        "failed",
        "errors",
        "pages_fetched",
        "pages_failed",
        "pages_waiting",
        "disabled",
        "recovered",
        "seconds",
    }
    assert set(report["seconds"]) == {"feeds", "stories", "pages"}
    assert all(value >= 0 for value in report["seconds"].values())
    assert (report["sources"], report["new"], report["not_modified"], report["failed"]) == (
        3,
        5,
        0,
        1,
    )
    assert report["errors"][0]["error"] == "HTTP 410 Gone"
    again = json.loads(second.out)
    assert (again["new"], again["not_modified"], again["failed"]) == (0, 2, 1)

    listed = await ainews(tmp_path, "sources", "list", "--json")
    sources = {s["url"]: s for s in json.loads(listed.out)}
    assert sources[feed_server.url("/gone.xml")]["error_count"] == 2
    assert sources[feed_server.url("/ja.xml")]["etag"]


async def test_bad_configuration_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    for variable, value in (
        ("AINEWS_BRIEFING_TIME", "25:00"),
        ("AINEWS_TIMEZONE", "Mars/Olympus"),
        ("AINEWS_BRIEFING_SIZE", "many"),
        ("DATABASE_URL", "mysql://nope"),
    ):
        result = await ainews(tmp_path, "poll", **{variable: value})
        assert result.code == 2
        assert result.err.strip().count("\n") == 0, result.err
        assert result.err.startswith(f"configuration error: {variable}:"), result.err
        assert "Traceback" not in result.err


async def test_sources_opml_round_trip_and_remove(tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><head/><body>
        <outline text="規制・政策・倫理">
          <outline type="rss" text="Policy Wire" xmlUrl="https://policy.example.org/rss"/>
        </outline>
        <outline type="rss" text="Chips" xmlUrl="https://chips.example.com/feed" category="infra"/>
        </body></opml>""",
        encoding="utf-8",
    )
    imported = await ainews(tmp_path, "sources", "import", str(opml))
    assert imported.code == 0, imported.err
    assert "imported 2 new sources" in imported.err
    exported = await ainews(tmp_path, "sources", "export")
    assert 'xmlUrl="https://policy.example.org/rss"' in exported.out
    assert 'category="policy"' in exported.out and 'category="infra"' in exported.out

    again = await ainews(tmp_path, "sources", "import", str(opml))
    assert "imported 0 new sources (2 already present)" in again.err
    removed = await ainews(tmp_path, "sources", "remove", "https://chips.example.com/feed")
    assert removed.code == 0
    missing = await ainews(tmp_path, "sources", "remove", "https://chips.example.com/feed")
    assert missing.code == 1 and "no source matches" in missing.err
    listed = json.loads((await ainews(tmp_path, "sources", "list", "--json")).out)
    assert [s["url"] for s in listed] == ["https://policy.example.org/rss"]


async def test_unknown_category_is_refused_with_the_choices(tmp_path: Path) -> None:
    result = await ainews(tmp_path, "sources", "add", "https://x.example/rss", "--category", "xyz")
    assert result.code == 2
    assert "unknown category 'xyz'" in result.err and "research" in result.err


async def test_demo_prints_a_briefing_and_digest_rerenders_it(tmp_path: Path) -> None:
    demo = await ainews(tmp_path, "demo")
    assert demo.code == 0, demo.err
    assert demo.out.startswith("# AI News - 2026-11-23\n")
    assert "polled 7 sources" in demo.err
    database = tmp_path / "var" / "demo" / "ainews-demo.sqlite3"
    digest = await ainews(
        tmp_path,
        "digest",
        "--date",
        "2026-11-23",
        "--format",
        "json",
        DATABASE_URL=f"sqlite:///{database}",
    )
    assert digest.code == 0, digest.err
    data = json.loads(digest.out)
    assert data["day"] == "2026-11-23"
    titles = [item["title"] for section in data["sections"] for item in section["items"]]
    assert len(titles) == 20
    assert all(f"{n}. {text(t)}" in demo.out for n, t in enumerate(titles, start=1))


async def test_sources_add_refuses_a_url_that_can_never_be_fetched(tmp_path: Path) -> None:
    for url, reason in (
        ("not-a-url", "only http:// and https:// URLs can be sources"),
        ("ftp://example.com/feed", "only http:// and https:// URLs can be sources"),
        ("http:///feed.xml", "the URL has no host"),
        ("https://feeds.example.org/a feed.xml", "the URL contains a space"),
    ):
        result = await ainews(tmp_path, "sources", "add", url)
        assert result.code == 2, result.err
        assert result.err.startswith(f"error: cannot add {url!r}: {reason}"), result.err
        assert result.err.strip().count("\n") == 0 and "Traceback" not in result.err
    listed = json.loads((await ainews(tmp_path, "sources", "list", "--json")).out)
    assert listed == []
    trusted = await ainews(tmp_path, "sources", "add", "http://127.0.0.1:9/feed.xml")
    assert trusted.code == 0 and "added" in trusted.err  # the operator may use loopback


async def test_an_opml_file_with_a_bad_feed_imports_nothing(tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><head/><body>
        <outline type="rss" text="Good" xmlUrl="https://good.example.org/rss"/>
        <outline type="rss" text="Old" xmlUrl="gopher://old.example.org/feed"/>
        </body></opml>""",
        encoding="utf-8",
    )
    result = await ainews(tmp_path, "sources", "import", str(opml))
    assert result.code == 1
    assert "cannot add 'gopher://old.example.org/feed'" in result.err
    assert "nothing imported: 1 of 2 feeds refused" in result.err
    assert json.loads((await ainews(tmp_path, "sources", "list", "--json")).out) == []


async def test_an_unusable_database_is_one_line_naming_it(tmp_path: Path) -> None:
    """A server that is not there, and an SQLite path that cannot be a file: the operator reads
    which variable, what was tried, and the driver's reason, never a traceback or a password."""
    folder = tmp_path / "a-folder"
    folder.mkdir()
    cases = (
        (
            "postgresql://postgres:s3cret@127.0.0.1:1/x",
            "at 127.0.0.1:1/x (postgresql://postgres:***@127.0.0.1:1/x): ",
            "Connection refused",
        ),
        (f"sqlite:///{folder}", f"at file {folder} (sqlite:///{folder}): ", "unable to open"),
        (
            f"sqlite:///{tmp_path / 'none.toml' / 'deeper' / 'x.sqlite3'}",
            "at file ",
            "Not a directory",
        ),
    )
    (tmp_path / "none.toml").write_text("", encoding="utf-8")  # a file where a folder must be
    for url, where, reason in cases:
        result = await ainews(tmp_path, "sources", "list", DATABASE_URL=url)
        assert result.code == 1, result.err
        assert result.err.strip().count("\n") == 0, result.err
        assert result.err.startswith("error: DATABASE_URL: cannot use the database " + where)
        assert reason in result.err and "Traceback" not in result.err
        assert "s3cret" not in result.err
