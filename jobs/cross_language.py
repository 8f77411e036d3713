"""Cross-language story grouping, after summarising.

The poller groups near-duplicates by their feed titles, which only works within a language:
ITmedia's Japanese report and The Verge's English report of one launch share no title words.
Once the model has written a Japanese title for each, they do, so every summarising run
compares the model's titles of what it just summarised with those of the articles around them,
and merges whole stories that match. Extractive summaries keep the feed title, so without a
model this step does nothing (the README says so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from jobs.stories import STORY_WINDOW, TRANSLATED, Titled, assign_stories
from storage.articles import merge_stories, model_titles_near
from storage.db import Database

log = logging.getLogger(__name__)


async def group_across_languages(db: Database, article_ids: Sequence[int]) -> int:
    """Merge the stories of `article_ids` (just summarised by the model) into those of earlier
    articles whose Japanese titles match. Returns the number of articles moved."""
    rows = await db.run(model_titles_near, article_ids=article_ids, window=STORY_WINDOW)
    fresh = set(article_ids)
    titled = [Titled(r.id, r.source_id, r.title, r.story_id or r.id) for r in rows]
    new = [t for t in titled if t.id in fresh]
    if not new:
        return 0
    known = [t for t in titled if t.id not in fresh]
    assigned = await asyncio.to_thread(assign_stories, known, new, TRANSLATED)
    into: dict[int, int] = {}
    for item in new:
        story = item.story_id or item.id
        if assigned[item.id] != story:
            into[story] = assigned[item.id]
    moved = await db.run(merge_stories, into={s: _final(s, into) for s in into})
    if moved:
        log.info("stories merged across languages", extra={"stories": len(into), "moved": moved})
    return moved


def _final(story: int, into: dict[int, int]) -> int:
    """Where a story ends up when the story it joins is itself merged further."""
    seen = {story}
    while (story := into.get(story, story)) not in seen:
        seen.add(story)
    return story
