"""Source notices (a feed disabled, a feed back) and their once-per-destination claims.

A notice is stored by the poll that made the transition, in the same transaction. Each
destination then claims it before posting: the claim row's primary key (notice, destination)
is the race-free check across processes, and a claim whose poster died (older than the lease,
never marked posted) is taken over, so a crash between claim and post delays the notice but
does not lose it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.db import insert_or_ignore
from storage.models import Source, SourceNotice, SourceNoticePost
from storage.sources import DISABLED


@dataclass(frozen=True, slots=True)
class PendingNotice:
    notice: SourceNotice
    source: Source


def pending_source_notices(
    *, session: Session, destination: str, since: datetime
) -> list[PendingNotice]:
    """Notices created since `since` and not yet posted to `destination`, oldest first. A
    disabled notice whose source was enabled again meanwhile is moot and skipped; `since`
    keeps a destination configured later from receiving old news."""
    posted = select(SourceNoticePost.notice_id).where(
        SourceNoticePost.destination == destination, col(SourceNoticePost.posted_at).is_not(None)
    )
    rows = session.exec(
        select(SourceNotice, Source)
        .join(Source, col(Source.id) == SourceNotice.source_id)
        .where(col(SourceNotice.created_at) >= since, col(SourceNotice.id).not_in(posted))
        .order_by(col(SourceNotice.id))
    ).all()
    return [
        PendingNotice(notice, source)
        for notice, source in rows
        if not (notice.kind == DISABLED and source.enabled)
    ]


def claim_source_notice(
    *, session: Session, notice_id: int, destination: str, now: datetime, lease_seconds: float
) -> bool:
    """True when this caller is to post the notice to the destination: no one claimed it, or
    the claim is stale (older than the lease and not posted)."""
    table = SourceNoticePost.__table__  # type: ignore[attr-defined]
    # RETURNING, not rowcount: psycopg reports -1 for this INSERT on a table without a serial key.
    inserted = session.execute(
        insert_or_ignore(session, table)
        .values(notice_id=notice_id, destination=destination, claimed_at=now)
        .returning(table.c.notice_id)
    ).first()
    if inserted is not None:
        return True
    taken = session.execute(  # compare-and-set on the stale claim: one taker wins
        update(SourceNoticePost)
        .where(
            col(SourceNoticePost.notice_id) == notice_id,
            col(SourceNoticePost.destination) == destination,
            col(SourceNoticePost.posted_at).is_(None),
            col(SourceNoticePost.claimed_at) < now - timedelta(seconds=lease_seconds),
        )
        .values(claimed_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return bool(taken)


def mark_source_notice_posted(
    *, session: Session, notice_id: int, destination: str, message_ref: str, now: datetime
) -> None:
    session.execute(
        update(SourceNoticePost)
        .where(
            col(SourceNoticePost.notice_id) == notice_id,
            col(SourceNoticePost.destination) == destination,
        )
        .values(posted_at=now, message_ref=message_ref[:500])
    )


def release_source_notice(*, session: Session, notice_id: int, destination: str) -> None:
    """Give a claim back after the platform failed, so the next pass tries again at once."""
    session.execute(
        delete(SourceNoticePost).where(
            col(SourceNoticePost.notice_id) == notice_id,
            col(SourceNoticePost.destination) == destination,
            col(SourceNoticePost.posted_at).is_(None),
        )
    )
