"""HTML-to-text benchmark: `jobs.text.html_to_text` (lxml, one streaming pass) against the
regex stripper it replaced, on hostile markup and on the real-feeds corpus, in the same run.

    uv run python bench/html_text.py            # 2-3 minutes, nearly all of it the old stripper
    uv run python bench/html_text.py --quick    # old stripper only up to 116 KB (10 s)
    uv run python bench/html_text.py --tiny     # 4 KB inputs, no corpus: a smoke run (1 s)

For each hostile shape (repeated `<script>` as in issue 9, unterminated comments, `<` without
`>`, tag soup, 100,000 nested elements) it times both at sizes where the old one finishes, and
the new one at the 10 MB feed cap (the new one best of 3, the old one once). The old stripper
is quadratic on the first three shapes (every unmatched `<script`, `<!--` or `<` makes a lazy
`.*?` or `[^>]*` scan to the end of the input), so at 10 MB it is not run: the figure printed
is extrapolated from the largest size measured (time × (10 MB / size)², marked "*"). With
`../shared/realfeeds/` present, it also runs both over every entry's content, summary and title
of the 77 real feeds and counts identical outputs.

A measurement, not a test: it exits 0 whatever the numbers, 1 only when the new function's
output is wrong on a hostile case.
"""

from __future__ import annotations

import argparse
import gzip
import html
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.text import _tidy, html_to_text

MB = 1_000_000
CAP = 10 * MB  # AINEWS_MAX_FEED_BYTES default (10 MiB; 10 MB here for round figures)
REALFEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "realfeeds"

# ── the old implementation (jobs/text.py before issue 9), kept as the baseline ─────────────────

_BLOCK_TAGS = re.compile(
    r"<\s*(?:br|/p|/div|/li|/h[1-6]|/tr|/blockquote|/section|/article|/pre)\b[^>]*>", re.I
)
_DROP_ELEMENTS = re.compile(r"<(script|style|noscript|template)\b.*?</\1\s*>", re.I | re.S)
_COMMENTS = re.compile(r"<!--.*?-->", re.S)
_TAGS = re.compile(r"<[^>]*>")


def regex_to_text(markup: str) -> str:
    """The regex stripper that `html_to_text` replaced (quadratic on unclosed markup)."""
    if "<" not in markup and "&" not in markup:
        return _tidy(markup)
    text = _COMMENTS.sub(" ", markup)
    text = _DROP_ELEMENTS.sub(" ", text)
    text = _BLOCK_TAGS.sub("\n", text)
    text = _TAGS.sub(" ", text)
    return _tidy(html.unescape(text))


# ── hostile inputs ────────────────────────────────────────────────────────────────────────────


def _repeat(chunk: str, size: int) -> str:
    return chunk * max(1, size // len(chunk))


SOUP_CHUNK = (
    '<div class="post"><p>Alpha <b>beta <i>gamma</b> delta<br><span>epsilon</span>'
    '<a href="https://e.example/x?a=1&amp;b=2">zeta</a></p><ul><li>eta<li>theta</ul></div>\n'
)


@dataclass(frozen=True)
class Shape:
    name: str
    make: Callable[[int], str]
    expect: Callable[[str], bool]  # a check of the new function's output
    quadratic: bool  # for the old stripper
    old_sizes: tuple[int, ...]


SHAPES = [
    Shape(
        "repeated <script> (issue 9)",
        lambda n: "before " + _repeat("<script>", n),
        lambda out: out == "before",
        True,
        (58_000, 116_000, 464_000),
    ),
    Shape(
        "unterminated <!--",
        lambda n: "before " + _repeat("<!--", n),
        lambda out: out == "before",
        True,
        (58_000, 116_000, 232_000),
    ),
    Shape(
        "'<' without '>'",
        lambda n: "a " + _repeat("<", n) + " z",
        lambda out: out.startswith("a <<") and out.endswith("< z"),
        True,
        (58_000, 116_000, 232_000),
    ),
    Shape(
        "tag soup (closed and unclosed)",
        lambda n: _repeat(SOUP_CHUNK, n),
        lambda out: out.startswith("Alpha beta gamma delta\nepsilon zeta\neta\ntheta"),
        False,
        (464_000, CAP),
    ),
    Shape(
        "100,000 nested <div>",
        lambda n: "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "after",
        lambda out: out == "deep\n\nafter",
        False,
        (0,),
    ),
]


def best_of(fn: Callable[[str], str], markup: str, repeat: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(markup)
        best = min(best, time.perf_counter() - start)
    return best, out


def _ratio(old: float, new: float) -> str:
    ratio = old / new
    return f"{ratio:9.2f}×" if ratio < 10 else f"{ratio:9,.0f}×"


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n // 1000} KB"


def hostile(largest: int, cap: int) -> bool:
    """Both strippers on each shape up to `largest` characters, the new one also at `cap`."""
    ok = True
    print(f"{'input':32} {'size':>8} {'old (regex)':>13} {'new (lxml)':>12} {'old / new':>12}")
    for shape in SHAPES:
        sizes = [s for s in shape.old_sizes if s <= largest] or [min(shape.old_sizes[0], largest)]
        last_old: tuple[int, float] | None = None
        for size in sizes:
            markup = shape.make(size)
            new, out = best_of(html_to_text, markup, 3)
            old, _ = best_of(regex_to_text, markup, 1)
            last_old = (len(markup), old)
            if not shape.expect(out):
                print(f"  WRONG OUTPUT from html_to_text on {shape.name}: {out[:80]!r}")
                ok = False
            print(
                f"{shape.name:32} {_size(len(markup)):>8} {old:12.3f}s {new * 1000:9.2f} ms "
                f"{_ratio(old, new):>12}"
            )
        if shape.quadratic and last_old is not None:
            markup = shape.make(cap)
            new, out = best_of(html_to_text, markup, 3)
            ok = ok and shape.expect(out)
            length, old = last_old
            estimate = old * (len(markup) / length) ** 2
            print(
                f"{shape.name:32} {_size(len(markup)):>8} {estimate:11,.0f}s* {new * 1000:9.2f} ms "
                f"{_ratio(estimate, new):>12}"
            )
    print("* extrapolated (quadratic) from the largest size measured; not run")
    return ok


# ── the real-feeds corpus ─────────────────────────────────────────────────────────────────────


def corpus_fragments() -> list[str]:
    import feedparser

    fragments: list[str] = []
    for path in sorted(REALFEEDS.iterdir()):
        if path.name in ("README.md", "manifest.json"):
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
        for entry in parsed.entries:
            values = [c.get("value", "") for c in entry.get("content", [])]
            values += [entry.get("summary", "") or "", entry.get("title", "") or ""]
            fragments.extend(v for v in values if v)
    return fragments


def corpus() -> None:
    if not REALFEEDS.is_dir():
        print(f"\nreal feeds: {REALFEEDS} absent, skipped")
        return
    fragments = corpus_fragments()
    size = sum(len(f) for f in fragments)
    times = {}
    for name, fn in (("old", regex_to_text), ("new", html_to_text)):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for fragment in fragments:
                fn(fragment)
            best = min(best, time.perf_counter() - start)
        times[name] = best
    same = spaces = other = 0
    for fragment in fragments:
        old, new = regex_to_text(fragment), html_to_text(fragment)
        if old == new:
            same += 1
        elif "".join(old.split()) == "".join(new.split()):
            spaces += 1
        else:
            other += 1
    print(
        f"\nreal feeds: {len(fragments):,} fragments ({size / MB:.1f} M characters) from "
        f"{REALFEEDS}\n"
        f"  old {times['old']:.3f} s, new {times['new']:.3f} s (new / old = "
        f"{times['new'] / times['old']:.2f}×)\n"
        f"  identical output: {same:,}; differing only in whitespace: {spaces:,}; "
        f"other: {other:,}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="old stripper only up to 116 KB")
    size.add_argument("--tiny", action="store_true", help="4 KB inputs, 100 KB cap, no corpus")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}")
    largest, cap = (4_000, 100_000) if args.tiny else (116_000 if args.quick else CAP, CAP)
    ok = hostile(largest, cap)
    if not args.tiny:
        corpus()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
