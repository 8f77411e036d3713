"""Near-duplicate titles from different sources become one story.

Titles are reduced to a set of tokens — Latin words (crudely singularised) and numbers, plus
character bigrams of kanji/katakana runs (hiragana splits runs, since in headlines it is mostly
particles) — and two titles are the same story when their Jaccard similarity reaches
`THRESHOLD`.

Reports of one story in two languages share few title words, but once the model has written a
Japanese title for each (`TRANSLATED`), they share names and kanji bigrams. Translated titles
vary more in wording, so a lower similarity suffices there when the two also share at least two
Latin-script names or numbers (`Gemini`, `GPT-5`, `400`): a shared generic word (`AI`, `GPU`)
with similar phrasing is not enough.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from jobs.text import nfkc

THRESHOLD = 0.55
# Articles first seen this far apart are not compared: a story is news for a few days.
STORY_WINDOW = timedelta(days=3)
MIN_TOKENS = 4
MAX_POSTING = 100


@dataclass(frozen=True, slots=True)
class Rule:
    """When two token sets are one story: similarity ≥ `strong`, or ≥ `threshold` with at least
    `names` shared Latin-script tokens. `threshold` also sizes the prefix filter."""

    threshold: float
    strong: float
    names: int = 0

    def accepts(self, score: float, shared: frozenset[str]) -> bool:
        if score >= self.strong:
            return True
        return score >= self.threshold and sum(t[0].isascii() for t in shared) >= self.names


SAME_LANGUAGE = Rule(threshold=THRESHOLD, strong=THRESHOLD)
TRANSLATED = Rule(threshold=0.4, strong=THRESHOLD, names=2)

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


@dataclass(frozen=True, slots=True)
class Titled:
    id: int
    source_id: int
    title: str
    story_id: int | None


def assign_stories(
    known: Iterable[Titled], new: Iterable[Titled], rule: Rule = SAME_LANGUAGE
) -> dict[int, int]:
    """Story id for each new article: the story of the most similar earlier article from another
    source that `rule` accepts (ties: the earliest), or else its own story (its id when it has
    none yet). `known` and `new` are in id order; new articles also match each other (two feeds
    reporting the same story in one poll)."""
    known, new = list(known), list(new)
    return resolve_stories(known, new, best_matches(known, new, rule))


def resolve_stories(
    known: Sequence[Titled], new: Sequence[Titled], best: Mapping[int, int]
) -> dict[int, int]:
    """The stories, from each new article's best earlier match (`best_matches`): in id order,
    an article takes its match's story. Cheap, and the only step that must be sequential."""
    story = {item.id: item.story_id or item.id for item in known}
    for item in new:
        match = best.get(item.id)
        story[item.id] = story[match] if match is not None else item.story_id or item.id
    return {item.id: story[item.id] for item in new}


def best_matches(
    known: Sequence[Titled],
    new: Sequence[Titled],
    rule: Rule = SAME_LANGUAGE,
    part: int = 0,
    parts: int = 1,
) -> dict[int, int]:
    """New article id → the id of its most similar earlier article from another source that
    `rule` accepts (ties: the earliest), for the new articles at positions `part`, `part +
    parts`, …: `parts` workers each take a share and see the same result as one would. Every
    article is indexed in id order whichever part searches it, and a match never depends on
    stories, so the shares are independent; `resolve_stories` then makes the stories.

    Candidates come from prefix filtering: if two sets have Jaccard ≥ t, they share at least
    one of any n − ⌈t·n⌉ + 1 tokens of the n-token set, so looking up only the rarest such
    tokens finds every match. Tokens shared by more than `MAX_POSTING` recent titles are
    skipped: a title whose rarest words are that common is boilerplate, not a story."""
    # Per remembered article: (its tokens, their count, its source). One lookup per
    # candidate: this loop runs for hundreds of candidates per title on a large poll.
    seen: dict[int, tuple[frozenset[str], int, int]] = {}
    index: defaultdict[str, list[int]] = defaultdict(list)

    def remember(item: Titled, mine: frozenset[str]) -> None:
        seen[item.id] = (mine, len(mine), item.source_id)
        for token in mine:
            index[token].append(item.id)

    for item in known:
        remember(item, title_tokens(item.title))

    best: dict[int, int] = {}
    for position, item in enumerate(new):
        mine = title_tokens(item.title)
        size = len(mine)
        if size >= MIN_TOKENS and position % parts == part:
            match = _best(item, mine, seen, index, rule)
            if match is not None:
                best[item.id] = match
        remember(item, mine)
    return best


def _best(
    item: Titled,
    mine: frozenset[str],
    seen: dict[int, tuple[frozenset[str], int, int]],
    index: defaultdict[str, list[int]],
    rule: Rule,
) -> int | None:
    size = len(mine)
    threshold = rule.threshold
    prefix = size - math.ceil(threshold * size) + 1
    rarest = sorted(mine, key=lambda t: (len(index.get(t, ())), t))[:prefix]
    candidates = {
        other
        for token in rarest
        if len(posting := index.get(token, ())) <= MAX_POSTING
        for other in posting
    }
    # Jaccard ≥ t needs t·|A| ≤ |B| ≤ |A|/t: most candidates fail on size alone, and the
    # score comes from the intersection only (no union set is built).
    low, high = threshold * size, size / threshold
    best_score, best_id = 0.0, None
    for other in candidates:
        theirs, count, source_id = seen[other]
        if source_id == item.source_id or not low <= count <= high:
            continue
        shared = mine & theirs
        score = len(shared) / (size + count - len(shared))
        if score < threshold or score < best_score:
            continue
        better = best_id is None or score > best_score or other < best_id
        if better and rule.accepts(score, shared):
            best_score, best_id = score, other
    return best_id
