"""`ainews demo`: the whole cycle offline — local feed server, real poller, extractive
summaries, the briefing of the newest day — in a throwaway database under var/demo."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.app import App, briefing_for, open_app, poll_once, summarize_pending
from bot.config import Settings
from bot.demo.server import BASE_URL_PLACEHOLDER, DEMO_DIR, DemoFeedServer
from bot.sources_file import load_sources_toml
from jobs.briefing import briefing_day_for
from jobs.briefing_model import Briefing
from jobs.poll import PollReport
from jobs.summarize import SummarizeReport
from jobs.weekly import last_complete_week
from jobs.weekly_model import IsoWeek
from storage.articles import newest_article_time
from storage.sources import SourceSpec, add_missing_sources

DEMO_SOURCES = DEMO_DIR / "sources.toml"


@dataclass(frozen=True, slots=True)
class DemoResult:
    poll: PollReport
    summaries: SummarizeReport
    briefing: Briefing
    week: IsoWeek  # the week whose report the demo's data makes: complete at the briefing
    database: Path


def demo_settings(settings: Settings) -> Settings:
    """Same settings, but a fresh SQLite file and no LLM: the demo is offline by design."""
    directory = settings.var_dir / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "ainews-demo.sqlite3"
    for leftover in directory.glob("ainews-demo.sqlite3*"):
        leftover.unlink()
    return settings.model_copy(
        update={"database_url": f"sqlite:///{database}", "openai_api_key": None}
    )


async def run_demo(
    settings: Settings, *, day: date | None = None, progress: object = None
) -> DemoResult:
    settings = demo_settings(settings)
    async with DemoFeedServer() as server, open_app(settings, fetching=True, seed=False) as app:
        specs = [
            SourceSpec(
                url=s.url.replace(BASE_URL_PLACEHOLDER, server.base_url),
                name=s.name,
                category=s.category,
                language=s.language,
            )
            for s in load_sources_toml(DEMO_SOURCES, app.taxonomy)
        ]
        await app.db.run(add_missing_sources, specs=specs)
        poll = await poll_once(app)
        summaries = await summarize_pending(app)
        briefing = await briefing_for(app, day or await _newest_day(app))
    week = last_complete_week(briefing.window_end, settings.tz)
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    return DemoResult(
        poll=poll, summaries=summaries, briefing=briefing, week=week, database=database
    )


async def _newest_day(app: App) -> date:
    newest = await app.db.run(newest_article_time)
    if newest is None:
        raise RuntimeError("the demo feeds produced no articles")
    return briefing_day_for(newest, app.briefing_config)
