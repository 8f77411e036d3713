"""A day's briefing is built once and stored: every destination publishes that one and
`/ainews digest` shows it, so no chat request rebuilds it or spends model tokens on its trend."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from jobs.briefing import BriefingConfig, briefing_day_for, briefing_window, build_briefing
from jobs.briefing_model import Briefing, from_payload, to_payload
from jobs.llm import LLM
from storage.briefings import daily_briefing, save_daily_briefing
from storage.db import Database
from storage.taxonomy import Taxonomy


def latest_complete_day(now: datetime, config: BriefingConfig) -> date:
    """The newest day whose briefing window has ended at `now`."""
    return briefing_day_for(now, config) - timedelta(days=1)


async def stored_briefing(
    *,
    db: Database,
    day: date,
    config: BriefingConfig,
    taxonomy: Taxonomy,
    llm: LLM | None,
    now: datetime,
) -> Briefing | None:
    """The stored briefing of `day`, built and stored first if its window has ended; None for a
    day whose window is still open (its briefing does not exist yet)."""
    payload = await db.run(daily_briefing, day=day)
    if payload is not None:
        return from_payload(payload)
    if briefing_window(day, config)[1] > now:
        return None
    built = await build_briefing(db=db, day=day, config=config, taxonomy=taxonomy, llm=llm)
    stored = await db.run(save_daily_briefing, day=day, payload=to_payload(built), replace=False)
    return from_payload(stored)


async def build_and_store(
    *, db: Database, day: date, config: BriefingConfig, taxonomy: Taxonomy, llm: LLM | None
) -> Briefing:
    """The scheduled build at briefing time, after the last poll: it replaces an earlier build
    (say, a digest requested a minute before the poll finished)."""
    built = await build_briefing(db=db, day=day, config=config, taxonomy=taxonomy, llm=llm)
    stored = await db.run(save_daily_briefing, day=day, payload=to_payload(built), replace=True)
    return from_payload(stored)
