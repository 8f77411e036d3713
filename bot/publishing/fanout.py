"""DM subscriptions, for every platform: one bundle per subscriber with everything new in their
categories, or found by their saved searches, since their cursor — each story once, with why
it is there. The cursor moves only after the bundle was sent, so a failure
resends next time and a restart neither repeats nor skips. A user whose DMs are closed is
recorded, skipped from then on (no retry every interval), and told once in their next reply."""

from __future__ import annotations

import logging

from bot.publishing.ports import DirectMessagePort, DirectMessagesClosed
from handlers.reply import ArticleRef, Reply
from storage.db import Database
from storage.subscriptions import (
    PendingItem,
    advance_cursor,
    mark_dms_closed,
    pending_deliveries,
)
from storage.taxonomy import Taxonomy

log = logging.getLogger(__name__)

MAX_BUNDLE_ITEMS = 15
DMS_CLOSED_NOTICE = (
    "購読の新着をDMでお送りできませんでした（DMが受け取れない設定のようです）。"
    "DMを受け取れるようにしてから、もう一度 subscribe すると再開します。"
)


def bundle_reply(items: list[PendingItem], taxonomy: Taxonomy) -> Reply:
    """The most important items first; the rest counted, not listed (one DM stays readable)."""
    shown = sorted(items, key=lambda i: (-i.importance, i.summary_id))[:MAX_BUNDLE_ITEMS]
    hidden = len(items) - len(shown)
    return Reply(
        title=f"購読の新着 {len(items)}件",
        articles=tuple(
            ArticleRef(
                number=n,
                title=item.title,
                url=item.url,
                source=item.source,
                published=item.published,
                category=taxonomy.label_of(item.category),
                snippet=item.overview,
                reason=match_reason(item),
            )
            for n, item in enumerate(shown, start=1)
        ),
        text=f"ほか{hidden}件は /ainews search で探せます。" if hidden else "",
    )


def match_reason(item: PendingItem) -> str:
    """`一致: カテゴリー購読、検索「GPU category:infra」`: an item found both ways says both."""
    reasons = ["カテゴリー購読"] if item.by_category else []
    reasons += [f"検索「{query}」" for query in item.queries]
    return "一致: " + "、".join(reasons)


class DirectMessageFanout:
    def __init__(self, port: DirectMessagePort, *, db: Database, taxonomy: Taxonomy) -> None:
        self.port = port
        self.db = db
        self.taxonomy = taxonomy

    async def send(self) -> int:
        """Send every pending bundle; returns how many DMs were sent."""
        platform = self.port.platform
        bundles = await self.db.run(pending_deliveries, platform=platform)
        sent = 0
        for user, items in bundles.items():
            try:
                channel = await self.port.open_dm(user)
                await self.port.send_bundle(channel, bundle_reply(items, self.taxonomy))
            except DirectMessagesClosed as exc:
                log.info(
                    "dms closed", extra={"platform": platform, "user": user, "error": str(exc)}
                )
                await self.db.run(mark_dms_closed, platform=platform, user_id=user)
                continue
            except Exception as exc:
                # Transient (network, 5xx after the client's retries): the cursor stays, the
                # next fan-out sends the same bundle.
                log.warning(
                    "dm failed", extra={"platform": platform, "user": user, "error": str(exc)}
                )
                continue
            await self.db.run(
                advance_cursor,
                platform=platform,
                user_id=user,
                last_summary_id=max(i.summary_id for i in items),
            )
            sent += 1
        return sent
