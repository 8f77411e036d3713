"""Search filters as users type them: `category:infra`, `source:ITmedia`, `since:2026-02-01`,
`since:7d`. Shared by every platform; the CLI passes the same values as options."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from storage.taxonomy import Taxonomy

_FILTER = re.compile(r"(?<!\S)(category|cat|source|src|since|page):(\"[^\"]*\"|\S+)", re.I)
PAGE_SIZE = 10
MAX_PAGE = 1000
_RELATIVE = re.compile(r"(\d+)\s*([dhw日週])", re.I)


class FilterError(ValueError):
    """A filter value the user must correct; the message says how."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    text: str
    category: str | None = None
    source: str | None = None
    since: datetime | None = None
    limit: int = PAGE_SIZE
    page: int = 1


def parse_since(value: str, *, now: datetime, tz: tzinfo) -> datetime:
    """`2026-02-01` (local midnight) or a relative `7d`, `24h`, `2w`."""
    value = value.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        hours = {"h": 1, "d": 24, "日": 24, "w": 168, "週": 168}[unit]
        try:
            return now - timedelta(hours=amount * hours)
        except OverflowError:  # since:9999999d reaches before year 1
            raise FilterError(f"since:{value} は遠すぎます（例: 7d, 24h, 2026-02-01）") from None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FilterError(
            f"since:{value} は日付（2026-02-01）か期間（7d, 24h）で指定してください"
        ) from None
    return datetime.combine(day, time(0), tzinfo=tz)


def resolve_category(value: str, taxonomy: Taxonomy) -> str:
    category = taxonomy.resolve(value)
    if category is None:
        raise FilterError(
            f"カテゴリー「{value}」はありません。使えるもの: {', '.join(taxonomy.slugs)}"
        )
    return category.slug


def parse_page(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise FilterError(f"page:{value} は 1〜{MAX_PAGE} の数で指定してください（例: page:2）")
    return int(value)


def parse_search_text(
    text: str, *, taxonomy: Taxonomy, now: datetime, tz: tzinfo, limit: int = PAGE_SIZE
) -> SearchRequest:
    """Split `半導体 category:infra since:7d page:2` into the query and its filters."""
    category = source = None
    since = None
    page = 1
    for match in _FILTER.finditer(text):
        key, value = match.group(1).lower(), match.group(2).strip('"')
        if key in ("category", "cat"):
            category = resolve_category(value, taxonomy)
        elif key in ("source", "src"):
            source = value
        elif key == "page":
            page = parse_page(value)
        else:
            since = parse_since(value, now=now, tz=tz)
    query = " ".join(_FILTER.sub(" ", text).split())
    return SearchRequest(
        text=query, category=category, source=source, since=since, limit=limit, page=page
    )


def with_page(text: str, page: int) -> str:
    """The same command text asking for another page (what the 前へ / 次へ buttons run)."""
    kept = re.sub(r"(?<!\S)page:\S+", " ", text, flags=re.I)
    return f"{' '.join(kept.split())} page:{page}"
