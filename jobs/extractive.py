"""The offline summariser: lead sentences, keywords by frequency, keyword-rule categories and a
heuristic importance. It never pretends to be a model: summaries carry method `extractive` and
renderers mark them （自動抽出）. Everything it writes is copied from the article."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from jobs.text import nfkc, shorten, split_sentences
from storage.taxonomy import Taxonomy

EXTRACTIVE_MODEL = "extractive"
EXTRACTIVE_VERSION = "ext-v1"

_KATAKANA = re.compile(r"[\u30a0-\u30ffー]{3,}")
_KANJI = re.compile(r"[\u4e00-\u9fff々]{2,6}")
_LATIN = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*\b|\b[a-z]+[A-Z][A-Za-z0-9]*\b")
_STOP = frozenset(
    "The This That These Those It Its In On At For From With And But Or As By We Our "
    "They He She His Her A An If When While After Before According However Also More "
    "New 記事 今回 同社 発表 提供 開始 可能 予定 対応 以上 以下 場合 同日 今後 本日 関連".split()
)
# Blog openers ("プロダクト開発部の佐藤です。", "こんにちは、…") say nothing about the news.
_GREETING = re.compile(r"^(こんにちは|こんばんは|はじめまして)|^.{0,30}(です|と申します)。$")
_HIGH_SIGNAL = (
    "発表", "開始", "量産", "買収", "調達", "規制", "法案", "脆弱性", "公開", "リリース",
    "launch", "release", "acquire", "acquisition", "raises", "funding", "regulation", "law",
    "vulnerability", "breach", "open-source", "open source", "record", "billion", "億",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExtractiveSummary:
    title: str
    overview: str
    points: list[str]
    why_important: str
    keywords: list[str]
    category: str
    importance: int


def summarize_extractively(
    *, title: str, body: str, default_category: str, taxonomy: Taxonomy, sources_in_story: int = 1
) -> ExtractiveSummary:
    sentences = [s for s in split_sentences(body) if len(s) > 8 and not _GREETING.search(s)]
    keywords = top_keywords(f"{title}\n{title}\n{body}")
    overview = join_sentences(sentences[:2]) if sentences else title
    rest = sentences[2:]
    points = [shorten(p, 160) for p in _three_points(rest or sentences, title)]
    why = _most_salient(rest[3:], keywords) or _most_salient(sentences, keywords) or overview
    return ExtractiveSummary(
        title=shorten(title, 120),
        overview=shorten(overview, 300),
        points=points,
        why_important=shorten(why, 200),
        keywords=keywords[:5],
        category=classify(title, body, taxonomy) or default_category,
        importance=estimate_importance(title, body, sources_in_story),
    )


def join_sentences(sentences: list[str]) -> str:
    """Japanese sentences run on without a space; others get one."""
    text = ""
    for sentence in sentences:
        text += sentence if not text or text.endswith(("。", "！", "？")) else " " + sentence
    return text


def top_keywords(text: str, limit: int = 5) -> list[str]:
    """Most frequent katakana words, kanji compounds and capitalised Latin names."""
    text = nfkc(text)
    counts: Counter[str] = Counter()
    for pattern in (_KATAKANA, _KANJI, _LATIN):
        counts.update(w for w in pattern.findall(text) if w not in _STOP and len(w) > 1)
    return [word for word, _ in counts.most_common(limit)]


def classify(title: str, body: str, taxonomy: Taxonomy) -> str | None:
    """Keyword rules from the category config: title hits weigh 3, body hits 1; ties go to the
    earlier category; None when nothing matches."""
    title_l, body_l = nfkc(title).lower(), nfkc(body).lower()
    best, best_score = None, 0
    for category in taxonomy.categories:
        score = sum(3 * title_l.count(k) + body_l.count(k) for k in category.keywords)
        if score > best_score:
            best, best_score = category.slug, score
    return best


def estimate_importance(title: str, body: str, sources_in_story: int) -> int:
    """1–3 from signals that track newsworthiness: several outlets on one story, a decisive
    verb in the headline, concrete figures in the text."""
    text = nfkc(f"{title} {body}").lower()
    score = 1
    if sources_in_story >= 2:
        score += 1
    if any(word in nfkc(title).lower() for word in _HIGH_SIGNAL) or (
        len(re.findall(r"\d", text)) >= 6 and len(body) > 600
    ):
        score += 1
    return min(score, 3)


def _three_points(sentences: list[str], title: str) -> list[str]:
    points = sentences[:3]
    while len(points) < 3:
        points.append(title if title not in points else "詳細は元記事を参照")
    return points


def _most_salient(sentences: list[str], keywords: list[str]) -> str | None:
    scored = [(sum(k in s for k in keywords), -i, s) for i, s in enumerate(sentences)]
    best = max(scored, default=None)
    return best[2] if best and best[0] > 0 else None
