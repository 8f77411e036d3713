"""The summarize job: every stored article gets exactly one summary.

Order of preference per article: a cached summary of identical content (same content hash,
model and prompt version: nothing is summarised twice), the LLM (one article per call, so facts
cannot cross between articles, then checked by `grounding`; one re-ask on failure), and the
extractive fallback when there is no key, the budget is low or spent (`jobs.spend`) or the model
keeps failing. Each summary records why it is extractive, and each outcome is kept for
`ainews stats`.

After the pending articles, budget fallbacks of earlier days are re-summarised by the model,
newest first, at most `resummarize_per_run` per run and only while the budget is at step 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from jobs.cross_language import group_across_languages
from jobs.extractive import (
    EXTRACTIVE_MODEL,
    EXTRACTIVE_VERSION,
    estimate_importance,
    summarize_extractively,
)
from jobs.grounding import grounding_problems
from jobs.llm import LLM, BudgetExhausted, InvalidOutput, LLMError
from jobs.prompts import SUMMARY_PROMPT_VERSION, summary_prompt, summary_schema
from jobs.spend import (
    API_ERROR,
    BUDGET_ALL,
    BUDGET_CAUSES,
    BUDGET_MINOR,
    BUDGET_SPENT,
    NO_KEY,
    REJECTED,
    BudgetLevel,
    budget_level,
)
from jobs.text import MAX_BODY_CHARS, shorten
from storage.articles import articles_with_sources, story_sizes
from storage.claims import claim_pending_articles, release_articles
from storage.clock import ensure_utc, utcnow
from storage.db import Database
from storage.models import Article, Source, Summary, SummaryOutcome
from storage.summaries import (
    budget_fallbacks,
    cached_summary,
    replace_fallback,
    save_summary,
    set_fallback,
)
from storage.taxonomy import Taxonomy

log = logging.getLogger(__name__)

BATCH = 200
# A batch of pending articles is this process's for this long: far longer than 200 articles
# take at `concurrency` calls at a time, so only a dead process's claims expire.
CLAIM_LEASE = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class SummarizeConfig:
    """`max_body_chars`: only this much of a body is tokenised, truncated or scanned by the
    extractive summariser; the rest of a 10 MB body would cost seconds of CPU and change nothing
    (the model sees `max_article_tokens` of it, the extractive summary its lead). `tz` is the
    zone of the local day outcomes are counted in (as the token budget counts);
    `resummarize_per_run` bounds the budget fallbacks of earlier days summarised again per run."""

    max_article_tokens: int
    max_output_tokens: int
    concurrency: int = 4
    max_body_chars: int = MAX_BODY_CHARS
    tz: tzinfo = UTC
    resummarize_per_run: int = 0


@dataclass(slots=True)
class SummarizeReport:
    llm: int = 0
    extractive: int = 0
    cached: int = 0
    regrounded: int = 0
    fallbacks: int = 0
    resummarized: int = 0

    @property
    def total(self) -> int:
        return self.llm + self.extractive + self.cached

    def as_dict(self) -> dict[str, int]:
        return {
            "summarized": self.total,
            "llm": self.llm,
            "extractive": self.extractive,
            "cached": self.cached,
            "regrounded": self.regrounded,
            "fallbacks": self.fallbacks,
            "resummarized": self.resummarized,
        }


class SummaryDraft(BaseModel):
    """The model's JSON, validated before anything is stored."""

    title_ja: str = Field(min_length=1, max_length=300)
    overview: str = Field(min_length=1, max_length=1500)
    points: list[str] = Field(min_length=3)
    why_important: str = Field(min_length=1, max_length=1000)
    keywords: list[str] = Field(min_length=1)
    category: str
    importance: int = Field(ge=1, le=3)

    @field_validator("points")
    @classmethod
    def _three(cls, points: list[str]) -> list[str]:
        points = [p.strip() for p in points if p.strip()]
        if len(points) < 3:
            raise ValueError("need three points")
        return points[:3]

    def texts(self) -> list[str]:
        return [self.title_ja, self.overview, *self.points, self.why_important, *self.keywords]


@dataclass(frozen=True, slots=True)
class _Attempt:
    """What asking the model gave: a summary, or why not (`cause`); the re-asks it cost."""

    summary: Summary | None
    cause: str | None = None
    reasks: int = 0


class Summarizer:
    def __init__(
        self,
        *,
        db: Database,
        taxonomy: Taxonomy,
        config: SummarizeConfig,
        llm: LLM | None,
        clock: Callable[[], datetime] = utcnow,
        owner: str = "ainews",
    ) -> None:
        self.db = db
        self.owner = owner
        self.taxonomy = taxonomy
        self.config = config
        self.llm = llm
        self.clock = clock
        self._budget_spent = False
        # Articles of the current batch summarised by the model (or from its cache): their
        # Japanese titles can join stories across languages.
        self._by_model: list[int] = []

    @property
    def model(self) -> str:
        return self.llm.model if self.llm else EXTRACTIVE_MODEL

    @property
    def prompt_version(self) -> str:
        return SUMMARY_PROMPT_VERSION if self.llm else EXTRACTIVE_VERSION

    async def run(self, on_article_done: Callable[[], None] | None = None) -> SummarizeReport:
        """Summarise every pending article, in batches, `concurrency` model calls at a time."""
        report = SummarizeReport()
        gate = asyncio.Semaphore(self.config.concurrency)
        # Articles with identical content wait for the first one, then hit the cache: without
        # this, copies in the same batch would all miss it and each cost a model call.
        same_content: dict[str, asyncio.Lock] = {}

        async def one(article: Article, source: Source, story_size: int) -> None:
            async with same_content.setdefault(article.content_hash, asyncio.Lock()), gate:
                await self._summarize_one(article, source, story_size, report)
            if on_article_done is not None:
                on_article_done()

        while True:
            claimed = await self.db.run(
                claim_pending_articles,
                owner=self.owner,
                now=ensure_utc(self.clock()),
                lease=CLAIM_LEASE,
                limit=BATCH,
            )
            if not claimed.ids:
                break
            try:
                pending = await self.db.run(articles_with_sources, ids=claimed.ids)
                sizes = await self.db.run(
                    story_sizes, story_ids={a.story_id for a, _ in pending if a.story_id}
                )
                self._by_model = []
                await asyncio.gather(
                    *(one(a, s, sizes.get(a.story_id or -1, 1)) for a, s in pending)
                )
                await group_across_languages(self.db, sorted(self._by_model))
            finally:
                # Summarised articles are not pending any more; the rest (a run stopped or
                # failed mid-batch) go back at once instead of when the lease ends.
                await self.db.run_to_the_end(release_articles, owner=self.owner, ids=claimed.ids)
        await self._resummarize(report)
        log.info("summarize finished", extra=report.as_dict())
        return report

    def _today(self) -> date:
        return self.clock().astimezone(self.config.tz).date()

    def _outcome(
        self, article: Article, method: str, *, cause: str | None = None, reasks: int = 0
    ) -> SummaryOutcome:
        assert article.id is not None
        return SummaryOutcome(
            day=self._today(), article_id=article.id, method=method, cause=cause, reasks=reasks
        )

    async def _summarize_one(
        self, article: Article, source: Source, story_size: int, report: SummarizeReport
    ) -> None:
        summary = await self._from_cache(article)
        if summary is not None:
            outcome = self._outcome(article, "cached")
            report.cached += 1
        else:
            attempt = await self._attempt(article, source, story_size, report)
            if attempt.summary is None:
                # A thread, not the loop: a few milliseconds per article (up to ~20 ms at the
                # body cap), for each of a batch of 200 while chat commands wait to be acked.
                summary = await asyncio.to_thread(
                    self._extractive, article, source, story_size, attempt.cause
                )
                outcome = self._outcome(
                    article, "extractive", cause=attempt.cause, reasks=attempt.reasks
                )
                report.extractive += 1
            else:
                summary = attempt.summary
                outcome = self._outcome(article, "llm", reasks=attempt.reasks)
                report.llm += 1
        summary.created_at = ensure_utc(self.clock())  # "a later day" is the app's clock's
        await self.db.run(save_summary, summary=summary, outcome=outcome)
        if summary.method == "llm" and article.id is not None:
            self._by_model.append(article.id)

    async def _from_cache(self, article: Article) -> Summary | None:
        assert article.id is not None
        cached = await self.db.run(
            cached_summary,
            content_hash=article.content_hash,
            model=self.model,
            prompt_version=self.prompt_version,
        )
        if cached is None:
            return None
        # A new row, not a copy: `model_copy` would share the cached row's SQLAlchemy state,
        # and the session would then insert nothing (the article stays pending).
        fields = cached.model_dump(
            exclude={"id", "article_id", "created_at", "prompt_tokens", "completion_tokens"}
        )
        return Summary(**fields, article_id=article.id)

    async def _attempt(
        self, article: Article, source: Source, story_size: int, report: SummarizeReport
    ) -> _Attempt:
        """The model's summary, unless the budget's step says this article goes extractive
        (importance from the extractive heuristic, so it is known before any call)."""
        if self.llm is None:
            return _Attempt(None, NO_KEY)
        if self._budget_spent:
            return _Attempt(None, BUDGET_SPENT)
        level = await budget_level(self.llm)
        if level >= BudgetLevel.ALL_EXTRACTIVE:
            return _Attempt(None, BUDGET_ALL)
        if level >= BudgetLevel.MINOR_EXTRACTIVE:
            body = article.body_text[: self.config.max_body_chars]
            if estimate_importance(article.title, body, story_size) <= 1:
                return _Attempt(None, BUDGET_MINOR)
        return await self._with_llm(article, source, report)

    async def _resummarize(self, report: SummarizeReport) -> None:
        """Budget fallbacks of earlier days, newest first, one at a time while the budget is
        at step 0: today's new articles come first, and re-summarising stops before it could
        push them into degradation."""
        limit = self.config.resummarize_per_run
        if self.llm is None or limit <= 0 or self._budget_spent:
            return
        if await budget_level(self.llm) > BudgetLevel.NORMAL:
            return
        midnight = datetime.combine(self._today(), time(0), tzinfo=self.config.tz)
        rows = await self.db.run(
            budget_fallbacks, causes=BUDGET_CAUSES, before=ensure_utc(midnight), limit=limit
        )
        for article, source, old in rows:
            assert old.id is not None
            if await budget_level(self.llm) > BudgetLevel.NORMAL:
                break
            summary = await self._from_cache(article)
            outcome = self._outcome(article, "cached")
            if summary is None:
                attempt = await self._with_llm(article, source, report)
                if attempt.summary is None:
                    if attempt.cause == REJECTED:  # the model had its chance: not again
                        await self.db.run(set_fallback, summary_id=old.id, cause=REJECTED)
                        continue
                    break  # out of budget, or the API is failing: a later run tries again
                summary = attempt.summary
                outcome = self._outcome(article, "llm", reasks=attempt.reasks)
            outcome.resummary = True
            if await self.db.run(
                replace_fallback, summary_id=old.id, summary=summary, outcome=outcome
            ):
                report.resummarized += 1
                log.info(
                    "budget fallback re-summarised",
                    extra={"article_id": article.id, "was": old.fallback},
                )

    async def _with_llm(
        self, article: Article, source: Source, report: SummarizeReport
    ) -> _Attempt:
        assert self.llm is not None
        # Tokenising costs up to 0.1 ms per 1,000 characters (Japanese) and truncation counts
        # several prefixes: off the loop, and of the capped body only.
        body = await asyncio.to_thread(
            self.llm.tokens.truncate,
            article.body_text[: self.config.max_body_chars],
            self.config.max_article_tokens,
        )
        source_text = f"{article.title}\n{body}"
        feedback: str | None = None
        tokens = [0, 0]
        for attempt in (1, 2):
            prompt = summary_prompt(
                taxonomy=self.taxonomy,
                source_name=source.name,
                title=article.title,
                body=body,
                feedback=feedback,
            )
            try:
                reply = await self.llm.complete_json(
                    purpose="summary",
                    system=prompt.system,
                    user=prompt.user,
                    schema_name="article_summary",
                    schema=summary_schema(self.taxonomy),
                    max_output_tokens=self.config.max_output_tokens,
                )
            except BudgetExhausted as exc:
                self._budget_spent = True
                log.warning(
                    "token budget spent; falling back to extractive", extra={"why": str(exc)}
                )
                return _Attempt(None, BUDGET_SPENT, attempt - 1)
            except InvalidOutput as exc:
                feedback = str(exc)  # the model's own mistake: worth one re-ask
                log.info(
                    "summary reply unusable",
                    extra={"article_id": article.id, "attempt": attempt, "error": str(exc)},
                )
                continue
            except LLMError as exc:
                # Transport or API failure after the client's own retries: asking again now
                # would only repeat them.
                log.warning(
                    "summary call failed", extra={"article_id": article.id, "error": str(exc)}
                )
                report.fallbacks += 1
                return _Attempt(None, API_ERROR, attempt - 1)
            tokens[0] += reply.prompt_tokens
            tokens[1] += reply.completion_tokens
            draft, problem = self._validate(reply.data, source_text)
            if draft is not None:
                if attempt == 2:
                    report.regrounded += 1
                return _Attempt(self._from_draft(article, draft, tokens), reasks=attempt - 1)
            feedback = problem
            log.info(
                "summary rejected",
                extra={"article_id": article.id, "attempt": attempt, "problem": problem},
            )
        report.fallbacks += 1
        return _Attempt(None, REJECTED, reasks=1)

    def _validate(self, data: dict[str, Any], source_text: str) -> tuple[SummaryDraft | None, str]:
        try:
            draft = SummaryDraft.model_validate(data)
        except ValidationError as exc:
            return None, "invalid JSON fields: " + "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3]
            )
        if draft.category not in self.taxonomy.slugs:
            return None, f"unknown category {draft.category!r}"
        problems = grounding_problems(draft.texts(), source_text)
        if problems:
            return None, "; ".join(problems)
        return draft, ""

    def _from_draft(self, article: Article, draft: SummaryDraft, tokens: list[int]) -> Summary:
        assert article.id is not None and self.llm is not None
        return Summary(
            article_id=article.id,
            title_ja=shorten(draft.title_ja.strip(), 200),
            overview=draft.overview.strip(),
            points=draft.points,
            why_important=draft.why_important.strip(),
            keywords=[k.strip() for k in draft.keywords if k.strip()][:5],
            category=draft.category,
            importance=draft.importance,
            method="llm",
            model=self.llm.model,
            prompt_version=SUMMARY_PROMPT_VERSION,
            content_hash=article.content_hash,
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
        )

    def _extractive(
        self, article: Article, source: Source, story_size: int, cause: str | None
    ) -> Summary:
        assert article.id is not None
        result = summarize_extractively(
            title=article.title,
            body=article.body_text[: self.config.max_body_chars],
            default_category=source.category,
            taxonomy=self.taxonomy,
            sources_in_story=story_size,
        )
        return Summary(
            article_id=article.id,
            title_ja=result.title,
            overview=result.overview,
            points=result.points,
            why_important=result.why_important,
            keywords=result.keywords,
            category=result.category,
            importance=result.importance,
            method="extractive",
            model=EXTRACTIVE_MODEL,
            prompt_version=EXTRACTIVE_VERSION,
            content_hash=article.content_hash,
            fallback=cause,
        )
