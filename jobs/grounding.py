"""Grounding checks: a summary may state only what its own article says.

Two cheap, strict tests catch the usual failures (invented figures, and facts bleeding in from
another article): every number in the summary must occur in the article text the model saw,
and so must every Latin-script name (product, company, model: `HZ-2`, `Nimbus`, `GPT-5`).
"""

from __future__ import annotations

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


def numbers_in(text: str) -> set[str]:
    """Numbers as written, without thousands separators and trailing `.0`."""
    found = set()
    for raw in _NUMBER.findall(nfkc(text)):
        value = raw.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".")
        found.add(value)
    return found


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
    invented_numbers = sorted(numbers_in(summary) - numbers_in(source))
    if invented_numbers:
        problems.append("numbers not in the article: " + ", ".join(invented_numbers))
    unknown_names = sorted(n for n in names_in(summary) - GENERIC_TERMS if n not in source_lower)
    if unknown_names:
        problems.append("names not in the article: " + ", ".join(unknown_names))
    return problems
