"""Retention on both databases: bodies emptied after AINEWS_RETENTION_DAYS (the article stays,
found by its summary), articles deleted with their summaries after
AINEWS_SUMMARY_RETENTION_DAYS; ages from the clock passed in."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import App, open_app
from jobs.retention import RetentionConfig, apply_retention
from storage.articles import NewArticle, insert_new_articles
from storage.models import Article, Summary
from storage.search.query import SearchQuery, search
from storage.search.terms import parse_query_text
from storage.sources import SourceSpec, add_missing_sources
from storage.summaries import save_summary
from tests.conftest import make_settings

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
CONFIG = RetentionConfig(body_days=365, summary_days=1095)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    database = {}
    if request.param == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    async with open_app(make_settings(tmp_path, **database), clock=lambda: NOW) as app:
        yield app


async def store(app: App, name: str, age_days: int) -> int:
    """An article `age_days` old whose body alone says 'zebrafish', its summary 'ゼブラ'."""
    await app.db.run(
        add_missing_sources,
        specs=[SourceSpec(url="https://old.example/rss", name="Old", category="research")],
    )
    when = NOW - timedelta(days=age_days)
    [(_, article_id)] = await app.db.run(
        insert_new_articles,
        source_id=1,
        articles=[
            NewArticle(
                url=f"https://old.example/{name}", guid=name, title=f"Report {name}",
                language="en", published_at=when, body_text=f"The zebrafish study {name}.",
                content_hash=name, canonical_url=f"https://old.example/{name}",
            )
        ],
        first_seen_at=when,
    )  # fmt: skip
    await app.db.run(
        save_summary,
        summary=Summary(
            article_id=article_id, title_ja=f"ゼブラ研究 {name}", overview="ゼブラの研究。",
            points=["一", "二", "三"], why_important="重要。", keywords=["ゼブラ"],
            category="research", importance=2, method="extractive", model="x",
            prompt_version="1", content_hash=name,
        ),
    )  # fmt: skip
    return int(article_id)


async def found(app: App, words: str) -> set[int]:
    page = await app.db.run(
        search, query=SearchQuery(text=parse_query_text(words), limit=50), now=NOW
    )
    return {hit.article_id for hit in page.hits}


async def test_old_bodies_are_emptied_and_older_articles_deleted(app: App) -> None:
    fresh = await store(app, "fresh", 10)
    old = await store(app, "old", 400)
    ancient = await store(app, "ancient", 1200)
    assert await found(app, "zebrafish") == {fresh, old, ancient}

    pruned = await apply_retention(db=app.db, now=NOW, config=CONFIG)

    assert (pruned.bodies, pruned.articles) == (1, 1)
    with app.db.session() as session:
        bodies = {a.id: a.body_text for a in session.exec(select(Article))}
        summaries = {s.article_id for s in session.exec(select(Summary))}
    assert bodies == {fresh: "The zebrafish study fresh.", old: ""}
    assert summaries == {fresh, old}  # the ancient one went with its summary
    assert await found(app, "zebrafish") == {fresh}  # the emptied body is not matched
    assert await found(app, "ゼブラ") == {fresh, old}  # but its summary still is
    again = await apply_retention(db=app.db, now=NOW, config=CONFIG)
    assert (again.bodies, again.articles) == (0, 0)


def test_summaries_must_outlive_bodies(tmp_path: Path) -> None:
    result = subprocess.run(
        ["ainews", "retention"],
        env={
            "PATH": str(Path(__file__).resolve().parents[1] / ".venv" / "bin"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}",
            "AINEWS_RETENTION_DAYS": "400",
            "AINEWS_SUMMARY_RETENTION_DAYS": "300",
        },
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "AINEWS_SUMMARY_RETENTION_DAYS" in result.stderr
    assert "Traceback" not in result.stderr
