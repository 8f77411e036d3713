"""Running a search: match in the database, then rank, collapse stories and cut a snippet."""

from __future__ import annotations

import functools
import json
import math
import re
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Result, bindparam, text
from sqlmodel import Session

from storage.clock import ensure_utc, utcnow
from storage.models import Article
from storage.search.terms import _CJK, ParsedText, Term, normalise, stem

# Relevance is computed for the newest WINDOW matches only, and the best CANDIDATES of them
# are ranked in Python; see `_windowed`. Both bound the work of a common word, and so its
# time (bench/search.py, 100k articles, interleaved runs): on PostgreSQL, computing relevance
# reads each document in the window (6 KB on average), and 1,000 rather than 2,000 took a
# quarter off the p50; every candidate is then joined, fetched and ranked in Python, and 100
# rather than 200 took a fifth off SQLite's p50 and a tenth off PostgreSQL's. For a word in a
# third of the articles, 1,000 matches are three days of the benchmark's 1,100 articles a day
# (a month of a team's typical 100), and 100 candidates are ten pages of results.
WINDOW = 1000
CANDIDATES = 100
RECENCY_DAYS = 14.0
RECENCY_WEIGHT = 0.5
# SQLite bm25() column weights: title, keywords, summary, body, chars.
FTS_WEIGHTS = (4.0, 3.0, 1.5, 1.0, 1.0)
# PostgreSQL ts_rank weights for D (body), C (summary), B (keywords), A (title).
PG_WEIGHTS = "{0.25, 0.375, 0.75, 1.0}"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: ParsedText
    category: str | None = None
    source: str | None = None
    since: datetime | None = None
    limit: int = 10
    offset: int = 0
    match_all: bool = True  # False: any term may match (used by `ask`)


@dataclass(frozen=True, slots=True)
class SearchHit:
    article_id: int
    url: str
    title: str
    title_ja: str | None
    source: str
    published: datetime
    category: str | None
    score: float
    snippet: str
    other_sources: int = 0
    overview: str | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total: int  # stories matched (after collapsing near-duplicates)


def search(*, session: Session, query: SearchQuery, now: datetime | None = None) -> SearchPage:
    if not query.text.required:
        return SearchPage([], 0)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        sql, params = _postgres_sql(query, shares=_token_shares(session))
    else:
        sql, params = _sqlite_sql(query)
    statement = text(sql)
    if "since" in params:
        # Typed like the column it is compared with: SQLite stores UTC text without an offset,
        # so a raw datetime in another zone (local midnight) would compare as the wrong time.
        since_type = Article.__table__.c.published_at.type  # type: ignore[attr-defined]
        statement = statement.bindparams(bindparam("since", type_=since_type))
    if postgres:
        # No plan in `_postgres_sql` wants a sequential scan, which evaluates `@@` on every
        # document (the candidates must come from the index). Only for this statement.
        session.execute(text("SET LOCAL enable_seqscan = off"))
    rows = row_dicts(session.execute(statement, params))
    if postgres:
        session.execute(text("RESET enable_seqscan"))
    ranked = _rank(rows, query.text.required, now or utcnow())
    stories = _collapse(ranked)
    page = stories[query.offset : query.offset + query.limit]
    texts = _texts(session, [row["article_id"] for row, _ in page])
    return SearchPage(
        [_hit(row | texts[row["article_id"]], others, query.text) for row, others in page],
        len(stories),
    )


def _texts(session: Session, article_ids: list[int]) -> dict[int, dict[str, Any]]:
    """What only the shown hits need (snippet, overview, keywords): read for those few rather
    than for all `CANDIDATES`, whose bodies are most of the bytes a search reads."""
    if not article_ids:
        return {}
    statement = text(
        "SELECT a.id AS article_id, a.body_text, m.overview, m.keywords, m.points,"
        " m.why_important FROM articles a LEFT JOIN summaries m ON m.article_id = a.id"
        " WHERE a.id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    rows = row_dicts(session.execute(statement, {"ids": article_ids}))
    return {row["article_id"]: row for row in rows}


def row_dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """The result's rows as plain dicts, which `_rank` and `_hit` fill in. Zipped with the
    column names once: converting SQLAlchemy's row mappings costs about a microsecond a column,
    a tenth of a search over 100 candidates."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


_SELECT = (
    "SELECT a.id AS article_id, a.url, a.title, a.story_id, a.source_id,"
    " COALESCE(a.published_at, a.first_seen_at) AS published, s.name AS source,"
    " m.title_ja, m.category"
)
_JOINS = (
    " JOIN articles a ON a.id = {match_id}"
    " JOIN sources s ON s.id = a.source_id"
    " LEFT JOIN summaries m ON m.article_id = a.id"
)


def _filters(query: SearchQuery, params: dict[str, Any]) -> str:
    clauses = []
    if query.category:
        clauses.append("m.category = :category")
        params["category"] = query.category
    if query.source:
        # `%` and `_` typed by a user are literal characters, not wildcards.
        clauses.append("LOWER(s.name) LIKE :source ESCAPE '\\'")
        escaped = query.source.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["source"] = f"%{escaped}%"
    if query.since:
        clauses.append("COALESCE(a.published_at, a.first_seen_at) >= :since")
        params["since"] = query.since
    return "".join(f" AND {c}" for c in clauses)


def _fts_term(term: Term) -> str:
    """The term as an FTS5 phrase. Tokens are letters, digits and CJK only (terms.py), so
    quoting them is enough; a `*` after a phrase makes its last token a prefix. `chars` holds
    single CJK characters only, so a phrase with a longer token cannot match there and needs
    no column filter, which costs FTS5 a look at every match's positions (30% of the time of
    `生成AI`, whose bm25 counts all 59,493 matches at 100k articles)."""
    phrase = '"' + " ".join(term.tokens) + '"' + ("*" if term.prefix else "")
    if term.single_char:
        return f"chars : {phrase}"
    if any(len(t) > 1 for t in term.tokens):
        return phrase
    return f"{{title keywords summary body}} : {phrase}"


def _sqlite_sql(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    joiner = " AND " if query.match_all else " OR "
    expression = "(" + joiner.join(f"({_fts_term(t)})" for t in query.text.required) + ")"
    for term in query.text.excluded:
        expression += f" NOT ({_fts_term(term)})"
    params: dict[str, Any] = {"match": expression, "window": WINDOW, "limit": CANDIDATES}
    weights = ", ".join(map(str, FTS_WEIGHTS))
    filters = _filters(query, params)
    recent = (
        f"SELECT article_fts.rowid AS id, -bm25(article_fts, {weights}) AS relevance"
        " FROM article_fts"
        + (_JOINS.format(match_id="article_fts.rowid") if filters else "")
        + " WHERE article_fts MATCH :match"
        + filters
        + " ORDER BY article_fts.rowid DESC LIMIT :window"
    )
    return _windowed(recent, "relevance"), params


def _windowed(recent: str, relevance: str, before: str = "") -> str:
    """The newest `WINDOW` matches (ids grow with time, and the index walks them in id order,
    so this is cheap even when a term is in nearly every article), the best `CANDIDATES` of
    those by relevance, and only then the joins that read article text."""
    return (
        f"WITH {before + ', ' if before else ''}recent AS ({recent}),"
        f" best AS (SELECT id, {relevance} AS relevance FROM recent"
        " ORDER BY relevance DESC, id DESC LIMIT :limit)"
        f" {_SELECT}, best.relevance FROM best" + _JOINS.format(match_id="best.id")
    )


def _pg_tsquery(term: Term, index: int, params: dict[str, Any]) -> str:
    """The term as a tsquery: a phrase of its tokens, the last one a prefix (`:*`) when asked.
    Tokens are letters, digits and CJK only (terms.py), so quoting each one is enough."""
    if term.prefix:
        params[f"t{index}"] = " <-> ".join(f"'{t}'" for t in term.tokens) + ":*"
        return f"to_tsquery('simple', :t{index})"
    params[f"t{index}"] = " ".join(term.tokens)
    return f"phraseto_tsquery('simple', :t{index})"


def _pg_tokens(term: Term, index: int, params: dict[str, Any]) -> str:
    """The term's tokens anywhere in the document: what the GIN index answers exactly, without
    reading a single document (a phrase or a NOT needs each candidate's positions)."""
    words = [f"'{t}'" for t in term.tokens]
    if term.prefix:
        words[-1] += ":*"
    params[f"g{index}"] = " & ".join(words)
    column = "x.chars" if term.single_char else "x.document"
    return f"{column} @@ to_tsquery('simple', :g{index})"


def _pg_term(term: Term, index: int, params: dict[str, Any], *, indexed: bool = True) -> str:
    """`column @@ query`; `indexed=False`: the same test as a function call, which the planner
    cannot answer from the GIN index, for rows already chosen."""
    column = "x.chars" if term.single_char else "x.document"
    if indexed:
        return f"{column} @@ {_pg_tsquery(term, index, params)}"
    return f"ts_match_vq({column}, {_pg_tsquery(term, index, params)})"


def _postgres_sql(
    query: SearchQuery,
    two_steps: bool | None = None,
    shares: Mapping[tuple[str, str], float] | None = None,
) -> tuple[str, dict[str, Any]]:
    """PostgreSQL's GIN index knows which documents hold a token but not where, so a phrase
    (every Japanese word of three or more characters is one: データセンター is six bigrams) is
    checked by reading each candidate document, about as costly as ranking it. The planner
    estimates a phrase's matches as the product of its tokens' frequencies (857 for 37,257
    real ones), so it read and rechecked all 37,257 to keep the newest 2,000 (1–2 s), or
    walked every article backwards for a rare phrase of common tokens (AI人材, 2.6 s).

    Two plans, chosen here rather than by the planner (times at 100k articles, window 2,000):

    - One statement (`two_steps=False`): walk the articles newest first, testing each
      document, until `WINDOW` match. Each test reads a whole document (TOASTed, 6 KB on
      average), which the planner does not count, so it walks for single tokens of any
      frequency (株価, in 26% of articles: 7,800 documents read, 45 ms). It is the better plan
      only for a token in nearly every article (AI: 2,100 read, 20 ms), so it is used when the
      query's tokens are that common (`shares`: from `_token_shares`; see `DENSE_SHARE`).
    - Two steps (the default): first every article that holds all the query's tokens, from
      the GIN index alone (exact for `&`, no document read; `article_id + 0` leaves no ordered
      index to walk), newest first; then those are checked for the phrases and exclusions
      one by one (LATERAL … OFFSET 0 keeps the planner from checking them all before the
      limit), each document read once, until `WINDOW` pass. A common phrase reads about
      `WINDOW` documents; a rare phrase of common tokens still reads all its candidates (the
      known worst case). 株価: 27 ms.

    Ranking then as on SQLite."""
    params: dict[str, Any] = {"window": WINDOW, "limit": CANDIDATES}
    joiner = " AND " if query.match_all else " OR "
    terms = list(query.text.required)
    if two_steps is None:
        two_steps = not _walk_pays(query, shares or {})
    word_terms = [_pg_tsquery(t, i, params) for i, t in enumerate(terms) if not t.single_char]
    if word_terms:
        rank_query = " || ".join(word_terms)
        relevance = f"ts_rank('{PG_WEIGHTS}', recent.document, {rank_query})"
    else:
        relevance = "0.1"
    filters = _filters(query, params)
    joins = _JOINS.format(match_id="x.article_id") if filters else ""
    if not two_steps:
        condition = "(" + joiner.join(_pg_term(t, i, params) for i, t in enumerate(terms)) + ")"
        for j, term in enumerate(query.text.excluded, start=len(terms)):
            condition += f" AND NOT ({_pg_term(term, j, params)})"
        recent = (
            f"SELECT x.article_id AS id, x.document FROM article_search x{joins}"
            f" WHERE {condition}{filters} ORDER BY x.article_id DESC LIMIT :window"
        )
        return _windowed(recent, relevance), params
    tokens = "(" + joiner.join(_pg_tokens(t, i, params) for i, t in enumerate(terms)) + ")"
    # One tsquery per column, so that each document is read once: with every term required,
    # only phrases need checking (a single token is what the index answered); with any term
    # enough (`ask`), a candidate may hold a phrase's tokens only, so all are checked.
    checked = [t for t in terms if len(t.tokens) > 1 or not query.match_all]
    tsqueries = {
        column: [_pg_tsquery(t, i, params) for i, t in enumerate(terms) if t in checked
                 and t.single_char == (column == "chars")]
        for column in ("document", "chars")
    }  # fmt: skip
    either = [
        f"ts_match_vq(x.{column}, {(' && ' if query.match_all else ' || ').join(queries)})"
        for column, queries in tsqueries.items()
        if queries
    ]
    checks = ["(" + " OR ".join(either) + ")"] if either else []
    for j, term in enumerate(query.text.excluded, start=len(terms)):
        checks.append(f"NOT {_pg_term(term, j, params, indexed=False)}")
    candidates = (
        f"SELECT x.article_id FROM article_search x{joins} WHERE {tokens}{filters}"
        " ORDER BY x.article_id + 0 DESC" + ("" if checks else " LIMIT :window")
    )
    # The materialised candidates come out in the order they were sorted.
    recent = (
        "SELECT c.article_id AS id, x.document FROM candidates c CROSS JOIN LATERAL"
        " (SELECT x.document, x.chars FROM article_search x"
        " WHERE x.article_id = c.article_id OFFSET 0) x"
        + (f" WHERE {' AND '.join(checks)}" if checks else "")
        + " LIMIT :window"
    )
    return _windowed(recent, relevance, f"candidates AS MATERIALIZED ({candidates})"), params


# A single-token query walks the newest articles (one statement) when its tokens are in at least
# this share of them; below it, reading the GIN index's whole posting list costs less than the
# documents a walk tests (measured at 100k articles: the two cost the same near 40% for a word;
# `chars` is a short vector, cheap to test: 株, in 29% of articles, took 8 ms walking and 22 ms
# from the index, while a rare character walked all 100k in 600 ms).
DENSE_SHARE = {"document": 0.4, "chars": 0.1}
_STATS_TTL_S = 600.0
_stats_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[tuple[str, str], float]]] = (
    weakref.WeakKeyDictionary()
)


def _walk_pays(query: SearchQuery, shares: Mapping[tuple[str, str], float]) -> bool:
    """Whether the newest-first walk beats the GIN candidates: single tokens only (a phrase
    needs its positions checked either way), together in at least the `DENSE_SHARE` of their
    columns (the stricter one when a query has both; all terms for AND, taken as independent;
    the most common one for `ask`'s OR)."""
    terms = query.text.required
    if any(len(t.tokens) > 1 or t.prefix for t in terms):
        return False
    columns = ["chars" if t.single_char else "document" for t in terms]
    found = [shares.get((c, t.tokens[0]), 0.0) for c, t in zip(columns, terms, strict=True)]
    share = math.prod(found) if query.match_all else max(found)
    return share >= max(DENSE_SHARE[c] for c in columns)


def _token_shares(session: Session) -> dict[tuple[str, str], float]:
    """(column, token) → share of the indexed articles that hold it, for the tokens common
    enough to matter to `_walk_pays`: the most common elements ANALYZE keeps in `pg_stats`.
    Cached per engine for ten minutes (statistics change only as autovacuum analyzes)."""
    engine = session.get_bind()
    cached = _stats_cache.get(engine)
    if cached is not None and time.monotonic() - cached[0] < _STATS_TTL_S:
        return cached[1]
    rows = session.execute(
        text(
            "SELECT s.attname, e.lexeme, s.most_common_elem_freqs[e.n] AS share"
            " FROM pg_stats s, unnest(s.most_common_elems::text::text[])"
            " WITH ORDINALITY AS e(lexeme, n)"
            " WHERE s.schemaname = current_schema() AND s.tablename = 'article_search'"
            " AND s.attname IN ('document', 'chars')"
            " AND s.most_common_elem_freqs[e.n] >= :share"
        ),
        {"share": min(DENSE_SHARE.values())},
    ).all()
    shares = {(row.attname, row.lexeme): float(row.share) for row in rows}
    _stats_cache[engine] = (time.monotonic(), shares)
    return shares


def _rank(
    rows: list[dict[str, Any]], terms: tuple[Term, ...], now: datetime
) -> list[tuple[dict[str, Any], float]]:
    """Relevance from the database, boosted for recent articles and for a term in the title.
    Runs for every candidate (up to `CANDIDATES`)."""
    ranked = []
    for data in rows:
        published = ensure_utc(_as_datetime(data["published"]))
        data["published"] = published
        age_days = max(0.0, (now - published).total_seconds() / 86400)
        # A floor keeps a term found in nearly every article (idf ≈ 0) ordered by the boosts.
        score = max(float(data["relevance"] or 0.0), 0.0) + 0.01
        score *= 1 + RECENCY_WEIGHT * math.exp(-age_days / RECENCY_DAYS)
        title = normalise(f"{data['title']} {data['title_ja'] or ''}")
        if any(_contains(title, t) for t in terms):
            score *= 1.5
        ranked.append((data, score))
    ranked.sort(key=lambda pair: (-pair[1], -pair[0]["article_id"]))
    return ranked


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _contains(normal_text: str, term: Term) -> bool:
    return _find(normal_text, term) >= 0


def _find(normal_text: str, term: Term) -> int:
    """Where the term first reads in normalised text, or -1: a match of `_pattern` whose Latin
    words stem to the term's tokens (`agents` for `agent`, not `agenda`)."""
    pattern, stems, needle = _pattern(term)
    if needle not in normal_text:
        return -1
    at = 0
    while (match := pattern.search(normal_text, at)) is not None:
        if all(stem(match.group(i)) == token for i, token in stems):
            return match.start()
        at = match.start() + 1
    return -1


_WORD_CHAR = rf"[^\W_{_CJK}]"  # a letter or digit of a Latin (non-CJK) word
_CJK_CHAR = re.compile(rf"[{_CJK}]")


@functools.lru_cache(maxsize=256)
def _pattern(term: Term) -> tuple[re.Pattern[str], tuple[tuple[int, str], ...], str]:
    """Where the term may read in normalised text, the (group, stem) pairs that decide it, and
    a piece every match contains (the first CJK run, or the start of the first Latin word), for
    a cheap test before the pattern runs. The pattern:
    CJK bigrams folded back into one run; between pieces any separators, none needed next to
    CJK (生成AI and 生成 AI are the same tokens, and so are GPT-4o and gpt 4o); a Latin word not
    inside a longer one (ai is not in said), starting with all but the last letter of its stem
    (every word with that stem does) and checked against the stem; a prefix only starts the
    word."""
    pieces: list[str] = []
    for token in term.tokens:
        cjk = _CJK_CHAR.match(token) is not None
        if pieces and cjk and len(token) == 2 and pieces[-1].endswith(token[0]):
            pieces[-1] += token[1:]
        else:
            pieces.append(token)
    pattern = ""
    needle = ""
    stems: list[tuple[int, str]] = []
    for i, piece in enumerate(pieces):
        latin = _CJK_CHAR.match(piece) is None
        if i:
            after_latin = _CJK_CHAR.match(pieces[i - 1][-1]) is None
            pattern += r"[\W_]+" if latin and after_latin else r"[\W_]*"
        elif latin:
            pattern += rf"(?<!{_WORD_CHAR})"
        if not latin or (term.prefix and i == len(pieces) - 1):
            literal = piece
            pattern += re.escape(piece) + ("" if not latin else f"{_WORD_CHAR}*")
        else:
            literal = piece[:-1] if len(piece) > 2 else piece
            pattern += f"({re.escape(literal)}{_WORD_CHAR}*)"
            stems.append((len(stems) + 1, piece))
        needle = needle or literal
    if _CJK_CHAR.match(pieces[-1][-1]) is None:
        pattern += rf"(?!{_WORD_CHAR})"
    return re.compile(pattern), tuple(stems), needle


def _collapse(ranked: list[tuple[dict[str, Any], float]]) -> list[tuple[dict[str, Any], int]]:
    """One hit per story: its best-ranked article, with how many other sources carried it."""
    best: dict[int, tuple[dict[str, Any], float]] = {}
    sources: dict[int, set[int]] = {}
    order: list[int] = []
    for data, score in ranked:
        story = data["story_id"] or data["article_id"]
        sources.setdefault(story, set()).add(data["source_id"])
        if story not in best:
            best[story] = (data | {"score": score}, score)
            order.append(story)
    return [(best[s][0], len(sources[s]) - 1) for s in order]


def _hit(data: dict[str, Any], others: int, parsed: ParsedText) -> SearchHit:
    keywords = _json_list(data["keywords"])
    summary = [*_json_list(data["points"]), data["why_important"] or "", data["title_ja"] or ""]
    return SearchHit(
        article_id=data["article_id"],
        url=data["url"],
        title=data["title"],
        title_ja=data["title_ja"],
        source=data["source"],
        published=data["published"],
        category=data["category"],
        score=round(data["score"], 4),
        snippet=snippet(
            [data["overview"] or "", data["body_text"] or "", data["title"], *summary],
            parsed.required,
        ),
        other_sources=others,
        overview=data["overview"],
        keywords=tuple(keywords or ()),
    )


def _json_list(value: Any) -> list[str]:
    """A JSON list column: text on SQLite, already decoded on PostgreSQL."""
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or ())


SNIPPET_CHARS = 120


def snippet(texts: list[str], terms: tuple[Term, ...]) -> str:
    """About `SNIPPET_CHARS` characters of the original text around the first match of any
    term, from the first text that has one (summary overview, then body, then title, then the
    other summary fields); the first text when none has."""
    normalised = functools.cache(_normalised_with_offsets)  # most matches are in the first text
    # The whole term first, in any text; only then its first token (an `ask` query may match
    # on some words only).
    for exact in (True, False):
        for original in texts:
            normal, origin = normalised(original)
            for term in terms:
                if exact:
                    at = _find(normal, term)
                else:
                    head = Term(term.tokens[:1], prefix=term.prefix and len(term.tokens) == 1)
                    at = _find(normal, head)
                if at >= 0:
                    start = max(0, origin[at] - SNIPPET_CHARS // 3)
                    piece = " ".join(original[start : start + SNIPPET_CHARS].split())
                    prefix = "…" if start > 0 else ""
                    suffix = "…" if start + SNIPPET_CHARS < len(original) else ""
                    return f"{prefix}{piece}{suffix}"
    first = next((t for t in texts if t), "")
    return " ".join(first[:SNIPPET_CHARS].split()) + ("…" if len(first) > SNIPPET_CHARS else "")


def _normalised_with_offsets(original: str) -> tuple[str, Sequence[int]]:
    """The normalised text and, for each of its characters, the index in `original` it came
    from (NFKC can change lengths: "…" becomes "..."). Character by character, through a cache
    (a 2 KB body has a few hundred distinct characters): 0.2 ms a body rather than 2 ms."""
    pieces = list(map(_normal_char, original))
    normal = "".join(pieces)
    # Same length and no character dropped (a lone combining accent normalises to nothing):
    # then every character became exactly one.
    if len(normal) == len(original) and "" not in pieces:
        return normal, range(len(original))
    origin: list[int] = []
    for index, piece in enumerate(pieces):
        origin.extend([index] * len(piece))
    return normal, origin


@functools.lru_cache(maxsize=8192)
def _normal_char(char: str) -> str:
    return char.lower() if char.isascii() else normalise(char)
