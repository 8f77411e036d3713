"""Grounding checks: a summary may state only what its own article says.

Two cheap, strict tests catch the usual failures (invented figures, and facts bleeding in from
another article): every number in the summary must occur in the article text the model saw,
and so must every Latin-script name (product, company, model: `HZ-2`, `Nimbus`, `GPT-5`).

A Japanese summary of an English article writes "$2 billion" as 20億ドル and "April 1" as
4月1日, so numbers compare by value where a scale word is attached (万/億/兆, thousand/million/
billion, k/M/B) and English month names count as their numbers. A scaled number must match by
value: 120万 is not grounded by an article that says 120億.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from jobs.text import nfkc

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# Generic terms a Japanese summary may use without the article spelling them out.
GENERIC_TERMS = frozenset(
    "ai ml llm llms gpu gpus cpu api apis sdk oss it iot dx saas ceo cto cfo eu us "
    "usa uk un gpt genai rag faq pc os web ui ux id q1 q2 q3 q4 m&a ipo tpu npu npus "
    "hpc b2b b2c r&d".split()
)


_QUANTITY = re.compile(
    r"(\d+(?:[.,]\d+)*)\s*(万|億|兆|thousand|million|billion|trillion|bn|[kmb](?![a-z]))?", re.I
)
_SCALES = {
    "万": 1e4, "億": 1e8, "兆": 1e12, "thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6,
    "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12,
}  # fmt: skip
_JAPANESE_UNITS = {"兆": 3, "億": 2, "万": 1}
_MONTHS = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?(?![a-z])", re.I
)
_MONTH_NUMBERS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip


def _plain(raw: str) -> str:
    value = raw.replace(",", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".")
    return value


def quantities_in(text: str) -> list[tuple[str, float, bool]]:
    """(number as written, its value, whether a scale word was attached) for each number."""
    found: list[tuple[str, float, bool]] = []
    previous_end, previous_unit = -1, ""
    for match in _QUANTITY.finditer(nfkc(text)):
        raw, unit = _plain(match.group(1)), match.group(2) or ""
        try:
            value = float(raw) * _SCALES.get(unit.lower(), 1.0)
        except ValueError:  # "1.000.000": not one number
            continue
        if match.start() == previous_end and _JAPANESE_UNITS.get(previous_unit, 0) > (
            _JAPANESE_UNITS.get(unit, 0) or 1
        ):
            # 3億1000万 is one number: add the smaller unit's part to the one before.
            written, total, _ = found.pop()
            found.append((written + raw, total + value, True))
        else:
            found.append((raw, value, bool(unit)))
        previous_end, previous_unit = match.end(), unit
    return found


def invented_numbers(summary: str, source: str) -> list[str]:
    """Numbers of the summary that the source does not support, as written in the summary."""
    source_raw = numbers_in(source) | {
        str(_MONTH_NUMBERS[m.lower()]) for m in _MONTHS.findall(nfkc(source))
    }
    source_values = [value for _, value, _ in quantities_in(source)]

    def supported(raw: str, value: float, scaled: bool) -> bool:
        if not scaled and raw in source_raw:
            return True
        return any(math.isclose(value, v, rel_tol=1e-9) for v in source_values)

    return sorted(
        {raw for raw, value, scaled in quantities_in(summary) if not supported(raw, value, scaled)}
    )


def numbers_in(text: str) -> set[str]:
    """Numbers as written, without thousands separators and trailing `.0`."""
    return {_plain(raw) for raw in _NUMBER.findall(nfkc(text))}


def names_in(text: str) -> set[str]:
    return {
        m.lower()
        for m in _NAME.findall(nfkc(text))
        if (any(c.isupper() for c in m) or any(c.isdigit() for c in m)) and len(m) > 1
    }


def grounding_problems(summary_texts: Iterable[str], source_text: str) -> list[str]:
    """Human-readable reasons the summary is not grounded in `source_text` (empty when it is)."""
    summary = "\n".join(summary_texts)
    source = nfkc(source_text)
    source_lower = source.lower()
    problems = []
    invented = invented_numbers(summary, source)
    if invented:
        problems.append("numbers not in the article: " + ", ".join(invented))
    unknown_names = sorted(
        n for n in names_in(summary) - GENERIC_TERMS if not _mentions(source_lower, n)
    )
    if unknown_names:
        problems.append("names not in the article: " + ", ".join(unknown_names))
    return problems


def _mentions(text_lower: str, name: str) -> bool:
    """`name` occurs as a whole word: "gpt-4" is not in "gpt-4o", nor "meta" in "metadata"."""
    return re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text_lower) is not None
