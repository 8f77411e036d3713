"""The retention job (`ainews retention`, and daily on the poster process of `ainews run`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.db import Database
from storage.retention import Pruned, prune_articles

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Bodies are kept `body_days`, articles with their summaries `summary_days` (longer)."""

    body_days: int
    summary_days: int


async def apply_retention(*, db: Database, now: datetime, config: RetentionConfig) -> Pruned:
    pruned = await db.run(
        prune_articles,
        bodies_before=now - timedelta(days=config.body_days),
        articles_before=now - timedelta(days=config.summary_days),
    )
    log.info("retention applied", extra={"bodies": pruned.bodies, "articles": pruned.articles})
    return pruned
