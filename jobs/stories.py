"""Near-duplicate titles from different sources become one story.

Titles are reduced to a set of tokens — Latin words (crudely singularised) and numbers, plus
character bigrams of kanji/katakana runs (hiragana splits runs, since in headlines it is mostly
particles) — and two titles are the same story when their Jaccard similarity reaches
`THRESHOLD`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from jobs.text import nfkc

THRESHOLD = 0.55
MIN_TOKENS = 4
MAX_POSTING = 100

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
    source (ties: the earliest), or its own id. `known` and `new` are in id order; new articles
    also match each other (two feeds reporting the same story in one poll).

    Candidates come from prefix filtering: if two sets have Jaccard ≥ t, they share at least
    one of any n − ⌈t·n⌉ + 1 tokens of the n-token set, so looking up only the rarest such
    tokens finds every match. Tokens shared by more than `MAX_POSTING` recent titles are
    skipped: a title whose rarest words are that common is boilerplate, not a story."""
    tokens: dict[int, frozenset[str]] = {}
    story: dict[int, int] = {}
    source: dict[int, int] = {}
    index: defaultdict[str, list[int]] = defaultdict(list)

    def remember(item: Titled, mine: frozenset[str], story_id: int) -> None:
        tokens[item.id] = mine
        story[item.id] = story_id
        source[item.id] = item.source_id
        for token in mine:
            index[token].append(item.id)

    for item in known:
        remember(item, title_tokens(item.title), item.story_id or item.id)

    assigned: dict[int, int] = {}
    for item in new:
        mine = title_tokens(item.title)
        best: tuple[float, int] | None = None
        if len(mine) >= MIN_TOKENS:
            prefix = len(mine) - math.ceil(THRESHOLD * len(mine)) + 1
            rarest = sorted(mine, key=lambda t: (len(index.get(t, ())), t))[:prefix]
            candidates = {
                other
                for token in rarest
                if len(posting := index.get(token, ())) <= MAX_POSTING
                for other in posting
            }
            for other in candidates:
                if source[other] == item.source_id:
                    continue
                score = similarity(mine, tokens[other])
                if score >= THRESHOLD and (best is None or (score, -other) > (best[0], -best[1])):
                    best = (score, other)
        story_id = story[best[1]] if best is not None else item.id
        assigned[item.id] = story_id
        remember(item, mine, story_id)
    return assigned
