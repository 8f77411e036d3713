"""Story grouping shared among workers gives exactly the stories one worker gives, on titles
where many stories are reported by several sources in slightly different words."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bot.app import open_app
from jobs.parse_pool import ParsePool
from jobs.stories import Titled, assign_stories, best_matches, resolve_stories
from tests.conftest import make_settings

HEADLINES = [
    "OpenAI releases GPT-5 with a one million token context window",
    "Anthropic raises 4 billion dollars to expand Claude for enterprises",
    "NVIDIA unveils Blackwell Ultra GPUs for training frontier models",
    "Google DeepMind's Gemini 3 tops math and coding benchmarks",
    "Meta open-sources Llama 5 under a new community license",
    "EU AI Act rules for general-purpose models take effect in August",
    "経済産業省、生成AIの開発支援に500億円を計上",
    "ソフトバンク、国内最大級のAIデータセンターを北海道に建設へ",
    "富士通と理研、スーパーコンピュータ富岳でLLMを共同開発",
    "楽天、日本語特化の大規模言語モデルを無償公開",
    "NTT、低消費電力の光電融合チップで生成AIを高速化",
    "トヨタ、自動運転向けAIの開発でNVIDIAと提携拡大",
]
EDITS = [
    lambda t: t,
    lambda t: t + " - report",
    lambda t: "Breaking: " + t,
    lambda t: t + "（速報）",
    lambda t: t.replace("releases", "launches").replace("を", "を正式に"),
]


def reported_titles(rounds: int, seed: int = 7) -> list[Titled]:
    """Each headline told by two to four of 20 sources per round, in a shuffled order, with
    the small edits syndicated copies have, among unrelated one-off titles."""
    rng = random.Random(seed)
    items: list[tuple[int, str]] = []
    for r in range(rounds):
        for n, headline in enumerate(HEADLINES):
            story = f"{headline} ({r}-{n})" if r else headline
            for source in rng.sample(range(1, 21), rng.randint(2, 4)):
                items.append((source, rng.choice(EDITS)(story)))
        items += [(rng.randint(1, 20), f"Unrelated note {r}-{k} on topic {k * 7919 % 101}")
                  for k in range(10)]  # fmt: skip
    rng.shuffle(items)
    return [Titled(i + 1, source, title, None) for i, (source, title) in enumerate(items)]


@pytest.fixture(scope="module")
def titles() -> list[Titled]:
    return reported_titles(rounds=3)


def test_the_titles_do_group(titles: list[Titled]) -> None:
    """Otherwise the comparisons below would hold for nothing grouped at all."""
    stories = assign_stories([], titles)
    assert sum(1 for article, story in stories.items() if article != story) >= 30


@pytest.mark.parametrize("parts", [2, 3, 5])
def test_matches_found_in_shares_are_those_found_in_one(titles: list[Titled], parts: int) -> None:
    known, new = titles[:15], titles[15:]
    whole = best_matches(known, new)
    shares = [best_matches(known, new, part=part, parts=parts) for part in range(parts)]

    assert {k: v for share in shares for k, v in share.items()} == whole
    assert all(len(share) < len(whole) for share in shares)  # each did only its share
    assert resolve_stories(known, new, whole) == assign_stories(known, new)


async def test_the_pool_splits_grouping_among_its_workers_and_agrees(tmp_path: Path) -> None:
    many = reported_titles(rounds=30)  # over 1,000 titles: enough to split between 2 workers
    async with ParsePool(workers=2) as pool:
        assert await pool.group_stories(many[:40], many[40:]) == assign_stories(
            many[:40], many[40:]
        )
    # and from the app, as the poller calls it
    async with open_app(make_settings(tmp_path), fetching=True) as app:
        assert app.parser is not None
        assert await app.parser.group_stories([], many) == assign_stories([], many)
