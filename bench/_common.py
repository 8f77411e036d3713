"""What bench/slack_ack.py and bench/discord_ack.py share: the whole ack benchmark except the
platform. Each script supplies an `AckBench` (the bot's settings and adapter, the naive
baseline's hook) and a `StandIn` (the platform's stand-in server and how one command is sent and
timed); everything else — the world process, the phases, the busy work, the instruments and
the report — is here, so the two benches measure and print the same things the same way.

One run:

1. builds the demo database (`run_demo`) in a temp dir;
2. starts a "world" process with the stand-ins on 127.0.0.1 — the platform's, an
   OpenAI-compatible server that answers after a fixed latency, and a feed server with N
   generated feeds (bench/poll.py's generator) — and the load generator, in its own thread
   there, so none of it competes with the bot's event loop or its GIL;
3. opens the app with the OpenAI key pointing at the stand-in, adds the feeds as sources and
   starts the platform's real adapter (`build_slack` / `build_discord` with a `ChatCore`), then
   `gc.collect(); gc.freeze()` as `run_bot` does;
4. idle: sends N `/ainews search …` / `ask …` commands at a fixed rate with bounded concurrency
   and times each until its ack;
5. naive baseline, idle: the same N commands from other users, whose commands a hook in the
   bench answers before acking (it awaits the command's answer and sends it as the ack) — what
   the adapter would measure if it did the work first. Measured idle only, its best case, so
   the ratio against the busy acks below is a lower bound;
6. busy: while a briefing is built with the slow model and posted (`briefing_for` +
   `platform.thread.publish`), a forced poll of every source runs (`poll_once(force=True)`, the
   feeds are new, so it fetches, parses and stores them) and `summarize_pending` runs with the
   slow model, sends the N commands again and times the acks the same way;
7. checks every command was answered and prints the table: p50/p95/p99/max per phase, the
   ratios busy/idle and naive/ours, PASS/MISS for busy p99 < 300 ms, and the event-loop lag
   measured by a ticker (`asyncio.sleep(0.01)` wake-up delay) with the worst stalls.

Every run also splits each late tick with the kernel's per-thread account
(/proc/self/task/<tid>/schedstat): the loop thread running code, runnable but waiting for a CPU,
or asleep longer than it meant to (waiting for the GIL).

A measurement, not a test: a missed target prints MISS and still exits 0. It exits 1 only when
the run is invalid (a command not acked or never answered, busy work that failed or did not
overlap the commands).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import aiohttp
from poll import generate_feeds  # bench/poll.py: the script's directory is on sys.path

from bot.app import App, briefing_for, open_app, poll_once, summarize_pending
from bot.config import Settings
from bot.demo.run import run_demo
from bot.publishing.chat import ChatCore
from bot.publishing.platform import Platform
from bot.scheduler import JobRunner
from storage.sources import SourceSpec, add_missing_sources
from tests.conftest import make_settings
from tests.fakes.feed_server import FeedServer
from tests.fakes.openai_server import OpenAIServer

TARGET_BUSY_P99_MS = 300.0
PLATFORM_LIMIT_MS = 3000.0  # Slack and Discord both drop a command not acked within 3 s
ROOT = str(Path(__file__).resolve().parents[1])
TICK = 0.01  # the lag ticker's sleep
STALL = 0.05  # a tick later than this counts as a stall
LOAD_STALL = 0.01  # the load generator's loop later than this is reported
WORLD_GC = 0.005  # the world process's collections longer than this are reported
_ENV_PREFIXES = ("AINEWS_", "OPENAI_", "SLACK_", "DISCORD_", "DATABASE_URL", "TIKTOKEN_")

SEARCH_WORDS = [
    "規制", "半導体", "AI", "モデル", "GPU", "エージェント", "データセンター", "セキュリティ",
    "Kumo Relay", "脆弱性", "推論", "資金調達", "language model", "Nimbus Labs", "benchmark",
    "オープンモデル", "ガイドライン", "calendar invite", "量子化技術", "NTT",
]  # fmt: skip
ASK_QUESTIONS = [
    "規制とは？", "半導体の動向は？", "Kumo Relayとは？", "データセンターの電力は？",
    "脆弱性の影響は？",
]  # fmt: skip

T = TypeVar("T")


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def command_texts(count: int, seed: int) -> list[str]:
    """Mostly searches, every fifth an `ask` (which calls the slow model when answering)."""
    rng = random.Random(seed)
    return [
        f"ask {rng.choice(ASK_QUESTIONS)}" if i % 5 == 4 else f"search {rng.choice(SEARCH_WORDS)}"
        for i in range(count)
    ]


# ── messages between the bot process and the world process ───────────────────────────────────


@dataclass(frozen=True, slots=True)
class WorldOptions:
    feeds: int
    items: int
    feed_latency: float
    model_latency: float


@dataclass(frozen=True, slots=True)
class WorldReady:
    endpoints: dict[str, str]  # the platform stand-in's URLs, for the bot's settings
    openai_base_url: str
    feed_urls: list[str]
    feed_bytes: int


@dataclass(frozen=True, slots=True)
class PhaseRequest:
    name: str
    target: str  # where the stand-in sends the commands (Slack: the bot's events URL)
    texts: list[str]
    users: list[str]  # command i comes from users[i % len(users)]
    naive: bool  # the users are the naive baseline's: the ack itself carries the answer
    concurrency: int
    rate: float  # commands started per second; 0 = as fast as the concurrency allows


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    text: str
    scheduled: float  # time.monotonic(): CLOCK_MONOTONIC, the same clock in both processes
    start: float
    end: float  # when the ack arrived (or the stand-in gave up waiting for it)
    ok: bool  # acked as expected (the latency is only counted then)
    error: str = ""
    answered: bool = False  # the ack carried the answer (the naive baseline on Slack)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000


class PlatformStats(NamedTuple):
    answered: dict[str, int]  # commands answered, by phase name
    briefing_messages: int  # messages the bot posted in the briefing channel and its thread


@dataclass(frozen=True, slots=True)
class WorldStats:
    answered: dict[str, int]
    briefing_messages: int
    model_requests: dict[str, int]
    feed_requests: int
    load_stalls: list[tuple[float, float]]  # LoadClient.stalls
    gc_pauses: list[Pause]  # the world process's collections > WORLD_GC


@dataclass(frozen=True, slots=True)
class WorldFailure:
    text: str


# ── the world process: stand-in servers and the load generator ──────────────────────────────

_FENCE = re.compile(
    r"<<<ARTICLE (?P<nonce>\w+)>>>\n(?P<text>.*)\n<<<END ARTICLE (?P=nonce)>>>", re.S
)


def _schema_name(request: dict[str, Any]) -> str:
    response_format = request.get("response_format") or {}
    return str((response_format.get("json_schema") or {}).get("name", "?"))


def model_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Valid JSON for every call the bot makes. Summaries repeat the article's own title (so
    they pass the grounding check); `ask` declines; the trend is empty, which the briefing
    rejects in favour of its counted trend, as it would a useless answer."""
    name = _schema_name(request)
    if name == "ask_answer":
        return {"answerable": False, "answer": "", "citations": []}
    if name == "article_summary":
        user = next(
            (m.get("content", "") for m in request.get("messages", []) if m.get("role") == "user"),
            "",
        )
        match = _FENCE.search(str(user))
        title_line = match["text"].partition("\n")[0] if match else ""
        title = title_line.removeprefix("タイトル: ").strip() or "AI"
        return {
            "title_ja": title[:300],
            "overview": title,
            "points": [title, title, title],
            "why_important": title,
            "keywords": [title],
            "category": "research",
            "importance": 2,
        }
    return {"themes": [], "organisations": [], "outlook": ""}


class LoadClient:
    """Sends the commands from its own thread and event loop, so the stand-in servers' work
    does not delay the clock readings. A ticker on that loop records when it was late itself:
    a late load loop delays the readings, so the report shows it next to the slow acks."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="load-client")
        self.thread.start()
        self.stalls: list[tuple[float, float]] = []  # (when the sleep started, how late)
        self._ticker = asyncio.run_coroutine_threadsafe(self._start_ticker(), self.loop).result()

    async def _start_ticker(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._tick())

    async def _stop_ticker(self) -> None:
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK)
            late = time.monotonic() - before - TICK
            if late > LOAD_STALL:
                self.stalls.append((before, late))

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop_ticker(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class StandIn(Protocol):
    """The platform's side of the world process: its stand-in server, and how a phase's
    commands reach the bot and are timed until their ack. Built with the `LoadClient`, whose
    thread and loop the timing must run on."""

    async def start(self) -> dict[str, str]:
        """Start the stand-in; return its URLs (`WorldReady.endpoints`)."""
        ...

    async def run_phase(self, request: PhaseRequest) -> list[Sample]: ...

    async def stats(self) -> PlatformStats: ...

    async def stop(self) -> None: ...


StandInFactory = Callable[[LoadClient], StandIn]
Send = Callable[[int, str, float], Awaitable[Sample]]


async def paced(request: PhaseRequest, send: Send) -> list[Sample]:
    """Start command i at `i / rate` seconds, with at most `concurrency` awaiting their ack;
    `send(i, text, scheduled)` sends one and times it. Pacing by the schedule rather than by
    the previous ack keeps a slow ack from thinning the load that follows it."""
    gate = asyncio.Semaphore(request.concurrency)
    first = time.monotonic() + 0.02

    async def one(i: int, text: str) -> Sample:
        scheduled = first + (i / request.rate if request.rate > 0 else 0.0)
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        async with gate:
            return await send(i, text, scheduled)

    samples = await asyncio.gather(*(one(i, t) for i, t in enumerate(request.texts)))
    return sorted(samples, key=lambda s: s.index)


async def world(conn: Connection, options: WorldOptions, stand_in_factory: StandInFactory) -> None:
    feeds = generate_feeds(options.feeds, options.items)
    # The world's own collections are not the bot's: one holds this process's GIL, stops the
    # load loop and inflates every ack it overlaps (the stand-ins record every request; trial
    # runs saw 70–170 ms collections here during the busy phase). So it runs between phases.
    gc.disable()
    gcs = GcWatch()
    gcs.install()
    async with OpenAIServer() as model, FeedServer() as feed_server:
        model.latency = options.model_latency
        model.responder = model_responder
        feed_server.latency = options.feed_latency
        for feed in feeds:
            feed_server.add(feed.path, feed.body)
        client = LoadClient()
        stand_in = stand_in_factory(client)
        try:
            ready = WorldReady(
                endpoints=await stand_in.start(),
                openai_base_url=model.base_url,
                feed_urls=[feed_server.url(f.path) for f in feeds],
                feed_bytes=sum(len(f.body) for f in feeds),
            )
            gc.collect()
            conn.send(ready)
            loop = asyncio.get_running_loop()
            with ThreadPoolExecutor(1, thread_name_prefix="world-pipe") as pipe:
                while True:
                    message = await loop.run_in_executor(pipe, conn.recv)
                    if message == "stop":
                        break
                    try:
                        if isinstance(message, PhaseRequest):
                            reply: Any = await stand_in.run_phase(message)
                        elif message == "stats":
                            answered, briefing_messages = await stand_in.stats()
                            reply = WorldStats(
                                answered=answered,
                                briefing_messages=briefing_messages,
                                model_requests=dict(Counter(map(_schema_name, model.requests))),
                                feed_requests=len(feed_server.calls),
                                load_stalls=list(client.stalls),
                                gc_pauses=[p for p in gcs.pauses if p.seconds > WORLD_GC],
                            )
                        else:
                            reply = WorldFailure(f"unknown message {message!r}")
                    except Exception:
                        reply = WorldFailure(traceback.format_exc())
                    conn.send(reply)
                    if isinstance(message, PhaseRequest):
                        gc.collect()  # while the bot waits for the answers: nothing is timed
        finally:
            with contextlib.suppress(Exception):
                await stand_in.stop()
            client.close()


def world_main(conn: Connection, options: WorldOptions, stand_in_factory: StandInFactory) -> None:
    logging.basicConfig(level=logging.ERROR)
    try:
        asyncio.run(world(conn, options, stand_in_factory))
    except Exception:
        with contextlib.suppress(Exception):
            conn.send(WorldFailure(traceback.format_exc()))
        raise


class World:
    """The bot process's handle on the world process (a spawned child: no inherited loop,
    threads or locks). Pipe round trips run in a dedicated thread, so waiting for a phase
    never occupies one of the default executor's threads, which the database uses."""

    def __init__(self, options: WorldOptions, stand_in_factory: StandInFactory) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, self._child = context.Pipe()
        self.process = context.Process(
            target=world_main,
            args=(self._child, options, stand_in_factory),
            name="bench-world",
            daemon=True,
        )
        self._pipe = ThreadPoolExecutor(1, thread_name_prefix="bench-pipe")

    def _expect(self, reply: Any) -> Any:
        if isinstance(reply, WorldFailure):
            raise RuntimeError(f"world process failed:\n{reply.text}")
        return reply

    def _round_trip(self, message: Any) -> Any:
        self.conn.send(message)
        return self._expect(self.conn.recv())

    async def start(self) -> WorldReady:
        self.process.start()
        self._child.close()  # so that a dead world process reads as EOF, not a hang
        loop = asyncio.get_running_loop()
        ready = self._expect(await loop.run_in_executor(self._pipe, self.conn.recv))
        assert isinstance(ready, WorldReady)
        return ready

    async def phase(self, request: PhaseRequest) -> list[Sample]:
        loop = asyncio.get_running_loop()
        samples: list[Sample] = await loop.run_in_executor(self._pipe, self._round_trip, request)
        return samples

    async def stats(self) -> WorldStats:
        loop = asyncio.get_running_loop()
        stats: WorldStats = await loop.run_in_executor(self._pipe, self._round_trip, "stats")
        return stats

    async def wait_for_answers(self, expected: dict[str, int], patience: float) -> WorldStats:
        deadline = time.monotonic() + patience
        while True:
            stats = await self.stats()
            done = all(stats.answered.get(k, 0) >= n for k, n in expected.items())
            if done or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(Exception):
                self.conn.send("stop")
            await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.terminate()
            await asyncio.to_thread(self.process.join, 5)
        self._pipe.shutdown(wait=False, cancel_futures=True)


# ── instruments in the bot process ───────────────────────────────────────────────────────────


@dataclass(slots=True)
class Window:
    """When a piece of background work ran (time.monotonic()), and how it ended."""

    name: str
    start: float = math.nan
    end: float = math.nan
    error: str = ""
    detail: str = ""
    progress: list[float] = field(default_factory=list)  # when each unit finished

    def running_at(self, moment: float) -> bool:
        end = self.end if not math.isnan(self.end) else math.inf
        return self.start <= moment <= end

    def overlaps(self, start: float, end: float) -> bool:
        stop = self.end if not math.isnan(self.end) else math.inf
        return start <= stop and end >= self.start

    def done_by(self, moment: float) -> int:
        return sum(1 for t in self.progress if t <= moment)


async def timed(window: Window, coro: Coroutine[Any, Any, T]) -> T:
    window.start = time.monotonic()
    try:
        return await coro
    except asyncio.CancelledError:
        window.detail = window.detail or "cancelled"
        raise
    except Exception as exc:
        window.error = repr(exc)
        raise
    finally:
        window.end = time.monotonic()


class ThreadClock:
    """The kernel scheduler's account of one thread (`/proc/self/task/<tid>/schedstat`): seconds
    on a CPU, and seconds runnable but waiting for one. Zeros where /proc is missing."""

    def __init__(self, native_id: int) -> None:
        try:
            self._fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = -1

    def read(self) -> tuple[float, float]:
        if self._fd < 0:
            return 0.0, 0.0
        on_cpu, queued, *_ = os.pread(self._fd, 128, 0).split()
        return int(on_cpu) / 1e9, int(queued) / 1e9

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class Tick:
    """One `asyncio.sleep(TICK)` of the lag ticker and what the loop thread did meanwhile."""

    at: float  # when the sleep started
    late: float  # how much later than TICK it woke up
    on_cpu: float  # the loop thread ran (callbacks, including other threads' GIL hand-offs)
    queued: float  # the loop thread was runnable but no CPU was free

    @property
    def off_cpu(self) -> float:
        """Asleep for longer than the intended sleep: with nothing blocking on the loop, that is
        waiting for the GIL (a lower bound: time spent running other callbacks is excluded)."""
        return max(0.0, self.late - self.on_cpu - self.queued)

    def split(self) -> str:
        return (
            f"loop thread on CPU {self.on_cpu * 1000:5.1f} ms, waiting for a CPU "
            f"{self.queued * 1000:5.1f} ms, off CPU beyond the sleep {self.off_cpu * 1000:5.1f} ms"
        )


class LagTicker:
    """Records how late `asyncio.sleep(TICK)` wakes up — time the loop could not run a ready
    callback — and the loop thread's scheduler account over each tick, which says whether it
    was running code, waiting for a CPU, or asleep (waiting for the GIL)."""

    def __init__(self) -> None:
        self.ticks: list[Tick] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        clock = ThreadClock(threading.get_native_id())
        try:
            cpu0, queued0 = clock.read()
            while True:
                before = time.monotonic()
                await asyncio.sleep(TICK)
                after = time.monotonic()
                cpu1, queued1 = clock.read()
                self.ticks.append(
                    Tick(before, after - before - TICK, cpu1 - cpu0, queued1 - queued0)
                )
                cpu0, queued0 = cpu1, queued1
        finally:
            clock.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def between(self, start: float, end: float) -> list[Tick]:
        return [t for t in self.ticks if start <= t.at <= end]


@dataclass(frozen=True, slots=True)
class Pause:
    start: float
    end: float
    generation: int
    thread: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


class GcWatch:
    """Records every garbage collection of this process (`gc.callbacks`): a collection holds
    the GIL, so it stops the event loop whichever thread runs it."""

    def __init__(self) -> None:
        self.pauses: list[Pause] = []
        self._started: dict[int, float] = {}
        self._loop_thread = threading.get_ident()

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.monotonic()
        elif ident in self._started:
            thread = "the loop thread" if ident == self._loop_thread else "another thread"
            start = self._started.pop(ident)
            self.pauses.append(Pause(start, time.monotonic(), info["generation"], thread))

    def install(self) -> None:
        gc.callbacks.append(self)

    def uninstall(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self)

    def between(self, start: float, end: float) -> list[Pause]:
        return [p for p in self.pauses if p.end >= start and p.start <= end]

    def summary(self, start: float, end: float) -> str:
        pauses = self.between(start, end)
        parts = []
        for generation in (0, 1, 2):
            mine = [p.seconds * 1000 for p in pauses if p.generation == generation]
            if mine:
                parts.append(
                    f"gen{generation} {len(mine)}× (total {sum(mine):.0f}, max {max(mine):.1f} ms)"
                )
        return ", ".join(parts) or "none"


class LogCounter(logging.Handler):
    """Keeps the bot's warnings out of the table (the demo's sources point at a stopped server
    and fail on every poll) but counts them; errors are printed as they happen."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "asyncio" and record.msg == "Executing %s took %.3f seconds":
            return
        self.counts[f"{record.levelname} {record.name}: {record.msg}"] += 1
        if record.levelno >= logging.ERROR:
            print(f"[log] {self.format(record)}", file=sys.stderr, flush=True)


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process so far, by thread group."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    cpu: defaultdict[str, float] = defaultdict(float)
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        name = names.get(int(tid), "other (native)")
        if int(tid) == os.getpid():
            name = "main (event loop)"
        elif name.startswith("asyncio_"):
            name = "default executor (db.run, to_thread)"
        cpu[name] += seconds
    return dict(cpu)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


def children_cpu(world_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of the descendant processes: the world process (stand-ins and load
    generator) and the bot's own (forkserver and parse workers)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    me = os.getpid()

    def lineage(pid: int) -> list[int]:
        chain = [pid]
        while chain[-1] in parents and len(chain) < 64 and chain[-1] != me:
            chain.append(parents[chain[-1]])
        return chain

    cpu: dict[str, float] = {"world process": 0.0, "parse workers + forkserver": 0.0}
    for pid, seconds in times.items():
        chain = lineage(pid)
        if pid == me or chain[-1] != me:
            continue
        key = "world process" if world_pid in chain else "parse workers + forkserver"
        cpu[key] += seconds
    return cpu


def system_counters() -> dict[str, float]:
    """Machine-wide: CPU pressure (PSI "some": time at least one task waited for a CPU), steal
    (vCPU time the hypervisor gave to someone else), busy CPU time; and the loop thread's
    scheduler account. All in seconds, so far."""
    counters: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        counters["cpu pressure"] = int(some.rsplit("total=", 1)[1]) / 1e6
    with contextlib.suppress(OSError, ValueError, IndexError):
        values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        counters["steal"] = values[7] / ticks
        counters["busy"] = (sum(values[:8]) - values[3] - values[4]) / ticks
    with contextlib.suppress(OSError, ValueError, IndexError):
        text = Path(f"/proc/self/task/{os.getpid()}/schedstat").read_text().split()
        counters["loop on cpu"] = int(text[0]) / 1e9
        counters["loop queued"] = int(text[1]) / 1e9
    return counters


# ── the run ──────────────────────────────────────────────────────────────────────────────────


class AckBench(Protocol):
    """What one platform's bench supplies on the bot's side; `main` runs the rest."""

    name: str  # "Slack", "Discord"
    users: list[str]  # who sends the measured commands
    naive_users: list[str]  # whose commands the naive baseline's hook answers before acking
    answers_at: str  # where the adapter's answers are counted, for the report
    naive_answers_at: str
    channel: str  # the briefing channel, for the report

    @property
    def stand_in(self) -> StandInFactory:
        """Runs in the world process: a module-level class, so that it pickles by name."""
        ...

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def settings(self, ready: WorldReady, args: argparse.Namespace) -> dict[str, Any]:
        """The platform's settings on top of `bot_settings`'."""
        ...

    def describe_settings(self, args: argparse.Namespace) -> str:
        """The platform's settings for the report header (empty if none)."""
        ...

    def versions(self) -> str:
        """The platform library and its version, for the report header."""
        ...

    def build(self, app: App, core: ChatCore, runner: JobRunner) -> Platform:
        """The real adapter as `run_bot` builds it, plus the naive baseline's hook."""
        ...

    def target(self, platform: Platform) -> str:
        """`PhaseRequest.target` once the intake is started."""
        ...


@dataclass(slots=True)
class Phase:
    name: str
    samples: list[Sample]
    start: float
    end: float
    cpu: dict[str, float]
    children: dict[str, float]
    system: dict[str, float]
    ticks: list[Tick]
    gc: str = ""

    @property
    def ms(self) -> list[float]:
        return [s.ms for s in self.samples if s.ok]

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def timing(self, start: float, end: float) -> bool:
        """True if a command of this phase was being timed at some moment from start to end."""
        return any(s.start <= end and s.end >= start for s in self.samples)


@dataclass(slots=True)
class Busy:
    poll: Window = field(default_factory=lambda: Window("poll_once(force=True)"))
    summarize: Window = field(default_factory=lambda: Window("summarize_pending"))
    briefing: Window = field(default_factory=lambda: Window("briefing_for + publish"))
    poll_report: str = ""
    poll_new: int = -1
    published: bool | None = None
    built_at: float = math.nan

    @property
    def windows(self) -> list[Window]:
        return [self.poll, self.summarize, self.briefing]

    def running_at(self, moment: float) -> str:
        parts = []
        if self.poll.running_at(moment):
            done = self.poll.done_by(moment)
            parts.append(f"poll {done}/{len(self.poll.progress) or '?'} sources done")
        if self.summarize.running_at(moment):
            parts.append(f"summarize {self.summarize.done_by(moment)} done")
        if self.briefing.running_at(moment):
            stage = "posting" if moment >= self.built_at else "building (model call)"
            parts.append(f"briefing {stage}")
        return ", ".join(parts) or "no busy work"


def bot_settings(
    workdir: Path,
    database: Path,
    ready: WorldReady,
    args: argparse.Namespace,
    platform: dict[str, Any],
) -> Settings:
    return make_settings(
        workdir,
        DATABASE_URL=f"sqlite:///{database}",
        AINEWS_ADMIN_USERS="UADMIN",
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=ready.openai_base_url + "/v1",
        AINEWS_DAILY_TOKEN_BUDGET=1_000_000_000,
        AINEWS_POLL_CONCURRENCY=args.poll_concurrency,
        AINEWS_POLL_PER_HOST=args.per_host,
        AINEWS_PARSE_WORKERS=args.parse_workers,
        AINEWS_FETCH_TIMEOUT=20.0,
        TIKTOKEN_CACHE_DIR=workdir / "tiktoken",
        **platform,
    )


@dataclass(slots=True)
class Harness:
    """Runs one phase of commands through the world process and takes the bot process's
    readings around it."""

    world: World
    target: str
    args: argparse.Namespace
    ticker: LagTicker
    gcs: GcWatch

    async def phase(
        self, name: str, texts: list[str], users: list[str], *, naive: bool = False
    ) -> Phase:
        pid = self.world.process.pid
        cpu, children, system = thread_cpu(), children_cpu(pid), system_counters()
        start = time.monotonic()
        samples = await self.world.phase(
            PhaseRequest(
                name=name,
                target=self.target,
                texts=texts,
                users=users,
                naive=naive,
                concurrency=self.args.concurrency,
                rate=self.args.rate,
            )
        )
        end = time.monotonic()
        return Phase(
            name=name,
            samples=samples,
            start=start,
            end=end,
            cpu=cpu_delta(cpu, thread_cpu()),
            children=cpu_delta(children, children_cpu(pid)),
            system=cpu_delta(system, system_counters()),
            ticks=self.ticker.between(start, end),
            gc=self.gcs.summary(start, end),
        )


async def busy_phase(
    app: App,
    platform: Platform,
    harness: Harness,
    day: date,
    texts: list[str],
    users: list[str],
) -> tuple[Phase, Busy]:
    busy = Busy()

    async def poll() -> None:
        report = await poll_once(
            app, force=True, progress=lambda: busy.poll.progress.append(time.monotonic())
        )
        busy.poll_new = report.new
        busy.poll_report = (
            f"sources {report.sources}, new {report.new}, 304 {report.not_modified}, "
            f"failed {report.failed}"
        )

    async def summarize() -> None:
        while True:  # until cancelled once the commands are done
            report = await summarize_pending(
                app, progress=lambda: busy.summarize.progress.append(time.monotonic())
            )
            if report.total == 0:
                await asyncio.sleep(0.1)

    async def briefing() -> None:
        built = await briefing_for(app, day)
        busy.built_at = time.monotonic()
        busy.published = await platform.thread.publish(built)

    poll_task = asyncio.create_task(timed(busy.poll, poll()))
    summarize_task = asyncio.create_task(timed(busy.summarize, summarize()))
    briefing_task = asyncio.create_task(timed(busy.briefing, briefing()))
    await asyncio.sleep(harness.args.lead)
    phase = await harness.phase("busy", texts, users)
    busy.summarize.detail = "stopped after the last ack (it had more to do)"
    summarize_task.cancel()
    results = await asyncio.gather(poll_task, summarize_task, briefing_task, return_exceptions=True)
    for window, result in zip(busy.windows, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            window.error = window.error or repr(result)
    return phase, busy


# ── the report ───────────────────────────────────────────────────────────────────────────────


def fmt(value: float) -> str:
    return "    n/a" if math.isnan(value) else f"{value:7.1f}"


def lag_summary(ticks: list[Tick]) -> str:
    values = [t.late * 1000 for t in ticks]
    if not values:
        return "no ticks"
    stalls = sum(1 for x in values if x > STALL * 1000)
    return (
        f"p50 {percentile(values, 50):.1f}, p99 {percentile(values, 99):.1f}, "
        f"max {max(values):.1f} ms; {stalls} of {len(values)} ticks > {STALL * 1000:.0f} ms late"
    )


def machine_info(versions: str) -> list[str]:
    import sqlalchemy

    cpus = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cpus
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GB"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return [
        f"machine: {cpus} CPUs ({usable} usable, {model}), {memory} RAM, {platform.machine()}, "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()} ({platform.python_implementation()}), "
        f"switch interval {sys.getswitchinterval() * 1000:g} ms, {versions}, aiohttp "
        f"{aiohttp.__version__}, SQLAlchemy {sqlalchemy.__version__}; load average before the "
        f"run: {load}",
    ]


@dataclass(slots=True)
class Outcome:
    """Everything the report needs."""

    spec: AckBench
    args: argparse.Namespace
    info: list[str]
    ready: WorldReady
    idle: Phase
    naive: Phase
    busy: Phase
    work: Busy
    stats: WorldStats
    expected: dict[str, int]
    logs: LogCounter
    gcs: GcWatch
    heap: str


def _ratio(numerator: Phase, denominator: Phase, label: str) -> str:
    p50 = percentile(numerator.ms, 50) / percentile(denominator.ms, 50)
    p99 = percentile(numerator.ms, 99) / percentile(denominator.ms, 99)
    return f"  {label:<28} {'':>5} {p50:6.2f}× {'':>7} {p99:6.2f}×"


def report(o: Outcome) -> list[str]:
    """Print the results; return the problems that make the run invalid."""
    spec, args, stats, work = o.spec, o.args, o.stats, o.work
    idle, naive, busy = o.idle, o.naive, o.busy
    problems: list[str] = []
    rule = "─" * 94
    log("")
    log(rule)
    log(f"{spec.name} ack benchmark")
    for line in o.info:
        log(line)
    log(
        f"workload: {args.commands} commands per phase (4/5 search, 1/5 ask), concurrency "
        f"{args.concurrency}, {args.rate:g}/s; model {args.model_latency * 1000:.0f} ms per "
        f"call; {args.feeds} feeds × {args.items} items ({o.ready.feed_bytes / 1e6:.1f} MB), "
        f"{args.feed_latency * 1000:.0f} ms per feed"
    )
    extra = spec.describe_settings(args)
    log(
        f"settings: AINEWS_POLL_CONCURRENCY={args.poll_concurrency} AINEWS_POLL_PER_HOST="
        f"{args.per_host} AINEWS_PARSE_WORKERS={args.parse_workers}"
        + (f" {extra}" if extra else "")
        + "; SQLite (the demo database)"
    )
    log(rule)
    log(
        f"  {'ack latency (ms)':<28} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
        f" {'> 3 s':>6}"
    )
    labels = {
        "idle": "idle",
        "busy": "busy",
        "naive": "naive baseline, idle",
    }
    for phase in (idle, busy, naive):
        ms = phase.ms
        over = sum(1 for x in ms if x > PLATFORM_LIMIT_MS)
        log(
            f"  {labels[phase.name]:<28} {len(ms):>5} {fmt(percentile(ms, 50))} "
            f"{fmt(percentile(ms, 95))} {fmt(percentile(ms, 99))} "
            f"{fmt(max(ms) if ms else math.nan)} {over:>6}"
        )
    log(_ratio(busy, idle, "ratio busy / idle"))
    log(_ratio(naive, idle, "ratio naive / idle"))
    log(_ratio(naive, busy, "ratio naive (idle) / busy"))
    log("  naive baseline: the same commands from other users, each answered before its ack")
    log("  (a bench hook awaits the answer and sends it as the ack); measured idle, its best")
    log("  case, so naive (idle) / busy understates what deferring saves while busy")
    log(rule)
    p99 = percentile(busy.ms, 99)
    verdict = "PASS" if p99 < TARGET_BUSY_P99_MS else "MISS  <<<"
    log(
        f"  busy p99 {p99:.1f} ms   target < {TARGET_BUSY_P99_MS:.0f} ms   {verdict}   "
        f"({spec.name}'s limit: {PLATFORM_LIMIT_MS / 1000:.0f} s)"
    )
    log(rule)

    for phase in (idle, naive, busy):
        bad = [s for s in phase.samples if not s.ok]
        if bad:
            problems.append(f"{phase.name}: {len(bad)} commands not acked, e.g. {bad[0].error}")
        queued = sum(1 for s in phase.samples if s.start - s.scheduled > 0.01)
        log(
            f"  {phase.name}: {phase.seconds:.1f} s, {queued} commands started > 10 ms after "
            "their schedule (every slot awaiting an ack, or the load loop late)"
        )
        # A tick that started at `at` was due at `at + TICK`: the loop was held from then on.
        load_late = [x for at, x in stats.load_stalls if phase.timing(at + TICK, at + TICK + x)]
        world_gcs = [p.seconds for p in stats.gc_pauses if phase.timing(p.start, p.end)]
        log(
            f"    world process while a command was timed: load loop > "
            f"{LOAD_STALL * 1000:.0f} ms late {len(load_late)}× (max "
            f"{max(load_late, default=0) * 1000:.0f} ms); collections > {WORLD_GC * 1000:.0f} ms "
            f"{len(world_gcs)}× (max {max(world_gcs, default=0) * 1000:.0f} ms)"
        )
        log(
            f"    event-loop lag (sleep {TICK * 1000:.0f} ms, lateness): {lag_summary(phase.ticks)}"
        )
        cpu = ", ".join(
            f"{k} {v:.2f} s"
            for k, v in sorted(phase.cpu.items(), key=lambda kv: -kv[1])
            if v >= 0.01
        )
        log(f"    bot process CPU by thread: {cpu}")
        children = ", ".join(f"{k} {v:.2f} s" for k, v in phase.children.items())
        system = phase.system
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        ours = sum(phase.cpu.values()) + sum(phase.children.values())
        machine = system.get("busy", math.nan)
        log(f"    bench child processes CPU: {children}")
        log(
            f"    machine: CPUs busy {machine / phase.seconds / cpus * 100:.0f}% of "
            f"{cpus} × {phase.seconds:.1f} s ({machine:.1f} s: this bench {ours:.1f} s, other "
            f"processes on the machine {max(0.0, machine - ours):.1f} s), CPU pressure "
            f"{system.get('cpu pressure', math.nan) / phase.seconds * 100:.0f}% of the time, "
            f"steal {system.get('steal', math.nan):.2f} s"
        )
        log(
            f"    loop thread: on a CPU {system.get('loop on cpu', math.nan):.2f} s, runnable "
            f"but waiting for a CPU {system.get('loop queued', math.nan):.2f} s"
        )
        log(f"    garbage collections (they stop every thread): {phase.gc}")
    log(rule)

    zero = busy.samples[0].start if busy.samples else busy.start
    log("  busy work (seconds relative to the first busy command):")
    for window in work.windows:
        status = window.error or window.detail or "finished"
        log(
            f"    {window.name:<24} {window.start - zero:+6.2f} → {window.end - zero:+6.2f} s "
            f"({window.end - window.start:4.1f} s, {len(window.progress)} done) {status}"
        )
        if window.error:
            problems.append(f"{window.name} failed: {window.error}")
    log(f"    poll report: {work.poll_report}")
    log(
        f"    briefing: built in {work.built_at - work.briefing.start:.2f} s, published "
        f"{work.published}, {stats.briefing_messages} messages in {spec.channel} and its thread"
    )
    log(f"    model requests by schema (whole run): {stats.model_requests}")
    inside = {
        w.name: sum(1 for s in busy.samples if w.overlaps(s.start, s.end)) for w in work.windows
    }
    every = sum(1 for s in busy.samples if all(w.overlaps(s.start, s.end) for w in work.windows))
    none = sum(1 for s in busy.samples if not any(w.overlaps(s.start, s.end) for w in work.windows))
    log(
        "    busy commands whose ack overlapped: "
        + ", ".join(f"{k} {v}/{len(busy.samples)}" for k, v in inside.items())
        + f"; all three {every}; none {none}"
    )
    if none:
        problems.append(f"{none} busy commands ran while no busy work was running")
    for window in (work.poll, work.briefing):
        if inside[window.name] == 0:
            problems.append(f"no busy command overlapped {window.name}")
    if work.poll_new != args.feeds * args.items:
        problems.append(
            f"busy poll stored {work.poll_new} new articles, expected {args.feeds * args.items}"
        )
    if work.published is not True or stats.briefing_messages < 2:
        problems.append(
            f"briefing not posted (published={work.published}, messages={stats.briefing_messages})"
        )
    answered = {k: stats.answered.get(k, 0) for k in o.expected}
    where = {k: spec.naive_answers_at if k == "naive" else spec.answers_at for k in o.expected}
    log(
        "  answers: "
        + ", ".join(f"{k} {answered[k]}/{n} {where[k]}" for k, n in o.expected.items())
    )
    for k, n in o.expected.items():
        if answered[k] != n:
            problems.append(f"{k}: {answered[k]} of {n} commands answered {where[k]}")
    log(rule)

    log("  slowest busy acks (and what ran meanwhile in the world process):")
    for s in sorted(busy.samples, key=lambda s: -s.ms)[:5]:
        lags = [x for at, x in stats.load_stalls if at + TICK <= s.end and at + TICK + x >= s.start]
        collections = [p.seconds for p in stats.gc_pauses if p.end >= s.start and p.start <= s.end]
        notes = []
        if lags:
            notes.append(f"load loop {max(lags) * 1000:.0f} ms late")
        if collections:
            notes.append(f"world GC {sum(collections) * 1000:.0f} ms")
        world_side = "; ".join(notes)
        log(
            f"    {s.ms:6.1f} ms  {s.text.split()[0]:<6} at {s.start - zero:+6.2f} s  "
            f"{work.running_at(s.start)}" + (f"  [{world_side}]" if world_side else "")
        )
    log("  worst event-loop stalls while busy (tick lateness; where the loop thread's time went):")
    for tick in sorted(busy.ticks, key=lambda t: -t.late)[:6]:
        pauses = o.gcs.between(tick.at, tick.at + TICK + tick.late)
        long = [p for p in pauses if p.seconds >= 0.001]
        short = [p for p in pauses if p.seconds < 0.001]
        collected = "; ".join(
            f"gen{p.generation} GC {p.seconds * 1000:.1f} ms in {p.thread}" for p in long
        )
        if short:  # dozens of sub-millisecond gen0 runs say nothing one by one
            collected += "; " if collected else ""
            collected += (
                f"{len(short)} shorter GCs ({sum(p.seconds for p in short) * 1000:.1f} ms in all)"
            )
        log(
            f"    {tick.late * 1000:6.1f} ms at {tick.at - zero:+6.2f} s: {tick.split()}\n"
            f"{'':>27}during: {work.running_at(tick.at)}"
            + (f"\n{'':>27}{collected}" if collected else "")
        )
    stalls = [t for t in busy.ticks if t.late > STALL]
    if stalls:
        late = sum(t.late for t in stalls)
        log(
            f"  all {len(stalls)} stalls > {STALL * 1000:.0f} ms together: {late * 1000:.0f} ms "
            f"late = loop thread on CPU {sum(t.on_cpu for t in stalls) * 1000:.0f} ms + waiting "
            f"for a CPU {sum(t.queued for t in stalls) * 1000:.0f} ms + off CPU "
            f"{sum(t.off_cpu for t in stalls) * 1000:.0f} ms"
        )
    log(f"  {o.heap}")
    if o.logs.counts:
        log(
            "  bot log warnings/errors (counted, not shown): "
            + "; ".join(f"{n}× {m[:80]}" for m, n in o.logs.counts.most_common(6))
        )
    log(rule)
    return problems


# ── main ─────────────────────────────────────────────────────────────────────────────────────


def clean_environment() -> None:
    """This process only: the developer's AINEWS_/OPENAI_/SLACK_ variables must not leak into
    the bench settings (unset fields would otherwise be read from the environment)."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            del os.environ[name]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


async def bench(spec: AckBench, args: argparse.Namespace) -> int:
    info = machine_info(spec.versions())
    counter = LogCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    root.setLevel(logging.WARNING)
    ticker = LagTicker()
    gcs = GcWatch()
    gcs.install()

    workdir = Path(tempfile.mkdtemp(prefix=f"ainews-{spec.name.lower()}-ack-"))
    world = World(
        WorldOptions(args.feeds, args.items, args.feed_latency, args.model_latency),
        spec.stand_in,
    )
    try:
        started = time.monotonic()
        ready = await world.start()
        log(
            f"world process up in {time.monotonic() - started:.1f} s: {spec.name}, OpenAI and "
            f"{len(ready.feed_urls)} feeds on 127.0.0.1"
        )
        started = time.monotonic()
        demo_settings = make_settings(workdir, TIKTOKEN_CACHE_DIR=workdir / "tiktoken")
        demo = await run_demo(demo_settings)
        database = demo_settings.var_dir / "demo" / "ainews-demo.sqlite3"
        day = demo.briefing.day
        log(
            f"demo database in {time.monotonic() - started:.1f} s: {demo.poll.new} articles, "
            f"briefing day {day}"
        )
        settings = bot_settings(workdir, database, ready, args, spec.settings(ready, args))
        async with open_app(settings, fetching=True, llm=True) as app:
            assert app.llm is not None, "the app opened without the model"
            slugs = [c.slug for c in app.taxonomy.categories]
            specs = [
                SourceSpec(
                    url=url,
                    name=f"Bench feed {i}",
                    category=slugs[i % len(slugs)],
                    language="ja" if i % 3 == 0 else "en",
                )
                for i, url in enumerate(ready.feed_urls)
            ]
            await app.db.run(add_missing_sources, specs=specs)
            runner = JobRunner()
            platform = spec.build(app, ChatCore(app, spawn=runner.spawn), runner)
            started = time.monotonic()
            await platform.intake.start_intake()
            # As run_bot does once its platforms are up: what lives as long as the process
            # leaves the collector's view, so a full collection no longer stops the loop.
            gc.collect()
            gc.freeze()
            ticker.start()
            try:
                target = spec.target(platform)
                log(
                    f"{spec.name} intake started in {time.monotonic() - started:.1f} s"
                    + (f" ({target})" if target else "")
                    + "; warming up"
                )
                harness = Harness(world, target, args, ticker, gcs)
                warm_texts = [f"search {w}" for w in SEARCH_WORDS[: len(spec.users)]] + [
                    "ask 規制とは？"
                ]
                warm = await harness.phase("warmup", warm_texts, spec.users)
                await world.wait_for_answers({"warmup": len(warm.samples)}, 30)
                heap_before = len(gc.get_objects())

                texts = command_texts(args.commands, seed=7)
                idle = await harness.phase("idle", texts, spec.users)
                log(
                    f"idle phase: {len(idle.samples)} commands in {idle.seconds:.1f} s; "
                    "waiting for the answers"
                )
                await world.wait_for_answers({"idle": len(texts)}, args.answer_timeout)
                await asyncio.sleep(0.5)  # let the idle answers' tails settle

                naive = await harness.phase("naive", texts, spec.naive_users, naive=True)
                log(
                    f"naive baseline (idle): {len(naive.samples)} commands in {naive.seconds:.1f} s"
                )
                await world.wait_for_answers({"naive": len(texts)}, args.answer_timeout)
                await asyncio.sleep(0.5)

                log("busy phase: poll + summarize + briefing started")
                busy, work = await busy_phase(app, platform, harness, day, texts, spec.users)
                log(
                    f"busy phase: {len(busy.samples)} commands in {busy.seconds:.1f} s; "
                    "waiting for the answers"
                )
                expected = {
                    "warmup": len(warm.samples),
                    "idle": len(texts),
                    "naive": len(texts),
                    "busy": len(texts),
                }
                stats = await world.wait_for_answers(expected, args.answer_timeout)
                heap = (
                    f"objects tracked by the GC: {heap_before:,} before the measurements, "
                    f"{len(gc.get_objects()):,} after the busy phase; frozen (gc.freeze) "
                    f"{gc.get_freeze_count():,}"
                )
            finally:
                await ticker.stop()
                # run_bot's shutdown order: stop taking commands, finish what was acked, close.
                await platform.intake.stop_intake()
                await runner.drain(10)
                await platform.intake.close()
        gcs.uninstall()
        problems = report(
            Outcome(
                spec=spec,
                args=args,
                info=info,
                ready=ready,
                idle=idle,
                naive=naive,
                busy=busy,
                work=work,
                stats=stats,
                expected=expected,
                logs=counter,
                gcs=gcs,
                heap=heap,
            )
        )
    finally:
        await world.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        log("INVALID RUN:")
        for problem in problems:
            log(f"  - {problem}")
        return 1
    return 0


def main(spec: AckBench, description: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=description)
    add = parser.add_argument
    add("--commands", type=int, default=200, help="commands per phase (200)")
    add("--concurrency", type=int, default=10, help="commands awaiting their ack at most (10)")
    add("--rate", type=float, default=25.0, help="commands started per second, 0 = unpaced (25)")
    add("--feeds", type=int, default=200, help="feeds the busy poll fetches (200)")
    add("--items", type=int, default=20, help="items per feed (20)")
    add("--feed-latency", type=float, default=0.1, help="feed server latency, s (0.1)")
    add("--model-latency", type=float, default=0.5, help="model latency per call, s (0.5)")
    add("--poll-concurrency", type=int, default=32, help="AINEWS_POLL_CONCURRENCY (32)")
    add("--per-host", type=int, default=32, help="AINEWS_POLL_PER_HOST (32: one host here)")
    add("--parse-workers", type=int, default=0, help="AINEWS_PARSE_WORKERS (0 = per CPU)")
    add("--lead", type=float, default=0.5, help="s from busy work start to first command (0.5)")
    add("--answer-timeout", type=float, default=180.0, help="s to wait for the answers (180)")
    spec.add_arguments(parser)
    args = parser.parse_args(argv)
    clean_environment()
    return asyncio.run(bench(spec, args))
