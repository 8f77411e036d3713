"""Poll benchmark: the real `ainews poll` against local feeds, compared with a naive loop.

Two workloads: single-host (default: 500 feeds × 20 items on 127.0.0.1, 50 ms per request) and
`--multi-host` (issue 9: 300 feeds × 10 items spread over 30 loopback hosts 127.0.0.2 …
127.0.0.31, 100 ms per request, the app's own connection limits). One run
(`uv run python bench/poll.py [--multi-host]`):

0. compiles the project's modules (as `make sync` does), so start-up is not a recompile;
1. generates N realistic RSS 2.0 feeds (Japanese and English, HTML bodies) in memory;
2. serves them from a local aiohttp server (background thread, own event loop) listening on
   every host, with a fixed latency per request, ETag / Last-Modified validators and 304s;
3. imports them as an OPML file into a fresh SQLite database (not timed);
4. times `ainews poll --json` as a subprocess (start-up included) and checks every item is new,
   sampling the process tree and the database files every 50 ms to say where the time went;
5. times `ainews poll --json --force` (expects a 304 for every feed, no new rows);
6. times a naive sequential loop of `feedparser.parse(url)`;
7. times the parse floor: `feedparser.parse(bytes)` of the same bodies, sequentially, in process;
8. prints a table with the ratios against the targets.

It is a measurement, not a test: a missed target prints MISS and still exits 0. It exits 1 only
when the run itself is invalid (a command failed or the counts are wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import feedparser
from aiohttp import web


@dataclass(frozen=True, slots=True)
class Mode:
    """A workload with its targets. `None` for concurrency / per-host means the app's default
    (the setting is not passed), which is what a deployment polling many publishers runs with."""

    name: str
    feeds: int
    items: int
    latency: float
    hosts: int
    concurrency: int | None
    per_host: int | None
    naive_over_poll: float  # the poller must be at least this many times faster than naive
    poll_over_floor: float  # and at most this many times the single-process parse time


SINGLE_HOST = Mode("single-host", 500, 20, 0.05, 1, 32, 64, 10.0, 1.5)
# Issue 9's workload: 300 feeds on 30 hosts, 10 feeds per host, 100 ms per request.
MULTI_HOST = Mode("multi-host", 300, 10, 0.1, 30, None, None, 12.0, 2.0)

# ── feed generation ──────────────────────────────────────────────────────────────────────────

_EN_SUBJECTS = [
    "OpenAI", "Anthropic", "Google DeepMind", "Meta AI", "Mistral", "Hugging Face", "NVIDIA",
    "Microsoft Research", "Stability AI", "Cohere", "xAI", "Sakana AI", "AI2", "Apple",
]  # fmt: skip
_EN_VERBS = [
    "releases", "open-sources", "benchmarks", "announces", "details", "previews", "ships",
    "publishes", "expands", "retires",
]  # fmt: skip
_EN_OBJECTS = [
    "a long-context language model", "a reasoning benchmark", "an inference server",
    "a multimodal assistant", "a distilled coding model", "new safety evaluations",
    "an agent framework", "a speech recognition model", "a retrieval toolkit",
    "GPU kernels for attention", "a small on-device model", "a dataset of scientific papers",
]  # fmt: skip
_EN_QUALIFIERS = [
    "for legal document review", "for hospitals", "in Japan", "for customer support teams",
    "with a million-token context", "for chip design", "on Arm laptops", "for call centres",
    "under an Apache licence", "for climate modelling", "for small businesses", "in Europe",
    "for protein folding", "for robotics research", "for financial auditors", "for teachers",
    "after a safety review", "with cheaper pricing", "for game studios", "for translators",
]  # fmt: skip
_EN_TOPICS = [
    "sparse mixture-of-experts", "speculative decoding", "watermarking", "quantisation",
    "tool use", "synthetic data", "preference tuning", "vision encoders", "memory layers",
    "retrieval caching", "KV-cache compression", "red teaming", "agent sandboxes",
    "long-form video", "speech synthesis", "on-device inference", "federated learning",
]  # fmt: skip
_EN_SENTENCES = [
    "The company said the model outperforms its predecessor on most public benchmarks.",
    "Researchers trained the system on a mixture of licensed and publicly available data.",
    "Pricing starts at a few dollars per million tokens, with a free tier for developers.",
    "Independent evaluators noted that results on long documents remain uneven.",
    "The weights are available under a permissive licence for research and commercial use.",
    "Latency was reduced by roughly forty percent compared with the previous release.",
    "The team also published a technical report describing the training recipe in detail.",
    "Early users reported better instruction following but occasional formatting errors.",
    "A companion paper examines how performance scales with the amount of synthetic data.",
    "The update rolls out gradually to enterprise customers over the coming weeks.",
    "Critics argue that the benchmark numbers are hard to reproduce without the full setup.",
    "The release includes tooling for fine-tuning on a single consumer GPU.",
]  # fmt: skip
_JA_SUBJECTS = [
    "NTT", "富士通", "ソフトバンク", "楽天", "LINEヤフー", "NEC", "サイバーエージェント",
    "PFN", "ELYZA", "東京大学", "理化学研究所", "産総研", "日立製作所", "リコー",
]  # fmt: skip
_JA_OBJECTS = [
    "日本語大規模言語モデル", "推論特化モデル", "画像生成AI", "音声認識エンジン",
    "社内向けAIアシスタント", "評価用ベンチマーク", "検索拡張生成基盤", "小型言語モデル",
    "医療向けAI", "コード生成ツール", "マルチモーダルモデル", "AIエージェント基盤",
]  # fmt: skip
_JA_VERBS = [
    "を発表", "を公開", "の提供を開始", "を開発", "をオープンソース化", "の新版をリリース",
    "の実証実験を開始", "の評価結果を公表",
]  # fmt: skip
_JA_QUALIFIERS = [
    "金融機関向けに", "自治体と共同で", "製造業向けに", "医療分野で", "教育現場向けに",
    "中小企業向けに", "コールセンター向けに", "法務部門向けに", "物流業界で", "小売業向けに",
    "研究機関と連携し", "海外市場で", "社内業務で", "農業分野で", "放送局と共同で",
]  # fmt: skip
_JA_TOPICS = [
    "量子化技術", "蒸留手法", "長文読解", "画像認識", "音声合成", "検索拡張", "安全性評価",
    "省電力推論", "多言語翻訳", "表計算支援", "契約書審査", "需要予測", "不正検知", "議事録作成",
]  # fmt: skip
_JA_SENTENCES = [
    "同社によると、新しいモデルは従来版と比べて日本語の読解精度が大きく向上した。",
    "学習には公開データと独自に収集したデータを組み合わせて使用したという。",
    "企業向けには月額制のプランを用意し、まずは一部の顧客から提供を始める。",
    "研究チームは技術報告書を公開し、学習手順や評価方法を詳しく説明している。",
    "推論速度は前世代に比べて約四割改善し、運用コストの削減につながるとしている。",
    "専門家からは、ベンチマークの結果だけでは実用性を判断できないとの指摘もある。",
    "今後は自治体や金融機関と連携し、業務での活用を検証する計画だ。",
    "モデルの重みは研究目的に限り無償で利用できるライセンスで公開された。",
    "長い文書の要約や表形式データの理解にも対応し、応用範囲が広がった。",
    "同社は安全性の評価を第三者機関に依頼し、その結果も併せて公表した。",
    "開発者向けにはAPI経由での利用を可能にし、料金体系も見直した。",
    "一方で、誤った情報をもっともらしく生成する課題は残っているという。",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Feed:
    path: str
    body: bytes
    etag: str
    last_modified: str  # HTTP date
    last_modified_at: datetime


def _html_body(rng: random.Random, japanese: bool, item_id: str) -> str:
    """500–1500 characters of HTML: paragraphs, a link, sometimes a list or an image."""
    sentences = _JA_SENTENCES if japanese else _EN_SENTENCES
    target = rng.randint(500, 1500)
    parts: list[str] = []
    size = 0
    while size < target:
        kind = rng.random() if len(parts) >= 2 else 0.0  # open with two paragraphs of text
        if kind < 0.7:
            text = ("" if japanese else " ").join(rng.sample(sentences, rng.randint(2, 3)))
            piece = f"<p>{escape(text)}</p>"
        elif kind < 0.85:
            items = "".join(f"<li>{escape(s)}</li>" for s in rng.sample(sentences, 2))
            piece = f"<ul>{items}</ul>"
        elif kind < 0.95:
            piece = (
                f'<p><a href="https://example.test/ref/{item_id}">'
                f"{'関連記事' if japanese else 'Related coverage'}</a> &amp; "
                f"<strong>{'詳細' if japanese else 'details'}</strong></p>"
            )
        else:
            piece = f'<p><img src="https://cdn.example.test/img/{item_id}.png" alt="figure"></p>'
        if size >= 500 and size + len(piece) + 1 > 1500:
            break
        parts.append(piece)
        size += len(piece) + 1
    return "\n".join(parts)


def generate_feeds(count: int, items: int, seed: int = 20240601) -> list[Feed]:
    """`count` RSS 2.0 documents, `items` entries each, with unique titles, links and GUIDs."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    feeds: list[Feed] = []
    for i in range(count):
        japanese_feed = i % 3 == 0  # a third Japanese, the rest English with a few JA items
        use_content = i % 2 == 0  # half content:encoded (+ short description), half description
        # .test never resolves: nothing in the bench can reach the internet by accident
        site = f"https://news{i}.example.test"
        entries: list[str] = []
        for j in range(items):
            japanese = japanese_feed or rng.random() < 0.1
            item_id = f"{i}-{j}"
            if japanese:
                title = (
                    f"{rng.choice(_JA_SUBJECTS)}、{rng.choice(_JA_QUALIFIERS)}"
                    f"{rng.choice(_JA_TOPICS)}を使った{rng.choice(_JA_OBJECTS)}"
                    f"「Model-{i}.{j}」{rng.choice(_JA_VERBS)}"
                )
            else:
                title = (
                    f"{rng.choice(_EN_SUBJECTS)} {rng.choice(_EN_VERBS)} "
                    f"{rng.choice(_EN_OBJECTS)} {rng.choice(_EN_QUALIFIERS)}, "
                    f"built on {rng.choice(_EN_TOPICS)} (v{i}.{j})"
                )
            link = f"{site}/{now:%Y/%m}/article-{item_id}.html?utm_source=rss"
            published = now - timedelta(minutes=5 * j + (i % 60), seconds=rng.randint(0, 59))
            html_body = _html_body(rng, japanese, item_id)
            if use_content:
                summary = escape(html_body.split("</p>", 1)[0].removeprefix("<p>")[:120])
                bodies = (
                    f"<description>{summary}</description>\n"
                    f"      <content:encoded><![CDATA[{html_body}]]></content:encoded>"
                )
            else:
                bodies = f"<description>{escape(html_body)}</description>"
            entries.append(
                f"""    <item>
      <title>{escape(title)}</title>
      <link>{escape(link)}</link>
      <guid isPermaLink="false">urn:bench:{i}:{j}:{rng.getrandbits(32):08x}</guid>
      <pubDate>{format_datetime(published)}</pubDate>
      <dc:creator>{"編集部" if japanese else "Staff Writer"}</dc:creator>
      <category>{"AI" if j % 2 else "Research"}</category>
      {bodies}
    </item>"""
            )
        last_modified_at = now - timedelta(minutes=i % 60)
        language = "ja" if japanese_feed else "en"
        doc = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>{"AIニュース" if japanese_feed else "AI News"} #{i}</title>
    <link>{site}/</link>
    <description>Bench feed {i}</description>
    <language>{language}</language>
    <lastBuildDate>{format_datetime(last_modified_at)}</lastBuildDate>
{chr(10).join(entries)}
  </channel>
</rss>
"""
        body = doc.encode("utf-8")
        feeds.append(
            Feed(
                path=f"/feed/{i}.xml",
                body=body,
                etag='"' + hashlib.sha1(body).hexdigest()[:20] + '"',
                last_modified=format_datetime(last_modified_at, usegmt=True),
                last_modified_at=last_modified_at,
            )
        )
    return feeds


# ── local feed server ────────────────────────────────────────────────────────────────────────


def loopback_hosts(count: int) -> list[str]:
    """`count` loopback addresses to serve from: 127.0.0.1 alone for one host, else
    127.0.0.2 … 127.0.0.(count + 1). Linux routes all of 127/8 to `lo`, so each is a host of
    its own to the poller's connection pool (its per-host limit applies per address) while no
    packet leaves the machine."""
    if count < 1 or count > 250:
        raise ValueError("--hosts must be between 1 and 250")
    if count == 1:
        return ["127.0.0.1"]
    return [f"127.0.0.{i}" for i in range(2, count + 2)]


@dataclass(slots=True)
class ServerStats:
    requests: int = 0
    not_modified: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    in_flight_by_host: dict[str, int] = field(default_factory=dict)
    max_in_flight_by_host: dict[str, int] = field(default_factory=dict)

    def snapshot(self) -> tuple[int, int]:
        return self.requests, self.not_modified


@dataclass(frozen=True, slots=True)
class Trace:
    """One request as the server saw it (`time.perf_counter()` of the bench process, the same
    clock `run_ainews` starts and stops by)."""

    host: str
    arrived: float
    answered: float
    status: int


class FeedServer:
    """aiohttp.web in a background thread with its own event loop, listening on every address
    of `hosts`; feed i is published on host i mod len(hosts)."""

    def __init__(self, feeds: list[Feed], latency: float, hosts: list[str] | None = None) -> None:
        self.feeds = {f.path: f for f in feeds}
        self.order = [f.path for f in feeds]
        self.latency = latency
        self.hosts = hosts or ["127.0.0.1"]
        self.stats = ServerStats()
        self.traces: list[Trace] = []
        self.base_urls: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="feed-server")

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    def urls(self) -> list[str]:
        """Every feed's URL, in generation order, spread over the hosts round-robin."""
        return [self.base_urls[i % len(self.base_urls)] + p for i, p in enumerate(self.order)]

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        for host in self.hosts:
            await web.TCPSite(self._runner, host, 0, backlog=1024).start()
        ports = {address[0]: address[1] for address in self._runner.addresses}
        self.base_urls = [f"http://{host}:{ports[host]}" for host in self.hosts]

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            try:
                future.result(timeout=10)
            except Exception as exc:  # never let teardown hide the results
                print(f"warning: feed server cleanup failed: {exc!r}", file=sys.stderr)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        host = request.transport.get_extra_info("sockname")[0] if request.transport else "?"
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        on_host = stats.in_flight_by_host.get(host, 0) + 1
        stats.in_flight_by_host[host] = on_host
        stats.max_in_flight_by_host[host] = max(stats.max_in_flight_by_host.get(host, 0), on_host)
        status = 500
        try:
            await asyncio.sleep(self.latency)
            feed = self.feeds.get(request.path)
            if feed is None:
                status = 404
                raise web.HTTPNotFound()
            validators = {"ETag": feed.etag, "Last-Modified": feed.last_modified}
            if _not_modified(request, feed):
                stats.not_modified += 1
                status = 304
                return web.Response(status=304, headers=validators)
            status = 200
            return web.Response(
                body=feed.body,
                headers={**validators, "Content-Type": "application/rss+xml; charset=utf-8"},
            )
        finally:
            stats.in_flight -= 1
            stats.in_flight_by_host[host] -= 1
            self.traces.append(Trace(host, arrived, time.perf_counter(), status))


def _not_modified(request: web.Request, feed: Feed) -> bool:
    """RFC 9110: If-None-Match wins when present; otherwise If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or feed.etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return feed.last_modified_at <= since
    return False


# ── running the real command ─────────────────────────────────────────────────────────────────


@dataclass(slots=True)
class RunResult:
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    maxrss_mb: float  # wait4() of the child: its own peak, or its largest waited-for descendant
    cpu_s: float  # wait4() of the child: user + sys of it and its waited-for descendants
    tree_cpu_s: float  # sampled CPU time of the child and all its descendants
    single_rss_mb: float  # sampled peak RSS of the largest single process in the tree
    tree_rss_mb: float  # sampled peak of the sum of RSS over the child and all its descendants
    tree_pss_mb: float  # same, proportional set size (shared pages split between processes)
    tree_procs: int  # most processes seen at once in the tree
    started: float = 0.0  # time.perf_counter() at spawn
    samples: list[Sample] = field(default_factory=list)
    machine_busy_s: float = 0.0  # every CPU's busy time on the machine, /proc/stat
    bench_cpu_s: float = 0.0  # this process (feed server, sampler) over the same span

    @property
    def ended(self) -> float:
        return self.started + self.seconds

    def json(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            raise RuntimeError(
                f"command failed (exit {self.returncode}):\n{self.stdout}\n{self.stderr}"
            )
        value: dict[str, Any] = json.loads(lines[-1])
        return value


def compile_project() -> None:
    """Compile the project's modules before anything is timed, as `make sync` and the image
    do. Where PYTHONDONTWRITEBYTECODE is set (this project's machines), a module edited since
    the last sync would otherwise be compiled again at every `ainews` start, and a measurement
    of a working tree would count it as start-up."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("bot", "handlers", "jobs", "storage"):
        compileall.compile_dir(root / package, quiet=1)


def ainews_command() -> list[str]:
    script = Path(sys.executable).with_name("ainews")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_table() -> tuple[dict[int, list[int]], dict[int, tuple[int, int]]]:
    """Children of every pid, and (start time, CPU ticks used) of every pid, from /proc."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # fields after the command name, which is in parentheses and may contain spaces
        fields = stat[stat.rindex(b")") + 2 :].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = (int(fields[19]), int(fields[11]) + int(fields[12]))  # starttime, utime+stime
    return children, cpu


def _memory_of(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB from /proc/PID/smaps_rollup; zeros if the process is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the tree: when (perf_counter), CPU ticks of the root process and of its
    descendants by depth (last value seen per process, so exited ones still count), and the
    newest modification time of the watched files (the SQLite database and its WAL: a change
    means the poller wrote)."""

    at: float
    root_ticks: int
    helper_ticks: int
    """Children of the root: multiprocessing's forkserver (it imports the parser before the
    first worker can start) and its resource tracker."""
    worker_ticks: int
    """Grandchildren and deeper: the parse workers, forked from the forkserver."""
    files_mtime_ns: int

    @property
    def others_ticks(self) -> int:
        return self.helper_ticks + self.worker_ticks


@dataclass(slots=True)
class TreeSampler:
    """Samples the memory and CPU time of a process tree every `interval` seconds from /proc.
    CPU time is the last value seen per process, so a process that exits between two samples
    loses at most one interval of it. With `watch`, every sample is also kept as a `Sample`."""

    root: int
    interval: float = 0.1
    watch: tuple[Path, ...] = ()
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    peak_single_rss_kb: int = 0
    peak_procs: int = 0
    samples: list[Sample] = field(default_factory=list)
    _ticks: dict[tuple[int, int], int] = field(default_factory=dict)
    _depth: dict[tuple[int, int], int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def cpu_seconds(self) -> float:
        return sum(self._ticks.values()) / _CLOCK_TICKS

    def start(self) -> None:
        if not Path("/proc/self/smaps_rollup").exists():
            return
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            children, cpu = _process_table()
            pids: list[tuple[int, int]] = []
            todo = [(self.root, 0)]
            while todo:
                pid, depth = todo.pop()
                pids.append((pid, depth))
                todo.extend((child, depth + 1) for child in children.get(pid, ()))
            rss = pss = 0
            for pid, depth in pids:
                r, p = _memory_of(pid)
                rss, pss = rss + r, pss + p
                self.peak_single_rss_kb = max(self.peak_single_rss_kb, r)
                if pid in cpu:
                    start, ticks = cpu[pid]
                    self._ticks[(pid, start)] = ticks
                    self._depth[(pid, start)] = depth
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            if self.watch:
                by_depth = [0, 0, 0]
                for key, ticks in self._ticks.items():
                    by_depth[min(self._depth[key], 2)] += ticks
                self.samples.append(
                    Sample(
                        at=time.perf_counter(),
                        root_ticks=by_depth[0],
                        helper_ticks=by_depth[1],
                        worker_ticks=by_depth[2],
                        files_mtime_ns=max((_mtime_ns(f) for f in self.watch), default=0),
                    )
                )
            self._stop.wait(self.interval)


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _machine_busy_seconds() -> float:
    """Busy time of every CPU since boot (user + nice + system + irq + softirq + steal)."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _CLOCK_TICKS


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def run_ainews(
    args: list[str],
    env: dict[str, str],
    cwd: Path,
    *,
    watch: tuple[Path, ...] = (),
    interval: float = 0.1,
) -> RunResult:
    """Run `ainews ARGS`, timing the wall clock from spawn to exit. With `watch`, the tree is
    sampled every `interval` seconds into a timeline (see `Sample`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy_before, own_before = _machine_busy_seconds(), _own_cpu_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*ainews_command(), *args], stdout=out, stderr=err, env=env, cwd=cwd
        )
        sampler = TreeSampler(proc.pid, interval=interval, watch=watch)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            sampler.stop()
        seconds = time.perf_counter() - started
        busy = _machine_busy_seconds() - busy_before
        own = _own_cpu_seconds() - own_before
        proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it ourselves
        out.seek(0)
        err.seek(0)
        return RunResult(
            seconds=seconds,
            returncode=proc.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            maxrss_mb=usage.ru_maxrss / 1024,  # kB on Linux
            cpu_s=usage.ru_utime + usage.ru_stime,
            tree_cpu_s=sampler.cpu_seconds,
            single_rss_mb=sampler.peak_single_rss_kb / 1024,
            tree_rss_mb=sampler.peak_rss_kb / 1024,
            tree_pss_mb=sampler.peak_pss_kb / 1024,
            tree_procs=sampler.peak_procs,
            started=started,
            samples=sampler.samples,
            machine_busy_s=busy,
            bench_cpu_s=own,
        )


def write_opml(path: Path, urls: list[str]) -> None:
    categories = ["research", "products", "funding"]
    outlines = "\n".join(
        f'    <outline type="rss" text="bench feed {i}" '
        f"xmlUrl={quoteattr(url)} category={quoteattr(categories[i % 3])}/>"
        for i, url in enumerate(urls)
    )
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">\n'
        "  <head><title>ainews bench</title></head>\n"
        f"  <body>\n{outlines}\n  </body>\n</opml>\n",
        encoding="utf-8",
    )


def count_articles(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM articles").fetchone()
    return int(count)


# ── baselines ────────────────────────────────────────────────────────────────────────────────


def naive_loop(urls: list[str]) -> tuple[float, int]:
    """Sequential `feedparser.parse(url)`: feedparser fetches with urllib itself."""
    started = time.perf_counter()
    entries = 0
    for url in urls:
        entries += len(feedparser.parse(url).entries)
    return time.perf_counter() - started, entries


def parse_floor(bodies: list[bytes]) -> tuple[float, int]:
    """Sequential `feedparser.parse(bytes)` from memory: the CPU cost of parsing alone."""
    started = time.perf_counter()
    entries = 0
    for body in bodies:
        entries += len(feedparser.parse(body).entries)
    return time.perf_counter() - started, entries


# ── where the time goes ──────────────────────────────────────────────────────────────────────


def stage_costs(feeds: list[Feed], urls: list[str]) -> list[tuple[str, str]]:
    """The poller's own CPU-bound stages, each run alone in this process on the same feeds:
    what the pool and the event loop must fit into the poll's wall time. Imports the project
    (the bench runs from its root); a stage whose API changed is reported, not fatal."""
    rows: list[tuple[str, str]] = []
    try:
        from jobs.feed_parse import parse_feed
        from jobs.stories import Titled, assign_stories
    except ImportError as exc:
        return [("poller stages", f"n/a ({exc})")]
    titled: list[Titled] = []
    started = time.perf_counter()
    for source_id, (feed, url) in enumerate(zip(feeds, urls, strict=True), start=1):
        parsed = parse_feed(feed.body, url, "application/rss+xml; charset=utf-8")
        titled.extend(Titled(len(titled) + 1, source_id, e.title, None) for e in parsed.entries)
    parse_s = time.perf_counter() - started
    rows.append((f"jobs.feed_parse.parse_feed × {len(feeds)}", f"{parse_s:8.2f} s"))
    started = time.perf_counter()
    assign_stories([], titled)
    group_s = time.perf_counter() - started
    rows.append((f"jobs.stories.assign_stories, {len(titled)} titles", f"{group_s:8.2f} s"))
    return rows


def time_breakdown(run: RunResult, traces: list[Trace], workers: int) -> list[tuple[str, str, str]]:
    """Where the first poll's wall time went, from outside the process: the server's request
    log (first request, last answer), the CPU time of the main process and of the parse
    workers sampled from /proc, and the database files' modification times (writes). The poll
    job has no timing of its own to report; see bench/README.md for the hooks it should have."""
    requests = [t for t in traces if run.started <= t.arrived <= run.ended]
    if not requests or not run.samples:
        return []
    samples = run.samples

    def at(moment: float) -> Sample | None:
        before = [s for s in samples if s.at - run.started <= moment]
        return before[-1] if before else None

    def cpu(start: float, end: float) -> tuple[float, float, float]:
        """CPU seconds of (main process, forkserver + tracker, parse workers) in a window."""
        a, b = at(start), at(end)
        if b is None:
            return 0.0, 0.0, 0.0
        base = (a.root_ticks, a.helper_ticks, a.worker_ticks) if a else (0, 0, 0)
        now = (b.root_ticks, b.helper_ticks, b.worker_ticks)
        main, helpers, workers = ((n - o) / _CLOCK_TICKS for n, o in zip(now, base, strict=True))
        return main, helpers, workers

    end = run.seconds
    first = min(t.arrived for t in requests) - run.started
    last = max(t.answered for t in requests) - run.started
    waits = sorted(t.answered - t.arrived for t in requests)
    in_flight = _max_overlap([(t.arrived, t.answered) for t in requests])
    per_host = max(
        _max_overlap([(t.arrived, t.answered) for t in requests if t.host == host])
        for host in {t.host for t in requests}
    )
    startup = cpu(0.0, first)
    fetching = cpu(first, last)
    tail = cpu(last, end + 1.0)
    busy = [
        b.at - run.started
        for a, b in itertools.pairwise(samples)
        if b.worker_ticks > a.worker_ticks
    ]
    writes = [
        b.at - run.started
        for a, b in itertools.pairwise(samples)
        if b.files_mtime_ns != a.files_mtime_ns and b.at - run.started > first
    ]
    final = samples[-1]
    rows = [
        ("start-up: spawn → first request", f"{first:6.2f} s", f"main CPU {startup[0]:.2f} s"),
        (
            "fetching: first request → last answer",
            f"{last - first:6.2f} s",
            f"{len(requests)} requests, ≤ {in_flight} in flight (≤ {per_host} per host), "
            f"server wait p50 {waits[len(waits) // 2] * 1000:.0f} ms",
        ),
        (
            "  CPU meanwhile",
            "",
            f"main {fetching[0]:.2f} s, forkserver {fetching[1]:.2f} s, "
            f"parse workers {fetching[2]:.2f} s (of {workers} × {last - first:.2f} s)",
        ),
        (
            "after the last answer → exit",
            f"{end - last:6.2f} s",
            f"main {tail[0]:.2f} s, forkserver {tail[1]:.2f} s, parse workers {tail[2]:.2f} s "
            "(last parses, stores, story grouping, shutdown)",
        ),
        (
            "  forkserver (imports the parser once)",
            "",
            f"{final.helper_ticks / _CLOCK_TICKS:.2f} s CPU, before any worker can start",
        ),
    ]
    if busy:
        rows.append(
            (
                "  parse workers busy",
                f"{busy[0]:6.2f} → {busy[-1]:.2f} s",
                f"{final.worker_ticks / _CLOCK_TICKS:.2f} s CPU in all",
            )
        )
    if writes:
        rows.append(
            (
                "  database written",
                f"{writes[0]:6.2f} → {writes[-1]:.2f} s",
                f"then {end - writes[-1]:.2f} s to exit (pool and engine shutdown)",
            )
        )
    return rows


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def _app_default(alias: str) -> str:
    """The app's default for a setting, for the printout (the bench does not pass it)."""
    try:
        from bot.config import Settings
    except ImportError:
        return "?"
    for field_info in Settings.model_fields.values():
        if field_info.alias == alias:
            return str(field_info.default)
    return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--multi-host",
        action="store_true",
        help="issue 9's workload: 300 feeds × 10 items on 30 loopback hosts (127.0.0.2 …), "
        "100 ms latency, the app's own concurrency limits; targets ≥ 12× naive, ≤ 2× floor",
    )
    parser.add_argument("--feeds", type=int, help="number of feeds (500; multi-host 300)")
    parser.add_argument("--items", type=int, help="items per feed (20; multi-host 10)")
    parser.add_argument(
        "--latency", type=float, help="server latency per request, s (0.05; multi-host 0.1)"
    )
    parser.add_argument(
        "--hosts",
        type=int,
        help="loopback hosts to spread the feeds over (1 = 127.0.0.1; multi-host 30)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="AINEWS_POLL_CONCURRENCY (32; multi-host: the app's default)",
    )
    parser.add_argument(
        "--per-host",
        type=int,
        help="AINEWS_POLL_PER_HOST (64: every single-host feed is on 127.0.0.1, max 100; "
        "multi-host: the app's default)",
    )
    parser.add_argument(
        "--parse-workers", type=int, default=0, help="AINEWS_PARSE_WORKERS (default 0 = per CPU)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, OPML, logs)")
    args = parser.parse_args(argv)
    base = MULTI_HOST if args.multi_host else SINGLE_HOST
    mode = Mode(
        name=base.name,
        feeds=args.feeds or base.feeds,
        items=args.items or base.items,
        latency=base.latency if args.latency is None else args.latency,
        hosts=args.hosts or base.hosts,
        concurrency=args.concurrency or base.concurrency,
        per_host=args.per_host or base.per_host,
        naive_over_poll=base.naive_over_poll,
        poll_over_floor=base.poll_over_floor,
    )
    hosts = loopback_hosts(mode.hosts)

    # urllib (the naive loop) honours proxy variables; the bench server is local.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join([*hosts, "localhost"])

    compile_project()
    load_before = _load_average()
    workdir = Path(tempfile.mkdtemp(prefix="ainews-bench-"))
    server: FeedServer | None = None
    try:
        started = time.perf_counter()
        feeds = generate_feeds(mode.feeds, mode.items)
        total_bytes = sum(len(f.body) for f in feeds)
        print(
            f"generated {len(feeds)} feeds × {mode.items} items, "
            f"{total_bytes / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
        )
        server = FeedServer(feeds, mode.latency, hosts)
        server.start()
        where = server.base_url if len(hosts) == 1 else f"{len(hosts)} hosts, {hosts[0]} …"
        print(f"feed server on {where}, {mode.latency * 1000:.0f} ms per request")
        urls = server.urls()

        db_path = workdir / "bench.sqlite3"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "AINEWS_VAR_DIR": str(workdir / "var"),
            "AINEWS_SOURCES_FILE": str(workdir / "no-sources.toml"),  # do not seed real feeds
            "AINEWS_PARSE_WORKERS": str(args.parse_workers),
        }
        for name, value in (
            ("AINEWS_POLL_CONCURRENCY", mode.concurrency),
            ("AINEWS_POLL_PER_HOST", mode.per_host),
        ):
            if value is None:
                env.pop(name, None)  # the app's default
            else:
                env[name] = str(value)
        env.pop("OPENAI_API_KEY", None)
        opml = workdir / "bench.opml"
        write_opml(opml, urls)
        imported = run_ainews(["sources", "import", str(opml)], env, workdir)
        if imported.returncode != 0:
            raise RuntimeError(f"sources import failed:\n{imported.stderr}")
        print(imported.stderr.strip().splitlines()[-1] if imported.stderr.strip() else "imported")

        expected = mode.feeds * mode.items
        problems: list[str] = []

        # pass 1: everything is new
        before = server.stats.snapshot()
        traces_from = len(server.traces)
        db_files = (db_path, db_path.with_name(db_path.name + "-wal"))
        first = run_ainews(["poll", "--json"], env, workdir, watch=db_files, interval=0.05)
        report1 = first.json()
        requests1 = server.stats.requests - before[0]
        max_in_flight1 = server.stats.max_in_flight
        traces1 = server.traces[traces_from:]
        print(f"poll:         {first.seconds:6.2f} s  {json.dumps(report1, ensure_ascii=False)}")
        if report1["new"] != expected:
            problems.append(f"poll: new == {report1['new']}, expected {expected}")
        if report1["failed"] != 0:
            problems.append(f"poll: failed == {report1['failed']}: {report1['errors'][:3]}")
        if len({t.host for t in traces1}) != len(hosts):
            problems.append(f"poll reached {len({t.host for t in traces1})} of {len(hosts)} hosts")
        articles1 = count_articles(db_path)

        # pass 2: conditional GET, every feed answers 304
        before = server.stats.snapshot()
        second = run_ainews(["poll", "--json", "--force"], env, workdir)
        report2 = second.json()
        requests2 = server.stats.requests - before[0]
        served_304 = server.stats.not_modified - before[1]
        print(f"poll --force: {second.seconds:6.2f} s  {json.dumps(report2, ensure_ascii=False)}")
        articles2 = count_articles(db_path)
        if report2["not_modified"] != mode.feeds or report2["new"] != 0:
            problems.append(
                f"poll --force: not_modified == {report2['not_modified']}, new == "
                f"{report2['new']}, expected {mode.feeds} and 0"
            )
        if articles2 != articles1:
            problems.append(f"article rows changed on the 304 pass: {articles1} → {articles2}")
        if served_304 != mode.feeds:
            problems.append(f"server sent {served_304} 304s, expected {mode.feeds}")

        # fixed cost: nothing is due, so this is start-up + migrations + pool + shutdown
        idle = run_ainews(["poll", "--json"], env, workdir)
        report3 = idle.json()
        print(f"poll (idle):  {idle.seconds:6.2f} s  {json.dumps(report3, ensure_ascii=False)}")

        naive_s, naive_entries = naive_loop(urls)
        print(f"naive loop:   {naive_s:6.2f} s  ({naive_entries} entries)")
        if naive_entries != expected:
            problems.append(f"naive loop parsed {naive_entries} entries, expected {expected}")

        floor_s, floor_entries = parse_floor([f.body for f in feeds])
        print(f"parse floor:  {floor_s:6.2f} s  ({floor_entries} entries)")
        stages = stage_costs(feeds, urls)

        workers = args.parse_workers or os.cpu_count() or 1
        print_table(
            mode=mode,
            args=args,
            first=first,
            second=second,
            idle=idle,
            naive_s=naive_s,
            floor_s=floor_s,
            articles=articles2,
            requests1=requests1,
            requests2=requests2,
            served_304=served_304,
            max_in_flight=max_in_flight1,
            total_bytes=total_bytes,
            load_before=load_before,
            breakdown=time_breakdown(first, traces1, workers),
            stages=stages,
        )
        if problems:
            print("\nINVALID RUN:")
            for problem in problems:
                print(f"  - {problem}")
            return 1
        return 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def print_table(
    *,
    mode: Mode,
    args: argparse.Namespace,
    first: RunResult,
    second: RunResult,
    idle: RunResult,
    naive_s: float,
    floor_s: float,
    articles: int,
    requests1: int,
    requests2: int,
    served_304: int,
    max_in_flight: int,
    total_bytes: int,
    load_before: str,
    breakdown: list[tuple[str, str, str]],
    stages: list[tuple[str, str]],
) -> None:
    naive_ratio = naive_s / first.seconds
    floor_ratio = first.seconds / floor_s

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS  <<<"

    cpus = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    rule = "─" * 78
    print()
    print(rule)
    print(
        f"machine: {cpus} CPUs ({usable} usable), {platform.machine()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"feedparser {feedparser.__version__}; load average before the run: {load_before}, "
        f"after: {_load_average()}"
    )
    hosts = loopback_hosts(mode.hosts)
    on = "127.0.0.1" if len(hosts) == 1 else f"{len(hosts)} hosts {hosts[0]} … {hosts[-1]}"
    print(
        f"workload ({mode.name}): {mode.feeds} feeds × {mode.items} items, "
        f"{total_bytes / 1e6:.1f} MB, {mode.latency * 1000:.0f} ms latency per request, on {on}"
    )
    workers = args.parse_workers or cpus
    concurrency = mode.concurrency or f"{_app_default('AINEWS_POLL_CONCURRENCY')} (app default)"
    per_host = mode.per_host or f"{_app_default('AINEWS_POLL_PER_HOST')} (app default)"
    note = " (raised from 4: one host serves every feed)" if len(hosts) == 1 else ""
    print(
        f"settings: AINEWS_POLL_CONCURRENCY={concurrency} AINEWS_POLL_PER_HOST={per_host}{note} "
        f"AINEWS_PARSE_WORKERS={args.parse_workers} (= {workers} workers)"
    )
    others = first.machine_busy_s - first.tree_cpu_s - first.bench_cpu_s
    print(
        f"during the first poll ({first.seconds:.2f} s × {cpus} CPUs = "
        f"{first.seconds * cpus:.1f} CPU-s): the poll's processes used {first.tree_cpu_s:.2f} s, "
        f"this bench (feed server, sampler) {first.bench_cpu_s:.2f} s, "
        f"other processes {max(0.0, others):.2f} s"
    )
    print(rule)
    rows = [
        ("ainews poll --json (wall, start-up incl.)", f"{first.seconds:8.2f} s"),
        ("ainews poll --json --force (304 pass)", f"{second.seconds:8.2f} s"),
        ("ainews poll --json, nothing due (fixed cost)", f"{idle.seconds:8.2f} s"),
        ("naive loop: feedparser.parse(url) × N", f"{naive_s:8.2f} s"),
        ("parse floor: feedparser.parse(bytes) × N", f"{floor_s:8.2f} s"),
        ("peak RSS, poll, main process (wait4 ru_maxrss)", f"{first.maxrss_mb:8.1f} MB"),
        ("peak RSS, poll, largest process (sampled)", f"{first.single_rss_mb:8.1f} MB"),
        (
            f"peak RSS, poll, whole tree ({first.tree_procs} procs, sampled)",
            f"{first.tree_rss_mb:8.1f} MB",
        ),
        ("peak PSS, poll, whole tree (sampled)", f"{first.tree_pss_mb:8.1f} MB"),
        ("peak RSS, 304 pass, whole tree (sampled)", f"{second.tree_rss_mb:8.1f} MB"),
        ("CPU time, poll, whole tree (sampled)", f"{first.tree_cpu_s:8.2f} s"),
        ("CPU time, poll, main process (wait4)", f"{first.cpu_s:8.2f} s"),
        (
            f"CPU use during poll (of {cpus} CPUs)",
            f"{first.tree_cpu_s / first.seconds / (cpus or 1) * 100:8.0f} %",
        ),
        ("server requests: poll / 304 pass", f"{requests1:>6} / {requests2}"),
        ("server 304s in the 304 pass", f"{served_304:>8}"),
        ("max concurrent requests at the server", f"{max_in_flight:>8}"),
        ("articles in the DB after both passes", f"{articles:>8}"),
    ]
    for label, value in rows:
        print(f"  {label:<48} {value}")
    if breakdown:
        print(rule)
        print("where the first poll's time went (t = 0 at spawn; measured from outside):")
        for label, value, detail in breakdown:
            print(f"  {label:<40} {value:>16}  {detail}")
        phases = first.json().get("seconds") or {}
        if phases:
            told = ", ".join(f"{name} {value:.2f} s" for name, value in phases.items())
            print(f"  and as the poll itself reports them (--json seconds): {told}")
    if stages:
        print("the poller's CPU-bound stages alone, in one process (this bench's):")
        for label, value in stages:
            print(f"  {label:<48} {value}")
    print(rule)
    print(
        f"  {'naive / poll':<22} {naive_ratio:6.1f}×   target ≥ {mode.naive_over_poll:g}×"
        f"    {mark(naive_ratio >= mode.naive_over_poll)}"
    )
    print(
        f"  {'poll / parse floor':<22} {floor_ratio:6.2f}×   target ≤ {mode.poll_over_floor:g}×"
        f"   {mark(floor_ratio <= mode.poll_over_floor)}"
    )
    print(rule)


if __name__ == "__main__":
    sys.exit(main())
