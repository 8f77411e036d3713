"""Scale-out benchmark: one full poll round of N concurrent `ainews poll` processes on one
PostgreSQL database, against one process, and one process on SQLite for comparison.

Issue 11's workload (`uv run python bench/scale.py`): 5,000 feeds × 5 items served by
bench/poll.py's FeedServer from 50 loopback hosts (127.0.0.2 …), 50 ms per request. Per round:

1. `ainews sources import` of the feeds' OPML (not timed), so every source is due, once into
   `ainews_bench_<random>_template` on the `--postgres-url` server and once into a SQLite file;
2. a fresh database per PostgreSQL round: `ainews_bench_<random>`, a copy of the template,
   dropped after the round (the template at the end);
3. N `ainews poll --json` subprocesses started at once (a barrier), with the app's default
   settings; they share the work by claiming due sources in the database
   (`storage.claims.claim_due_sources`, `FOR UPDATE SKIP LOCKED` on PostgreSQL);
4. while they run: the RSS of each process tree (bench/poll.py's TreeSampler) and the bench
   database's connections in `pg_stat_activity`, sampled;
5. the check: every article row against the generated entries — a duplicate is one (source,
   guid) stored twice, a lost item an entry missing — and one request per feed at the server.

The 1-process PostgreSQL round is the naive baseline of the 2- and 3-process rounds. It is a
measurement: exit 0 whatever the speed-up, exit 1 when the run is invalid (a process failed,
a duplicate, a lost item, a feed fetched twice or not at all).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poll import (  # bench/poll.py: the script's directory is on sys.path
    FeedServer,
    RunResult,
    _app_default,
    _load_average,
    compile_project,
    generate_feeds,
    loopback_hosts,
    run_ainews,
    write_opml,
)
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from storage.db import normalise_database_url

_GUID = re.compile(rb"urn:bench:(\d+):(\d+):[0-9a-f]{8}")
_FEED_PATH = re.compile(r"/feed/(\d+)\.xml$")


@dataclass(frozen=True, slots=True)
class Check:
    rows: int
    duplicates: int
    lost: int
    unexpected: int


@dataclass(slots=True)
class Round:
    backend: str
    processes: int
    wall_s: float
    runs: list[RunResult]
    reports: list[dict[str, Any]]
    check: Check
    requests: int
    peak_connections: int | None
    peak_active: int | None
    load_before: str
    problems: list[str] = field(default_factory=list)


class ConnectionSampler:
    """Counts the bench database's backends in `pg_stat_activity` every `interval` seconds,
    over a connection to the server's admin database (so the sampler is not counted)."""

    def __init__(self, admin: Engine, database: str, interval: float = 0.05) -> None:
        self.admin = admin
        self.database = database
        self.interval = interval
        self.peak = 0
        self.peak_active = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-sampler", daemon=True)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        query = text(
            "SELECT count(*), count(*) FILTER (WHERE state = 'active') "
            "FROM pg_stat_activity WHERE datname = :name"
        )
        with self.admin.connect() as connection:
            while not self._stop.is_set():
                total, active = connection.execute(query, {"name": self.database}).one()
                self.peak = max(self.peak, int(total))
                self.peak_active = max(self.peak_active, int(active))
                self._stop.wait(self.interval)


def expected_entries(bodies: list[bytes]) -> set[tuple[int, str]]:
    """(feed index, guid) of every generated entry."""
    entries: set[tuple[int, str]] = set()
    for i, body in enumerate(bodies):
        for match in _GUID.finditer(body):
            assert int(match.group(1)) == i
            entries.add((i, match.group(0).decode()))
    return entries


def check_articles(url: str, expected: set[tuple[int, str]]) -> Check:
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT s.url, a.guid FROM articles a JOIN sources s ON s.id = a.source_id")
            ).all()
    finally:
        engine.dispose()
    seen: Counter[tuple[int, str]] = Counter()
    for source_url, guid in rows:
        match = _FEED_PATH.search(str(source_url))
        seen[(int(match.group(1)) if match else -1, str(guid))] += 1
    return Check(
        rows=len(rows),
        duplicates=sum(n - 1 for n in seen.values() if n > 1),
        lost=len(expected - seen.keys()),
        unexpected=len(seen.keys() - expected),
    )


def poll_round(*, processes: int, env: dict[str, str], cwd: Path) -> tuple[float, list[RunResult]]:
    """N `ainews poll --json` started together; wall time from the first spawn to the last
    exit."""
    barrier = threading.Barrier(processes)
    results: list[RunResult | BaseException | None] = [None] * processes

    def one(k: int) -> None:
        try:
            barrier.wait()
            results[k] = run_ainews(["poll", "--json"], env, cwd)
        except BaseException as exc:
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs: list[RunResult] = []
    for result in results:
        if not isinstance(result, RunResult):
            raise RuntimeError(f"a poll process could not run: {result!r}")
        runs.append(result)
    wall = max(r.ended for r in runs) - min(r.started for r in runs)
    return wall, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, help="feeds (5000; --tiny 30)")
    parser.add_argument("--items", type=int, help="items per feed (5; --tiny 2)")
    parser.add_argument("--hosts", type=int, help="loopback hosts, 127.0.0.2 … (50; --tiny 5)")
    parser.add_argument("--latency", type=float, help="s per request (0.05; --tiny 0.01)")
    parser.add_argument(
        "--processes", help="process counts on PostgreSQL, comma-separated (1,2,3; --tiny 1,2)"
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="server to create (and drop) the bench database on; its own database is untouched",
    )
    parser.add_argument("--tiny", action="store_true", help="the smoke test's size")
    args = parser.parse_args(argv)
    tiny = args.tiny
    feeds_n: int = args.feeds or (30 if tiny else 5000)
    items: int = args.items or (2 if tiny else 5)
    hosts = loopback_hosts(args.hosts or (5 if tiny else 50))
    latency: float = args.latency if args.latency is not None else (0.01 if tiny else 0.05)
    counts = [int(n) for n in (args.processes or ("1,2" if tiny else "1,2,3")).split(",")]
    if 1 not in counts:
        parser.error("--processes must include 1: it is the baseline")

    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join([*hosts, "localhost"])
    compile_project()
    load_start = _load_average()
    workdir = Path(tempfile.mkdtemp(prefix="ainews-scale-"))
    server_url = make_url(normalise_database_url(args.postgres_url))
    name = f"ainews_bench_{secrets.token_hex(6)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    server: FeedServer | None = None
    created: list[str] = []
    rounds: list[Round] = []
    try:
        started = time.perf_counter()
        feeds = generate_feeds(feeds_n, items)
        bodies = [f.body for f in feeds]
        expected = expected_entries(bodies)
        print(
            f"generated {feeds_n} feeds × {items} items, {sum(map(len, bodies)) / 1e6:.1f} MB "
            f"in {time.perf_counter() - started:.1f} s"
        )
        if len(expected) != feeds_n * items:
            raise RuntimeError(f"{len(expected)} distinct guids, expected {feeds_n * items}")
        server = FeedServer(feeds, latency, hosts)
        server.start()
        print(
            f"feed server on {len(hosts)} hosts {hosts[0]} … {hosts[-1]}, {latency * 1000:.0f} ms"
        )
        opml = workdir / "bench.opml"
        write_opml(opml, server.urls())
        base_env = {
            **os.environ,
            "AINEWS_SOURCES_FILE": str(workdir / "no-sources.toml"),  # do not seed real feeds
        }
        for variable in (
            "OPENAI_API_KEY", "AINEWS_POLL_CONCURRENCY", "AINEWS_POLL_PER_HOST",
            "AINEWS_PARSE_WORKERS", "AINEWS_POLL_INTERVAL", "AINEWS_FULLTEXT_PER_POLL",
        ):  # fmt: skip
            base_env.pop(variable, None)  # the app's defaults

        def imported(url: str, var: str) -> dict[str, str]:
            env = {**base_env, "DATABASE_URL": url, "AINEWS_VAR_DIR": str(workdir / var)}
            result = run_ainews(["sources", "import", str(opml)], env, workdir)
            if result.returncode != 0:
                raise RuntimeError(f"sources import failed:\n{result.stderr[-2000:]}")
            return env

        # PostgreSQL: the sources are imported once into a template; each round's database is
        # a copy of it (CREATE DATABASE … TEMPLATE), so every round starts from the same state.
        # Both imports (not timed) run at once.
        template = f"{name}_template"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{template}"'))
        created.append(template)
        sqlite_url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        with ThreadPoolExecutor(1) as pool:
            pg_import = pool.submit(imported, _render(server_url.set(database=template)), "var-t")
            sqlite_env = imported(sqlite_url, "var-sqlite")
            pg_import.result()

        plan = [("postgresql", n) for n in sorted(set(counts))] + [("sqlite", 1)]
        for k, (backend, processes) in enumerate(plan):
            if backend == "postgresql":
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
                created.append(name)
                url = _render(server_url.set(database=name))
                env = {**base_env, "DATABASE_URL": url, "AINEWS_VAR_DIR": str(workdir / f"var{k}")}
            else:
                url, env = sqlite_url, sqlite_env
            load_before = _load_average()
            requests_before = server.stats.requests
            label = f"{processes} × ainews poll on {backend}"
            print(f"{label}: running (load average {load_before}) …", flush=True)
            if backend == "postgresql":
                with ConnectionSampler(admin, name) as sampler:
                    wall, runs = poll_round(processes=processes, env=env, cwd=workdir)
                peak: int | None = sampler.peak
                peak_active: int | None = sampler.peak_active
            else:
                wall, runs = poll_round(processes=processes, env=env, cwd=workdir)
                peak = peak_active = None
            requests = server.stats.requests - requests_before
            problems: list[str] = []
            reports: list[dict[str, Any]] = []
            for run in runs:
                try:
                    reports.append(run.json())
                except RuntimeError as exc:
                    problems.append(str(exc)[-1500:])
                    reports.append({})
            check = check_articles(url, expected)
            polled = sum(int(r.get("sources", 0)) for r in reports)
            new = sum(int(r.get("new", 0)) for r in reports)
            failed = sum(int(r.get("failed", 0)) for r in reports)
            if polled != feeds_n:
                problems.append(f"{polled} sources polled in all, expected {feeds_n}")
            if new != feeds_n * items:
                problems.append(f"{new} new articles reported, expected {feeds_n * items}")
            if failed:
                problems.append(f"{failed} sources failed")
            if check.duplicates or check.lost or check.unexpected:
                problems.append(
                    f"{check.duplicates} duplicates, {check.lost} lost, "
                    f"{check.unexpected} unexpected rows"
                )
            if requests != feeds_n:
                problems.append(f"the server answered {requests} requests, expected {feeds_n}")
            split = " + ".join(str(r.get("sources", "?")) for r in reports)
            print(f"  {wall:.2f} s, sources per process: {split}, {check.rows} articles")
            rounds.append(
                Round(
                    backend, processes, wall, runs, reports, check, requests, peak, peak_active,
                    load_before, problems,
                )
            )  # fmt: skip
            if backend == "postgresql":
                _drop(admin, name)
                created.remove(name)
        print_report(
            rounds, feeds_n=feeds_n, items=items, hosts=hosts, latency=latency,
            load_start=load_start, bytes_=sum(map(len, bodies)),
        )  # fmt: skip
        invalid = [(r, p) for r in rounds for p in r.problems]
        if invalid:
            print("\nINVALID RUN:")
            for r, problem in invalid:
                print(f"  - {r.processes} × {r.backend}: {problem}")
            return 1
        return 0
    finally:
        if server is not None:
            server.stop()
        for database in created:
            _drop(admin, database)
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def _drop(admin: Engine, database: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def print_report(
    rounds: list[Round],
    *,
    feeds_n: int,
    items: int,
    hosts: list[str],
    latency: float,
    load_start: str,
    bytes_: int,
) -> None:
    cpus = os.cpu_count() or 1
    rule = "─" * 100
    print()
    print(rule)
    print(f"machine: {cpus} CPUs; load average at start {load_start}, at end {_load_average()}")
    print(
        f"workload: {feeds_n} feeds × {items} items ({bytes_ / 1e6:.1f} MB) on {len(hosts)} "
        f"loopback hosts, {latency * 1000:.0f} ms per request; every source due"
    )
    print(
        "settings: the app's defaults in every process — "
        f"AINEWS_POLL_CONCURRENCY={_app_default('AINEWS_POLL_CONCURRENCY')}, "
        f"AINEWS_POLL_PER_HOST={_app_default('AINEWS_POLL_PER_HOST')} (per process), "
        f"AINEWS_PARSE_WORKERS={_app_default('AINEWS_PARSE_WORKERS')} (one per CPU, per process)"
    )
    print(rule)
    print(
        f"  {'round':<22} {'wall':>8} {'sources per process':<22} {'dup':>4} {'lost':>5} "
        f"{'requests':>8} {'DB conns (active)':>17}  peak RSS per process: main / tree"
    )
    for r in rounds:
        split = " + ".join(str(x.get("sources", "?")) for x in r.reports)
        conns = "—" if r.peak_connections is None else f"{r.peak_connections} ({r.peak_active})"
        rss = ", ".join(f"{x.single_rss_mb:.0f} / {x.tree_rss_mb:.0f} MB" for x in r.runs)
        print(
            f"  {f'{r.processes} × {r.backend}':<22} {r.wall_s:7.2f}s {split:<22} "
            f"{r.check.duplicates:>4} {r.check.lost:>5} {r.requests:>8} {conns:>17}  {rss}"
        )
    print("  per-process wall time (spawn → exit) and tree CPU time:")
    for r in rounds:
        detail = ", ".join(f"{x.seconds:.2f} s / {x.tree_cpu_s:.2f} s CPU" for x in r.runs)
        print(f"    {f'{r.processes} × {r.backend}':<20} {detail}   (load before {r.load_before})")
    print(rule)
    baseline = next(r for r in rounds if r.backend == "postgresql" and r.processes == 1)
    for r in rounds:
        if r.backend == "postgresql" and r.processes > 1:
            print(
                f"  speed-up, {r.processes} vs 1 processes (PostgreSQL){'':<8}"
                f"{baseline.wall_s / r.wall_s:6.2f}×"
            )
    for r in rounds:
        if r.backend == "sqlite":
            print(
                f"  SQLite 1 process / PostgreSQL 1 process (wall){'':<5}"
                f"{r.wall_s / baseline.wall_s:6.2f}×"
            )
    print(rule)


if __name__ == "__main__":
    sys.exit(main())
