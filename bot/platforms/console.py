"""The console destination: every briefing is written to `var/briefings/YYYY-MM-DD.md` and every
weekly report to `var/reports/YYYY-Www.md` (and, with no chat platform configured, printed),
claimed in the database like any other destination so a restart does not write or print them
twice."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.render.markdown import render_briefing, render_weekly
from bot.render.reply_markdown import render_reply
from handlers.reply import Reply
from jobs.briefing_model import Briefing, to_payload
from jobs.weekly_model import WeeklyReport, weekly_to_payload
from storage.briefings import WEEKLY, claim_briefing, mark_posted
from storage.db import Database

if TYPE_CHECKING:
    from bot.metrics import Metrics

log = logging.getLogger(__name__)

DESTINATION = "console"
NOTICES_FILE = "notices.md"


class ConsolePublisher:
    destination = DESTINATION

    def __init__(
        self,
        *,
        db: Database,
        directory: Path,
        out: TextIO | None = None,
        lease: float = 120.0,
        echo: bool = True,
        metrics: Metrics | None = None,
        reports: Path | None = None,
    ) -> None:
        self.metrics = metrics
        self.db = db
        self.lease = lease
        self.directory = directory
        self.reports = reports or directory.parent / "reports"
        self.out = out or sys.stdout
        self.echo = echo

    async def publish(self, briefing: Briefing) -> bool:
        """Write and print the briefing; False when it was already published."""
        claim = await self.db.run(
            claim_briefing,
            day=briefing.day,
            destination=DESTINATION,
            payload=to_payload(briefing),
            lease_seconds=self.lease,
            on_takeover=self.metrics.takeover_recorder("briefing") if self.metrics else None,
        )
        if claim is None:
            log.info("briefing already published", extra={"day": str(briefing.day)})
            return False
        markdown = render_briefing(briefing)
        path = self.write(briefing, markdown)
        if self.echo:
            self.out.write(markdown)
            self.out.flush()
        await self.db.run(mark_posted, briefing_id=claim.id, parent_ref=str(path))
        if self.metrics is not None:
            self.metrics.record_post(DESTINATION, "file")
        log.info("briefing published", extra={"day": str(briefing.day), "path": str(path)})
        return True

    async def post_notice(self, notice: Reply) -> str:
        """The core's `ChannelPort`: appended to `notices.md` beside the briefings (and printed
        when echoing), so the archive keeps what the channels were told."""
        markdown = render_reply(notice).rstrip("\n") + "\n\n"
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / NOTICES_FILE
        with path.open("a", encoding="utf-8") as out:
            out.write(markdown)
        if self.echo:
            self.out.write(markdown)
            self.out.flush()
        return str(path)

    async def publish_weekly(self, report: WeeklyReport) -> bool:
        """Write (and print) the week's report; False when it was already published."""
        claim = await self.db.run(
            claim_briefing,
            kind=WEEKLY,
            day=report.start,
            destination=DESTINATION,
            payload=weekly_to_payload(report),
            lease_seconds=self.lease,
        )
        if claim is None:
            log.info("weekly report already published", extra={"week": report.week})
            return False
        markdown = render_weekly(report)
        path = save_document(self.reports, report.week, markdown)
        if self.echo:
            self.out.write(markdown)
            self.out.flush()
        await self.db.run(mark_posted, briefing_id=claim.id, parent_ref=str(path))
        log.info("weekly report published", extra={"week": report.week, "path": str(path)})
        return True

    def write(self, briefing: Briefing, markdown: str) -> Path:
        return save_document(self.directory, briefing.day.isoformat(), markdown)


def save_document(directory: Path, name: str, markdown: str) -> Path:
    """`directory/name.md`, replaced whole (a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    partial = path.with_suffix(".md.partial")
    partial.write_text(markdown, encoding="utf-8")
    partial.replace(path)
    return path
