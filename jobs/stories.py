"""Near-duplicate titles from different sources become one story.

Titles are reduced to a set of tokens — Latin words and digits, plus character bigrams of
kanji/katakana runs (hiragana splits runs, since it is mostly particles in headlines) — and two
titles are the same story when their Jaccard similarity reaches `THRESHOLD`. Candidates come from
an inverted index over those tokens, skipping tokens too common to discriminate, so a pass over
thousands of titles stays linear in practice.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from jobs.text import nfkc

THRESHOLD = 0.55
MIN_TOKENS = 4
MAX_POSTING = 200

_LATIN = re.compile(r"[a-z]+(?:-[a-z0-9]+)*|\d+(?:\.\d+)?")
_CJK_RUN = re.compile(r"[\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々〆ー]+")
_STOPWORDS = frozenset(
    "a an the of to in on for and or with by from at as is are be its it new how why what".split()
)


def title_tokens(title: str) -> frozenset[str]:
    text = nfkc(title).lower()
    tokens: set[str] = {
        _stem(w)
        for w in _LATIN.findall(text)
        if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())
    }
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            tokens.add(run)
        tokens.update(run[i : i + 2] for i in range(len(run) - 1))
    return frozenset(tokens)


def _stem(word: str) -> str:
    """Plural and third-person `s` off, so "raises"/"raise" and "robots"/"robot" match."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and word.isalpha():
        return word[:-1]
    return word


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@dataclass(frozen=True, slots=True)
class Titled:
    id: int
    source_id: int
    title: str
    story_id: int | None


def assign_stories(known: Iterable[Titled], new: Iterable[Titled]) -> dict[int, int]:
    """Story id for each new article: the story of the most similar earlier article from another
    source, or its own id. `known` and `new` are in id order; new articles also match each
    other (two feeds reporting the same story in one poll)."""
    tokens: dict[int, frozenset[str]] = {}
    story: dict[int, int] = {}
    source: dict[int, int] = {}
    index: defaultdict[str, list[int]] = defaultdict(list)

    def remember(item: Titled, story_id: int) -> None:
        tokens[item.id] = title_tokens(item.title)
        story[item.id] = story_id
        source[item.id] = item.source_id
        for token in tokens[item.id]:
            index[token].append(item.id)

    for item in known:
        remember(item, item.story_id or item.id)

    assigned: dict[int, int] = {}
    for item in new:
        mine = title_tokens(item.title)
        best, best_score = None, THRESHOLD
        if len(mine) >= MIN_TOKENS:
            hits: Counter[int] = Counter()
            for token in mine:
                posting = index.get(token, ())
                if len(posting) <= MAX_POSTING:
                    hits.update(posting)
            for other, _ in hits.most_common(20):
                if source[other] == item.source_id:
                    continue
                score = similarity(mine, tokens[other])
                if score >= best_score:
                    best, best_score = other, score
        story_id = story[best] if best is not None else item.id
        assigned[item.id] = story_id
        remember(item, story_id)
    return assigned
