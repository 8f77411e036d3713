"""Poll benchmark: the real `ainews poll` against 500 local feeds, compared with a naive loop.

One run (`uv run python bench/poll.py`):

1. generates N realistic RSS 2.0 feeds (Japanese and English, HTML bodies) in memory;
2. serves them from a local aiohttp server (background thread, own event loop) with a fixed
   latency per request, ETag / Last-Modified validators and 304 answers;
3. imports them as an OPML file into a fresh SQLite database (not timed);
4. times `ainews poll --json` as a subprocess (start-up included) and checks every item is new;
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

TARGET_NAIVE_OVER_POLL = 10.0  # the poller must be at least this many times faster than naive
TARGET_POLL_OVER_FLOOR = 1.5  # and at most this many times the single-process parse time

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


@dataclass(slots=True)
class ServerStats:
    requests: int = 0
    not_modified: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def snapshot(self) -> tuple[int, int]:
        return self.requests, self.not_modified


class FeedServer:
    """aiohttp.web in a background thread with its own event loop."""

    def __init__(self, feeds: list[Feed], latency: float) -> None:
        self.feeds = {f.path: f for f in feeds}
        self.latency = latency
        self.stats = ServerStats()
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="feed-server")

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/feed/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

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
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await asyncio.sleep(self.latency)
            feed = self.feeds.get(request.path)
            if feed is None:
                raise web.HTTPNotFound()
            validators = {"ETag": feed.etag, "Last-Modified": feed.last_modified}
            if _not_modified(request, feed):
                stats.not_modified += 1
                return web.Response(status=304, headers=validators)
            return web.Response(
                body=feed.body,
                headers={**validators, "Content-Type": "application/rss+xml; charset=utf-8"},
            )
        finally:
            stats.in_flight -= 1


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

    def json(self) -> dict[str, Any]:
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            raise RuntimeError(
                f"command failed (exit {self.returncode}):\n{self.stdout}\n{self.stderr}"
            )
        value: dict[str, Any] = json.loads(lines[-1])
        return value


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


@dataclass(slots=True)
class TreeSampler:
    """Samples the memory and CPU time of a process tree every `interval` seconds from /proc.
    CPU time is the last value seen per process, so a process that exits between two samples
    loses at most one interval of it."""

    root: int
    interval: float = 0.1
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0
    peak_single_rss_kb: int = 0
    peak_procs: int = 0
    _ticks: dict[tuple[int, int], int] = field(default_factory=dict)
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
            pids, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo.extend(children.get(pid, ()))
            rss = pss = 0
            for pid in pids:
                r, p = _memory_of(pid)
                rss, pss = rss + r, pss + p
                self.peak_single_rss_kb = max(self.peak_single_rss_kb, r)
                if pid in cpu:
                    start, ticks = cpu[pid]
                    self._ticks[(pid, start)] = ticks
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.peak_procs = max(self.peak_procs, len(pids))
            self._stop.wait(self.interval)


def run_ainews(args: list[str], env: dict[str, str], cwd: Path) -> RunResult:
    """Run `ainews ARGS`, timing the wall clock from spawn to exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*ainews_command(), *args], stdout=out, stderr=err, env=env, cwd=cwd
        )
        sampler = TreeSampler(proc.pid)
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
        )


def write_opml(path: Path, feeds: list[Feed], base_url: str) -> None:
    categories = ["research", "products", "funding"]
    outlines = "\n".join(
        f'    <outline type="rss" text="bench feed {i}" '
        f"xmlUrl={quoteattr(base_url + feed.path)} category={quoteattr(categories[i % 3])}/>"
        for i, feed in enumerate(feeds)
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


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--feeds", type=int, default=500, help="number of feeds (default 500)")
    parser.add_argument("--items", type=int, default=20, help="items per feed (default 20)")
    parser.add_argument(
        "--latency", type=float, default=0.05, help="server latency per request, s (default 0.05)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="AINEWS_POLL_CONCURRENCY (default 32)"
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=64,
        help="AINEWS_POLL_PER_HOST (default 64: every bench feed is on 127.0.0.1; max 100)",
    )
    parser.add_argument(
        "--parse-workers", type=int, default=0, help="AINEWS_PARSE_WORKERS (default 0 = per CPU)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, OPML, logs)")
    args = parser.parse_args(argv)

    # urllib (the naive loop) honours proxy variables; the bench server is local.
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

    load_before = _load_average()
    workdir = Path(tempfile.mkdtemp(prefix="ainews-bench-"))
    server: FeedServer | None = None
    try:
        started = time.perf_counter()
        feeds = generate_feeds(args.feeds, args.items)
        total_bytes = sum(len(f.body) for f in feeds)
        print(
            f"generated {len(feeds)} feeds × {args.items} items, "
            f"{total_bytes / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
        )
        server = FeedServer(feeds, args.latency)
        server.start()
        print(f"feed server on {server.base_url}, {args.latency * 1000:.0f} ms per request")

        db_path = workdir / "bench.sqlite3"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "AINEWS_VAR_DIR": str(workdir / "var"),
            "AINEWS_SOURCES_FILE": str(workdir / "no-sources.toml"),  # do not seed real feeds
            "AINEWS_POLL_CONCURRENCY": str(args.concurrency),
            "AINEWS_POLL_PER_HOST": str(args.per_host),
            "AINEWS_PARSE_WORKERS": str(args.parse_workers),
        }
        env.pop("OPENAI_API_KEY", None)
        opml = workdir / "bench.opml"
        write_opml(opml, feeds, server.base_url)
        imported = run_ainews(["sources", "import", str(opml)], env, workdir)
        if imported.returncode != 0:
            raise RuntimeError(f"sources import failed:\n{imported.stderr}")
        print(imported.stderr.strip().splitlines()[-1] if imported.stderr.strip() else "imported")

        expected = args.feeds * args.items
        problems: list[str] = []

        # pass 1: everything is new
        before = server.stats.snapshot()
        first = run_ainews(["poll", "--json"], env, workdir)
        report1 = first.json()
        requests1 = server.stats.requests - before[0]
        max_in_flight1 = server.stats.max_in_flight
        print(f"poll:         {first.seconds:6.2f} s  {json.dumps(report1, ensure_ascii=False)}")
        if report1["new"] != expected:
            problems.append(f"poll: new == {report1['new']}, expected {expected}")
        if report1["failed"] != 0:
            problems.append(f"poll: failed == {report1['failed']}: {report1['errors'][:3]}")
        articles1 = count_articles(db_path)

        # pass 2: conditional GET, every feed answers 304
        before = server.stats.snapshot()
        second = run_ainews(["poll", "--json", "--force"], env, workdir)
        report2 = second.json()
        requests2 = server.stats.requests - before[0]
        served_304 = server.stats.not_modified - before[1]
        print(f"poll --force: {second.seconds:6.2f} s  {json.dumps(report2, ensure_ascii=False)}")
        articles2 = count_articles(db_path)
        if report2["not_modified"] != args.feeds or report2["new"] != 0:
            problems.append(
                f"poll --force: not_modified == {report2['not_modified']}, new == "
                f"{report2['new']}, expected {args.feeds} and 0"
            )
        if articles2 != articles1:
            problems.append(f"article rows changed on the 304 pass: {articles1} → {articles2}")
        if served_304 != args.feeds:
            problems.append(f"server sent {served_304} 304s, expected {args.feeds}")

        # fixed cost: nothing is due, so this is start-up + migrations + pool + shutdown
        idle = run_ainews(["poll", "--json"], env, workdir)
        report3 = idle.json()
        print(f"poll (idle):  {idle.seconds:6.2f} s  {json.dumps(report3, ensure_ascii=False)}")

        urls = [server.base_url + f.path for f in feeds]
        naive_s, naive_entries = naive_loop(urls)
        print(f"naive loop:   {naive_s:6.2f} s  ({naive_entries} entries)")
        if naive_entries != expected:
            problems.append(f"naive loop parsed {naive_entries} entries, expected {expected}")

        floor_s, floor_entries = parse_floor([f.body for f in feeds])
        print(f"parse floor:  {floor_s:6.2f} s  ({floor_entries} entries)")

        print_table(
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
        f"feedparser {feedparser.__version__}; load average before the run: {load_before}"
    )
    print(
        f"workload: {args.feeds} feeds × {args.items} items, {total_bytes / 1e6:.1f} MB, "
        f"{args.latency * 1000:.0f} ms latency per request, all on 127.0.0.1"
    )
    workers = args.parse_workers or cpus
    print(
        f"settings: AINEWS_POLL_CONCURRENCY={args.concurrency} "
        f"AINEWS_POLL_PER_HOST={args.per_host} (raised from 4: one host serves every feed) "
        f"AINEWS_PARSE_WORKERS={args.parse_workers} (= {workers} workers)"
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
    print(rule)
    print(
        f"  {'naive / poll':<22} {naive_ratio:6.1f}×   target ≥ {TARGET_NAIVE_OVER_POLL:g}×"
        f"    {mark(naive_ratio >= TARGET_NAIVE_OVER_POLL)}"
    )
    print(
        f"  {'poll / parse floor':<22} {floor_ratio:6.2f}×   target ≤ {TARGET_POLL_OVER_FLOOR:g}×"
        f"   {mark(floor_ratio <= TARGET_POLL_OVER_FLOOR)}"
    )
    print(rule)


if __name__ == "__main__":
    sys.exit(main())
