"""Work shared by several processes on one database, coordinated by the database alone.

A process *claims* rows before working on them: due sources before polling them, pending
articles before summarising them. A claim is the process's name and an expiry; a process that
dies leaves claims that expire, and the next claim takes them over. Pending articles are selected
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so processes claiming at once take disjoint rows
without waiting for each other; sources are claimed whole hosts at a time, under a lease per
host, so that one process polls a host at a time and the per-host connection limit holds for
all processes together. Either way the UPDATE re-checks, in its WHERE, that a row is still
due and unclaimed, which is what makes the claim safe on SQLite too (where writers are
serialised by the database lock).

A *lease* is a named role one process holds at a time (`poster`): acquired when free or
expired, renewed by its holder, and taken over when its holder stops renewing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.articles import WAITING
from storage.clock import ensure_utc
from storage.models import Article, Lease, Source, Summary
from storage.sources import is_due

# Lease names: `host:example.com` is held by the process polling that host, or by RETRY_AFTER
# until the time the host asked us to come back.
HOST = "host:"
RETRY_AFTER = "retry-after"


@dataclass(frozen=True, slots=True)
class Claimed:
    """Rows claimed by one call; `taken_over` of them had an expired claim of another process."""

    ids: list[int]
    taken_over: int


def _unclaimed(model: type[Source] | type[Article], now: datetime) -> ColumnElement[bool]:
    return or_(col(model.claimed_until).is_(None), col(model.claimed_until) < now)


def _source_due(now: datetime, force: bool, early: timedelta) -> ColumnElement[bool]:
    # Forced: not polled since `now`, the start of the pass (early would take sources polled
    # moments ago in this very pass).
    return and_(is_due(now if force else now + early, force=force), _unclaimed(Source, now))


def claim_due_sources(
    *,
    session: Session,
    owner: str,
    now: datetime,
    lease: timedelta,
    force: bool = False,
    limit: int | None = None,
    due_early: timedelta = timedelta(0),
) -> Claimed:
    """Claim the due, unclaimed sources (all enabled unclaimed ones with `force`) until
    `now + lease`; `due_early` counts sources due that much later as due now. Host by host:
    a process first takes the lease of each host (`host:NAME`), so that one process at a time
    polls a host and the per-host connection limit holds for all of them together. A host
    whose lease another process holds (polling it, or told by it to wait: `release_hosts`
    with a Retry-After) is left alone. The poll records each outcome
    (`storage.sources.record_poll_states`), which ends the source's claim and sets its next
    due time, then gives the hosts back with `release_hosts`."""
    # No row locks on the candidates: the host leases serialise the claimants (a second one
    # waits on a lease row only while the first's claim transaction is open), and the UPDATE
    # re-checks that each source is still due and unclaimed. On SQLite the SELECT reads
    # outside the write transaction that the first lease write begins, so another process
    # may have taken these hosts in between; the second round sees what is left.
    due = _source_due(now, force, due_early)
    candidates = select(Source.id, Source.claimed_until, Source.url).where(due)
    for _ in range(2):
        by_host: dict[str, list[tuple[int, datetime | None]]] = {}
        for source_id, claimed_until, url in session.exec(candidates.order_by(col(Source.id))):
            if source_id is not None:
                by_host.setdefault(host_of(url), []).append((source_id, claimed_until))
        if not by_host:
            break
        # Hosts in name order: two processes taking the same hosts' leases lock them in the
        # same order, so PostgreSQL can never deadlock them. With `limit`, whole hosts are
        # taken until it is reached.
        rows: list[tuple[int, datetime | None]] = []
        for host, host_rows in sorted(by_host.items()):
            if limit is not None and len(rows) >= limit:
                break
            if hold_lease(session=session, name=HOST + host, owner=owner, now=now, ttl=lease).held:
                rows += host_rows
        claimed = _claim_rows(session, Source, rows, due, owner, now + lease)
        if claimed.ids:
            return claimed
    return Claimed([], 0)


def release_hosts(
    *, session: Session, owner: str, hosts: dict[str, datetime | None], now: datetime
) -> None:
    """Give back the hosts of a finished poll: free at once, or — for a host that answered
    429/503 with Retry-After — held by nobody until that time, so no process asks it sooner."""
    for host, not_before in hosts.items():
        name = HOST + host
        if not_before is not None and not_before > now:
            session.execute(
                update(Lease)
                .where(col(Lease.name) == name, col(Lease.owner) == owner)
                .values(owner=RETRY_AFTER, until=not_before)
            )
        else:
            drop_lease(session=session, name=name, owner=owner)


def host_of(url: str) -> str:
    """What per-host politeness counts as one host: the URL's host name (lower case)."""
    return (urlsplit(url).hostname or "").lower()


def _article_pending(now: datetime) -> ColumnElement[bool]:
    waiting = or_(col(Article.page_status).is_(None), col(Article.page_status) != WAITING)
    no_summary = ~select(Summary.id).where(col(Summary.article_id) == Article.id).exists()
    return and_(no_summary, waiting, _unclaimed(Article, now))


def claim_pending_articles(
    *, session: Session, owner: str, now: datetime, lease: timedelta, limit: int
) -> Claimed:
    """Claim up to `limit` articles without a summary (oldest first) that no live claim
    holds. An article whose page is still to be fetched is not pending yet."""
    candidates = select(Article.id, Article.claimed_until).where(_article_pending(now))
    return _claim(
        session, Article, candidates.order_by(col(Article.id)), _article_pending(now),
        owner=owner, until=now + lease, limit=limit,
    )  # fmt: skip


def _claim(
    session: Session,
    model: type[Source] | type[Article],
    candidates: Any,
    still: ColumnElement[bool],
    *,
    owner: str,
    until: datetime,
    limit: int | None,
) -> Claimed:
    if limit is not None:
        candidates = candidates.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True, of=model)
    # On SQLite the SELECT reads outside the write transaction that the UPDATE begins, so
    # another process may have claimed every candidate in between: the UPDATE's re-check
    # then claims none, and the second round (inside the write lock now) sees the truth.
    for _ in range(2):
        rows = [(row[0], row[1]) for row in session.exec(candidates).all()]
        if not rows:
            break
        claimed = _claim_rows(session, model, rows, still, owner, until)
        if claimed.ids:
            return claimed
    return Claimed([], 0)


def _claim_rows(
    session: Session,
    model: type[Source] | type[Article],
    rows: list[tuple[int, datetime | None]],
    still: ColumnElement[bool],
    owner: str,
    until: datetime,
) -> Claimed:
    """Claim these rows (id, claim expiry seen) where `still` holds; counts the takeovers."""
    if not rows:
        return Claimed([], 0)
    expired = {row_id for row_id, claimed_until in rows if claimed_until is not None}
    claimed = session.execute(
        update(model)
        .where(col(model.id).in_([row_id for row_id, _ in rows]), still)
        .values(claimed_by=owner, claimed_until=until)
        .returning(col(model.id))
    ).scalars()
    ids = sorted(int(i) for i in claimed)
    return Claimed(ids, len(expired.intersection(ids)))


def release_articles(*, session: Session, owner: str, ids: Sequence[int]) -> None:
    """Give back claims not worked on (a stopping process), so another takes them at once."""
    if ids:
        session.execute(
            update(Article)
            .where(col(Article.id).in_(list(ids)), col(Article.claimed_by) == owner)
            .values(claimed_by=None, claimed_until=None)
        )


def release_sources(*, session: Session, owner: str, ids: Sequence[int]) -> None:
    if ids:
        session.execute(
            update(Source)
            .where(col(Source.id).in_(list(ids)), col(Source.claimed_by) == owner)
            .values(claimed_by=None, claimed_until=None)
        )


@dataclass(frozen=True, slots=True)
class LeaseState:
    held: bool
    holder: str
    taken_over: bool = False


def hold_lease(
    *, session: Session, name: str, owner: str, now: datetime, ttl: timedelta
) -> LeaseState:
    """Acquire or renew `name` for `owner` until `now + ttl`; refused while another live
    holder has it. One INSERT … ON CONFLICT DO UPDATE … WHERE: atomic on both backends."""
    previous = session.exec(select(Lease).where(col(Lease.name) == name)).first()
    before = (previous.owner, ensure_utc(previous.until)) if previous is not None else None
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(Lease).values(name=name, owner=owner, until=now + ttl)
    statement = statement.on_conflict_do_update(
        index_elements=[col(Lease.name)],
        set_={"owner": owner, "until": now + ttl},
        where=or_(col(Lease.owner) == owner, col(Lease.until) < now),
    ).returning(col(Lease.owner))
    won = session.execute(statement).first() is not None
    if not won:
        holder = session.exec(select(Lease.owner).where(col(Lease.name) == name)).first()
        return LeaseState(held=False, holder=holder or "")
    taken_over = before is not None and before[0] != owner and before[1] < now
    return LeaseState(held=True, holder=owner, taken_over=taken_over)


def drop_lease(*, session: Session, name: str, owner: str) -> None:
    """Give the role up (a stopping process), so another process takes it without waiting."""
    session.execute(
        update(Lease)
        .where(col(Lease.name) == name, col(Lease.owner) == owner)
        .values(until=datetime.fromtimestamp(0, UTC))
    )
