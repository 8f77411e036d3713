"""Prometheus metrics of one `ainews` process, served at `/metrics` by `bot/health.py`.

Every metric lives here, on a registry of the app's own (not prometheus-client's global
default): two apps in one test process, or a test after another, never see each other's
counts. Jobs do not know about metrics: they return reports (`PollReport`, `SummarizeReport`),
and the bot code that ran them records those here; what only the bot layer sees (LLM usage,
posts, command latency, claim takeovers) is recorded where it happens.

Each process exports its own counts; with several processes, Prometheus scrapes each and sums.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

if TYPE_CHECKING:
    from jobs.poll import PollReport
    from jobs.summarize import SummarizeReport

__all__ = ["CONTENT_TYPE", "Metrics", "PriceFn", "command_label"]

# What a call cost in US dollars from (model, prompt tokens, completion tokens); None when the
# model's price is not known (its tokens are still counted).
PriceFn = Callable[[str, int, int], float | None]

# Chat commands are answered in well under a second, a model's answer (`ask`) in several.
COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
POLL_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    def __init__(self, *, price: PriceFn | None = None) -> None:
        self.registry = CollectorRegistry()
        self.price = price
        registry = self.registry
        ProcessCollector(registry=registry)  # memory, CPU, open files of this process
        PlatformCollector(registry=registry)
        self.poll_runs = Counter(
            "ainews_poll_runs", "Poll passes over the due sources.", registry=registry
        )
        self.poll_seconds = Histogram(
            "ainews_poll_duration_seconds",
            "Wall time of one poll pass.",
            buckets=POLL_BUCKETS,
            registry=registry,
        )
        self.feed_polls = Counter(
            "ainews_feed_polls", "Feeds fetched (one per due source and poll).", registry=registry
        )
        self.feed_not_modified = Counter(
            "ainews_feed_not_modified",
            "Feeds answered 304 Not Modified (nothing parsed).",
            registry=registry,
        )
        self.feed_failures = Counter(
            "ainews_feed_poll_failures",
            "Feeds whose poll failed (HTTP error, timeout, malformed feed, refused address).",
            registry=registry,
        )
        self.new_articles = Counter(
            "ainews_articles_new", "Articles stored for the first time.", registry=registry
        )
        self.summaries = Counter(
            "ainews_summaries",
            "Articles summarised, by method (llm, extractive, cached).",
            ["method"],
            registry=registry,
        )
        self.llm_tokens = Counter(
            "ainews_llm_tokens",
            "Tokens used by model calls, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=registry,
        )
        self.llm_cost = Counter(
            "ainews_llm_cost_usd",
            "Cost of model calls in US dollars, for models whose price is known.",
            ["model"],
            registry=registry,
        )
        self.posts = Counter(
            "ainews_posts",
            "Messages published, by platform (console, slack, discord) and kind "
            "(parent, item, file, dm).",
            ["platform", "kind"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "ainews_command_duration_seconds",
            "Time from a chat command's arrival to its answer, by platform and command.",
            ["platform", "command"],
            buckets=COMMAND_BUCKETS,
            registry=registry,
        )
        self.claim_takeovers = Counter(
            "ainews_claim_takeovers",
            "Claims whose holder stopped (lease expired, not released) taken over by this "
            "process, by what was claimed.",
            ["claim"],
            registry=registry,
        )

    # ── recorders, called by the code that knows ─────────────────────────────────────────────

    def record_poll(self, report: PollReport, seconds: float) -> None:
        self.poll_runs.inc()
        self.poll_seconds.observe(seconds)
        self.feed_polls.inc(report.sources)
        self.feed_not_modified.inc(report.not_modified)
        self.feed_failures.inc(report.failed)
        self.new_articles.inc(report.new)
        if report.claims_taken_over:  # sources a dead process had claimed, polled by this one
            self.claim_takeovers.labels(claim="source").inc(report.claims_taken_over)

    def record_summaries(self, report: SummarizeReport) -> None:
        for method, count in (
            ("llm", report.llm),
            ("extractive", report.extractive),
            ("cached", report.cached),
        ):
            self.summaries.labels(method=method).inc(count)

    def record_llm_usage(self, *, model: str, prompt: int, completion: int) -> None:
        self.llm_tokens.labels(model=model, kind="prompt").inc(prompt)
        self.llm_tokens.labels(model=model, kind="completion").inc(completion)
        cost = self.price(model, prompt, completion) if self.price is not None else None
        if cost is not None:
            self.llm_cost.labels(model=model).inc(cost)

    def record_post(self, destination: str, kind: str, *, count: int = 1) -> None:
        """`destination` is a claim key (`console`, `slack:C123`) or a platform: counted per
        platform, so a channel id never becomes a label value."""
        self.posts.labels(platform=destination.split(":", 1)[0], kind=kind).inc(count)

    def record_command(self, *, platform: str, text: str, seconds: float) -> None:
        self.command_seconds.labels(platform=platform, command=command_label(text)).observe(seconds)

    def takeover_recorder(self, claim: str) -> Callable[[], None]:
        """A callback for storage's claim functions, called when a stale claim is taken over
        (from a worker thread: prometheus-client's counters are thread-safe)."""
        return self.claim_takeovers.labels(claim=claim).inc

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def command_label(text: str) -> str:
    """The command's name if it is one of ours, else `other`: what users type must not become
    a label value (each would be a new time series)."""
    words = text.split(maxsplit=1)
    if not words:
        return "help"
    name = words[0].lower()
    return name if name in _command_names() else "other"


@cache
def _command_names() -> frozenset[str]:
    """The names in the help's command list (`/ainews search …` → `search`), so a new command
    is labelled without a second list to keep in step."""
    from handlers.commands import ADMIN_COMMANDS, COMMANDS

    usages = [usage for usage, _ in COMMANDS] + list(ADMIN_COMMANDS)
    return frozenset({"help"} | {usage.split()[1] for usage in usages})
