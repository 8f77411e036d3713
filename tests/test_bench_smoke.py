"""Every bench runs at a tiny size and prints its ratio, so that a bench cannot rot unnoticed
between the runs that measure (a renamed function or a new NOT NULL column breaks it here).

The numbers are not checked: at this size and on a shared machine they mean nothing. The
benches run as the README runs them (`python bench/x.py …`), all at once, since most of their
time is waiting (servers with latency, process start-up) rather than CPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bot.config import PROJECT_ROOT
from tests.conftest import POSTGRES_URL, UNDER_CI

_ACK_TINY = [
    "--commands", "10", "--feeds", "4", "--items", "2", "--rate", "0", "--lead", "0.05",
    "--model-latency", "0.05", "--feed-latency", "0.01", "--answer-timeout", "60",
]  # fmt: skip

# bench script, its tiny arguments, the line that carries its ratio against the naive baseline.
BENCHES: dict[str, tuple[list[str], str]] = {
    "poll.py": (
        ["--feeds", "5", "--items", "2", "--latency", "0.01"],
        r"naive / poll\s+[\d.,]+×",
    ),
    "search.py": (
        ["--articles", "100", "--queries", "10", "--backend", "sqlite"],
        r"ratio scan/indexed, p50\s+[\d.,]+×",
    ),
    "html_text.py": (["--tiny"], r"repeated <script> \(issue 9\)\s+4 KB .* [\d.,]+×"),
    "slack_ack.py": (
        [*_ACK_TINY, "--post-interval", "0"],
        r"ratio naive \(idle\) / busy\s+[\d.,]+×",
    ),
    "discord_ack.py": (_ACK_TINY, r"ratio naive \(idle\) / busy\s+[\d.,]+×"),
    # creates (and drops) its own ainews_bench_… databases on the tests' PostgreSQL server
    "scale.py": (
        ["--tiny", "--postgres-url", POSTGRES_URL],
        r"speed-up, 2 vs 1 processes \(PostgreSQL\)\s+[\d.,]+×",
    ),
}
# Benches that need PostgreSQL: without AINEWS_TEST_POSTGRES_URL they are skipped, as the
# PostgreSQL tests are (and fail under CI).
_NEEDS_POSTGRES = {"scale.py"}
_ENV_PREFIXES = ("AINEWS_", "OPENAI_", "SLACK_", "DISCORD_", "DATABASE_URL", "TIKTOKEN_")


@dataclass
class Run:
    process: subprocess.Popen[str]
    output: str | None = None

    def finish(self) -> tuple[int, str]:
        if self.output is None:
            self.output, _ = self.process.communicate(timeout=240)
        return self.process.returncode, self.output


@pytest.fixture(scope="module")
def runs() -> Iterator[dict[str, Run]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES)}
    started = {
        name: Run(
            subprocess.Popen(
                [sys.executable, str(PROJECT_ROOT / "bench" / name), *args],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        for name, (args, _) in BENCHES.items()
        if POSTGRES_URL or name not in _NEEDS_POSTGRES
    }
    try:
        yield started
    finally:
        for run in started.values():
            if run.process.poll() is None:
                run.process.kill()
                run.process.communicate()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(BENCHES))
def test_bench_runs_tiny_and_prints_its_ratio(runs: dict[str, Run], name: str) -> None:
    if name not in runs:
        if UNDER_CI:
            pytest.fail(f"bench/{name} needs AINEWS_TEST_POSTGRES_URL under CI")
        pytest.skip(f"bench/{name} needs AINEWS_TEST_POSTGRES_URL")
    returncode, output = runs[name].finish()
    assert returncode == 0, f"bench/{name} exited {returncode}:\n{output[-3000:]}"
    assert re.search(BENCHES[name][1], output), f"bench/{name} printed no ratio:\n{output[-3000:]}"


def test_every_bench_is_smoke_run() -> None:
    scripts = {p.name for p in (PROJECT_ROOT / "bench").glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(BENCHES)
