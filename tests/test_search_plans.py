"""How a PostgreSQL search is planned (walk the newest articles, or take the GIN index's
candidates), from the index's own statistics; the index's storage after migration 0012; and
SQLite reading its file through a memory map.

The plan never changes what is found (`test_search_stems` checks both plans agree); these
tests check that the choice follows the statistics, so that a common word is not searched the
way that costs it 40× more.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from bot.app import open_app
from storage.db import Database
from storage.search.query import (
    DENSE_SHARE,
    SearchQuery,
    _postgres_sql,
    _token_shares,
    _walk_pays,
    search,
)
from storage.search.terms import parse_query_text
from tests.conftest import make_settings
from tests.test_search_stems import _build

SHARES = {("document", "ai"): 0.97, ("document", "株価"): 0.26, ("chars", "株"): 0.29}


def walks(words: str, *, match_all: bool = True) -> bool:
    return _walk_pays(SearchQuery(text=parse_query_text(words), match_all=match_all), SHARES)


def test_only_tokens_common_enough_walk_the_newest_articles() -> None:
    assert walks("AI") and walks("ＡＩ")  # in 97% of the articles
    assert not walks("株価")  # 26%: below DENSE_SHARE["document"]
    assert not walks("猫")  # a character the statistics do not list: rare
    assert walks("株")  # 29% is common for the short `chars` vector
    # Every term of an AND query, as if independent: 97% × 26% is rare.
    assert not walks("AI 株価")
    assert walks("AI 株価", match_all=False)  # `ask`: any term, so the most common one
    # A character and a word: the stricter threshold, the word's.
    assert DENSE_SHARE["chars"] < 0.97 * 0.29 < DENSE_SHARE["document"]
    assert not walks("AI 株")
    # A phrase or a prefix needs each candidate's positions: never the walk.
    assert not walks("生成AI") and not walks("AI*")


def test_the_chosen_plan_is_in_the_sql() -> None:
    def sql(words: str) -> str:
        return _postgres_sql(SearchQuery(text=parse_query_text(words)), shares=SHARES)[0]

    assert "candidates AS MATERIALIZED" not in sql("AI")
    assert "candidates AS MATERIALIZED" in sql("株価")
    assert "candidates AS MATERIALIZED" in sql("生成AI")


DOCS = [
    (f"d{n}", f"AI news {n}", f"AI item {n}" + (" robotics" if n == 3 else "")) for n in range(12)
]


async def test_token_shares_come_from_pg_stats(tmp_path: Path, postgres_url: str) -> None:
    """ANALYZE's most common elements of the document vector: `ai` is in every article,
    `robot` (stemmed) in one of twelve, under every threshold; the result is cached."""
    async with open_app(make_settings(tmp_path, DATABASE_URL=postgres_url)) as app:
        key_of = await app.db.run(_build, docs=DOCS)
        with app.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE article_search")

        def shares(session: Session) -> tuple[dict[tuple[str, str], float], bool]:
            first = _token_shares(session)
            return first, _token_shares(session) is first

        found, cached = await app.db.run(shares)
        assert found[("document", "ai")] == 1.0
        assert ("document", "robot") not in found
        assert cached

        def found_by(session: Session, words: str) -> list[int]:
            page = search(session=session, query=SearchQuery(text=parse_query_text(words)))
            return sorted(h.article_id for h in page.hits)

        # The walk for `ai`, the index for `robotics`: both find what is there.
        assert len(await app.db.run(found_by, words="AI")) == 10  # the page
        [robotics] = await app.db.run(found_by, words="robotics")
        assert key_of[robotics] == "d3"


async def test_migration_0012_moves_search_vectors_out_of_the_heap(
    tmp_path: Path, postgres_url: str
) -> None:
    async with open_app(make_settings(tmp_path, DATABASE_URL=postgres_url)) as app:
        with app.db.engine.connect() as c:
            options = c.execute(
                text("SELECT reloptions FROM pg_class WHERE relname = 'article_search'")
            ).scalar_one()
            storage = c.execute(
                text(
                    "SELECT attstorage FROM pg_attribute WHERE attname = 'chars'"
                    " AND attrelid = 'article_search'::regclass"
                )
            ).scalar_one()
    assert options == ["toast_tuple_target=128"]
    assert storage == "e"  # EXTERNAL: out of line, not compressed


def test_sqlite_reads_through_a_memory_map(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ainews.sqlite3'}")
    try:
        with db.engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA mmap_size").scalar_one() > 0
    finally:
        db.dispose()
