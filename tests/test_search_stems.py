"""Stemmed English words and `word*` prefix queries, on SQLite and PostgreSQL, with Japanese
recall unchanged; a generated corpus checked against a LIKE scan; the index rebuilt by the
migration that introduced stemming.

The expected answers are written out by hand; the generated corpus is checked against what a
naive scan of the stored rows finds, so the index can only be wrong by missing what is there.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.app import App, open_app
from handlers.reply import Code
from handlers.search import usage_lines
from storage.articles import NewArticle, insert_new_articles
from storage.db import Database
from storage.migrate import alembic_config, upgrade_to_head
from storage.search.index import index_articles
from storage.search.query import (
    SearchPage,
    SearchQuery,
    _contains,
    _find,
    _postgres_sql,
    search,
)
from storage.search.terms import normalise, parse_query_text, stem, tokens
from storage.sources import SourceSpec, add_missing_sources, list_sources
from tests.conftest import make_settings

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SOURCE = SourceSpec("https://news.example.com/feed.xml", "Example News", "products")

# (key, title, body): English inflections, product names with versions, and Japanese.
DOCS = [
    ("agents", "AI agents take over the help desk", "Three agents answered calls all week."),
    ("agent", "An agent that writes code", "The coding agent opened a pull request."),
    ("agency", "The agency behind the ads", "An ad agency used image models."),
    ("agenda", "The agenda for the summit", "Leaders set the agenda on chips."),
    ("runs", "The model runs on a laptop", "It runs locally without a GPU."),
    ("running", "Running large models cheaply", "Running costs fell by half."),
    ("ran", "The lab ran a new benchmark", "It ran for a month."),
    ("gpt4o", "GPT-4o gets a voice mode", "GPT-4o now speaks in real time."),
    ("gpt4", "GPT-4 is retired", "OpenAI retires GPT-4 this month."),
    ("gpt45", "GPT-4.5 preview opens", "The GPT-4.5 preview costs more."),
    ("gpt5", "GPT-5 launches", "GPT-5 is faster than GPT-40 was ever rumoured to be."),
    ("happy", "Happy users of search", "Users seem happy with the results."),
    ("happiness", "Measuring happiness at work", "A survey on happiness and AI."),
    ("ja_agent", "AIエージェントが業務を自動化", "生成AIを使うエージェントが請求書を処理する。"),
    ("ja_reg", "政府、生成AIの規制に向けた新指針", "輸出規制の強化も検討する。"),
    ("ja_mixed", "Agentsの新版", "新しいエージェント機能、Agentsを発表した。"),
]


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def _build(session: Session, docs: list[tuple[str, str, str]]) -> dict[int, str]:
    add_missing_sources(session=session, specs=[SOURCE])
    [source] = list_sources(session=session)
    assert source.id is not None
    key_of: dict[int, str] = {}
    for n, (key, title, body) in enumerate(docs):
        [(_, article_id)] = insert_new_articles(
            session=session,
            source_id=source.id,
            articles=[
                NewArticle(
                    url=f"https://news.example.com/{key}",
                    guid=key,
                    title=title,
                    language="en",
                    published_at=ago(n),
                    body_text=body,
                    content_hash=f"hash-{key}",
                )
            ],
            first_seen_at=ago(n),
        )
        key_of[article_id] = key
    index_articles(session=session, article_ids=list(key_of))
    return key_of


@pytest.fixture(params=["sqlite", "postgresql"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    database = {}
    if request.param == "postgresql":
        database["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    async with open_app(make_settings(tmp_path, **database)) as app:
        yield app


@pytest.fixture
async def key_of(app: App) -> dict[int, str]:
    return await app.db.run(_build, docs=DOCS)


async def find(app: App, query: str, limit: int = 200) -> SearchPage:
    wanted = SearchQuery(text=parse_query_text(query), limit=limit)
    return await app.db.run(search, query=wanted, now=NOW)


async def found(app: App, key_of: dict[int, str], query: str) -> set[str]:
    return {key_of[h.article_id] for h in (await find(app, query)).hits}


# ── the tokens ───────────────────────────────────────────────────────────────────────────────


def test_english_words_are_stemmed_and_japanese_bigrams_are_not() -> None:
    assert tokens("AI agents are running") == ["ai", "agent", "are", "run"]
    assert tokens("The Agent runs") == ["the", "agent", "run"]
    assert tokens("生成AIエージェント") == ["生成", "ai", "エー", "ージ", "ジェ", "ェン", "ント"]
    assert tokens("GPT-4o H100") == ["gpt", "4o", "h100"]
    assert stem("happiness") == stem("happy") == "happi"


def test_a_trailing_star_makes_the_last_word_a_prefix() -> None:
    [gpt] = parse_query_text("GPT-4*").required
    assert (gpt.tokens, gpt.prefix) == (("gpt", "4"), True)
    # The prefix is what the typed word shares with its stem: `agents*` finds `agent`.
    [agents] = parse_query_text("agents*").required
    assert (agents.tokens, agents.prefix) == (("agent",), True)
    [happy] = parse_query_text("happy*").required
    assert happy.tokens == ("happ",)
    assert parse_query_text('"open mod"*').required == parse_query_text('"open mod*"').required
    assert parse_query_text("ＧＰＴ－４＊").required[0].prefix  # full width, NFKC
    # CJK already matches inside longer words: the star changes nothing there.
    [regulation] = parse_query_text("規制*").required
    assert (regulation.tokens, regulation.prefix) == (("規制",), False)
    assert parse_query_text("米*").required[0].single_char
    assert parse_query_text("* -*") == parse_query_text("")
    assert parse_query_text("-agen*").excluded[0].prefix


# ── on both databases ────────────────────────────────────────────────────────────────────────


async def test_inflected_english_words_find_each_other(app: App, key_of: dict[int, str]) -> None:
    agents = {"agents", "agent", "ja_mixed"}
    assert await found(app, key_of, "agent") == agents  # not agenda, not agency
    assert await found(app, key_of, "agents") == agents
    assert await found(app, key_of, "AGENTS") == agents
    assert await found(app, key_of, "running") == {"runs", "running"}  # `ran` is another word
    assert await found(app, key_of, "run") == {"runs", "running"}
    assert await found(app, key_of, "happy") == {"happy", "happiness"}
    assert await found(app, key_of, '"coding agents"') == {"agent"}
    assert await found(app, key_of, "agent -code") == {"agents", "ja_mixed"}


async def test_prefix_queries_find_longer_words(app: App, key_of: dict[int, str]) -> None:
    assert await found(app, key_of, "GPT-4*") == {"gpt4o", "gpt4", "gpt45", "gpt5"}  # GPT-40
    assert await found(app, key_of, "GPT-4") == {"gpt4", "gpt45"}  # GPT-4.5 reads gpt 4 5
    assert await found(app, key_of, "GPT-4o*") == {"gpt4o"}
    assert await found(app, key_of, "agen*") == {"agents", "agent", "agency", "agenda", "ja_mixed"}
    assert await found(app, key_of, "agents*") == {"agents", "agent", "ja_mixed"}
    assert await found(app, key_of, "happi*") == {"happy", "happiness"}
    assert await found(app, key_of, '"set the agen"*') == {"agenda"}
    assert await found(app, key_of, "agen* -agent") == {"agency", "agenda"}
    assert await found(app, key_of, "agent -agen*") == set()
    assert await found(app, key_of, "zzz*") == set()


async def test_japanese_queries_are_unchanged(app: App, key_of: dict[int, str]) -> None:
    assert await found(app, key_of, "エージェント") == {"ja_agent", "ja_mixed"}
    assert await found(app, key_of, "生成AI") == {"ja_agent", "ja_reg"}
    assert await found(app, key_of, "規制") == {"ja_reg"}
    assert await found(app, key_of, "規制*") == {"ja_reg"}
    assert await found(app, key_of, "新") == {"ja_reg", "ja_mixed"}
    assert await found(app, key_of, "AIエージェント agents") == set()
    assert await found(app, key_of, "エージェント agents") == {"ja_mixed"}


async def test_snippets_show_the_word_as_written(app: App, key_of: dict[int, str]) -> None:
    snippets = {key_of[h.article_id]: h.snippet for h in (await find(app, "agent")).hits}
    assert snippets == {
        "agents": "Three agents answered calls all week.",
        "agent": "The coding agent opened a pull request.",
        "ja_mixed": "新しいエージェント機能、Agentsを発表した。",
    }
    snippets = {key_of[h.article_id]: h.snippet for h in (await find(app, "happy")).hits}
    assert snippets["happiness"] == "A survey on happiness and AI."
    snippets = {key_of[h.article_id]: h.snippet for h in (await find(app, "GPT-4*")).hits}
    assert "GPT-40" in snippets["gpt5"]


def test_title_matches_are_found_by_stem_not_by_spelling() -> None:
    """The title boost and the snippet position use `_contains`/`_find`: a word whose stem is
    the query's, not any word that starts the same way."""
    [agent] = parse_query_text("agent").required
    assert _contains(normalise("Agents take over"), agent)
    assert not _contains(normalise("The agenda for agencies"), agent)
    [happy] = parse_query_text("happy").required
    assert _contains(normalise("Measuring happiness at work"), happy)  # stem happi
    [gpt] = parse_query_text("GPT-4*").required
    assert _find(normalise("Say hi to GPT-4o"), gpt) == len("Say hi to ")
    assert not _contains(normalise("GPT-5 and 4o"), gpt)
    [phrase] = parse_query_text('"coding agents"').required
    assert _find(normalise("agent code, then coding agent"), phrase) == len("agent code, then ")


# ── a generated corpus against a LIKE scan ───────────────────────────────────────────────────

_EN = (
    "agent agents model models training trained chip chips export exports robot robots "
    "lawsuit lawsuits startup startups funding regulator regulators data center centers"
).split()
_JA = "規制 買収 半導体 生成AI データセンター 輸出規制 エージェント 米中 量子 推論".split()
_FILL = "the a new and for with of on in を は が の に で した".split()


def _generated(count: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    docs = []
    for n in range(count):
        words = rng.choices(_EN + _JA + _FILL, k=rng.randint(4, 14))
        cut = rng.randint(1, len(words) - 1)
        docs.append((f"g{n}", " ".join(words[:cut]), " ".join(words[cut:])))
    return docs


def _whole_word(word: str, value: str) -> bool:
    return re.search(rf"(?<![0-9a-z]){re.escape(word)}(?![0-9a-z])", value.lower()) is not None


async def test_recall_against_a_like_scan_on_a_generated_corpus(app: App) -> None:
    """Every article a LIKE scan finds, the index finds: whole words for English (a LIKE of
    `agent` also matches inside `agents`, which the stem covers), any substring for Japanese;
    a prefix query finds every word starting with it."""
    docs = _generated(150, seed=11)
    key_of = await app.db.run(_build, docs=docs)
    by_key = {key: f"{title} {body}" for key, title, body in docs}

    def scan(session: Session, pattern: str) -> set[str]:
        rows = session.execute(
            text("SELECT id FROM articles WHERE title LIKE :p OR body_text LIKE :p"),
            {"p": f"%{pattern}%"},
        )
        return {key_of[int(r[0])] for r in rows}

    checked = 0
    for word in [*_EN, *_JA, "agen*", "start*", "regul*", "cent*"]:
        literal = word.rstrip("*")
        scanned = await app.db.run(scan, pattern=literal)
        if not word.endswith("*") and literal.isascii():
            scanned = {k for k in scanned if _whole_word(literal, by_key[k])}
        indexed = await found(app, key_of, word)
        assert scanned <= indexed, (word, scanned - indexed)
        if not literal.isascii() or word.endswith("*"):
            assert indexed == scanned, (word, indexed - scanned)  # nothing but the substring
        else:  # the other forms of the word, and no other word
            same_stem = {
                k for k, t in by_key.items() if any(stem(w) == stem(literal) for w in t.split())
            }
            assert indexed == same_stem, word
        checked += bool(scanned)
    assert checked >= 30  # the corpus does contain most words


# ── upgrading a database indexed before stemming ─────────────────────────────────────────────


def _unstemmed(session: Session) -> None:
    """Rewrite the index as the code before migration 0010 wrote it: words unstemmed."""
    rows = session.execute(text("SELECT id, title, body_text FROM articles")).all()
    old = {
        int(r[0]): " ".join(
            re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", f"{r[1]}").lower())
        )
        + "\n"
        + " ".join(re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", f"{r[2]}").lower()))
        for r in rows
    }
    postgres = session.get_bind().dialect.name == "postgresql"
    for article_id, words in old.items():
        if postgres:
            session.execute(
                text(
                    "UPDATE article_search SET document = to_tsvector('simple', :w) "
                    "WHERE article_id = :id"
                ),
                {"w": words, "id": article_id},
            )
        else:
            session.execute(
                text("UPDATE article_fts SET title = :w, body = '' WHERE rowid = :id"),
                {"w": words, "id": article_id},
            )
    session.commit()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_upgrading_rebuilds_an_index_written_before_stemming(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'up.sqlite3'}"
    )
    english = [d for d in DOCS if d[0] in {"agents", "agent", "runs", "running"}]
    async with open_app(make_settings(tmp_path, DATABASE_URL=url)) as app:
        key_of = await app.db.run(_build, docs=english)
        await app.db.run(_unstemmed)
        # The stale index has `agents` where the query now looks for `agent`.
        assert await found(app, key_of, "agents") == {"agent"}
        assert await found(app, key_of, "running") == set()

    db = Database(url)
    try:
        config = alembic_config(db.engine)
        before = ScriptDirectory.from_config(config).get_revision("0010").down_revision
        assert isinstance(before, str)
        command.downgrade(config, before)
        upgrade_to_head(db.engine)  # what the next start-up does
    finally:
        db.dispose()

    async with open_app(make_settings(tmp_path, DATABASE_URL=url)) as app:
        assert await found(app, key_of, "agents") == {"agents", "agent"}
        assert await found(app, key_of, "running") == {"runs", "running"}


# ── documented in chat ───────────────────────────────────────────────────────────────────────


def test_search_usage_explains_prefix_queries_and_stemming() -> None:
    """Shown with every search that has no words or a bad filter."""
    codes = [p.text for ln in usage_lines() for p in ln.parts if isinstance(p, Code)]
    assert {"語*", "GPT-4*", "agent", '"…"', "-語"} <= set(codes)


# ── PostgreSQL: one statement and two steps find the same articles ─────────────────────────


async def test_postgresql_one_statement_and_two_steps_agree(
    tmp_path: Path, postgres_url: str
) -> None:
    """Each query both ways: as one statement the planner plans (single tokens) and in two
    steps (phrases), with filters, phrases, prefixes, exclusions and one character."""
    async with open_app(make_settings(tmp_path, DATABASE_URL=postgres_url)) as app:
        key_of = await app.db.run(_build, docs=DOCS)

        def ids(session: Session, query: SearchQuery, two_steps: bool) -> list[int]:
            sql, params = _postgres_sql(query, two_steps=two_steps)
            session.execute(text("SET LOCAL enable_seqscan = off"))
            return sorted(r["article_id"] for r in session.execute(text(sql), params).mappings())

        for words, source in (
            ("agent", None),
            ("agents -code", None),
            ('"coding agent"', None),
            ("GPT-4*", None),
            ("GPT-4* -GPT-5", "example"),
            ("生成AI", None),
            ("エージェント 新", None),
            ("新 -規制", None),
            ("agent", "nothing like it"),
        ):
            query = SearchQuery(text=parse_query_text(words), source=source)
            planned = await app.db.run(ids, query=query, two_steps=False)
            stepped = await app.db.run(ids, query=query, two_steps=True)
            assert planned == stepped, words
            assert {key_of[i] for i in stepped} <= set(key_of.values())
        assert await app.db.run(
            ids, query=SearchQuery(text=parse_query_text("GPT-4* -GPT-5")), two_steps=True
        ) == sorted(i for i, k in key_of.items() if k in {"gpt4o", "gpt4", "gpt45"})
