"""Work sharing through the database: claims, leases and the shared token budget, with
processes racing for them on PostgreSQL (and SQLite, which several processes may share too)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.config import PROJECT_ROOT
from storage.articles import NewArticle, insert_new_articles
from storage.claims import (
    claim_due_sources,
    claim_pending_articles,
    drop_lease,
    hold_lease,
    release_hosts,
    release_sources,
)
from storage.db import Database
from storage.migrate import upgrade_to_head
from storage.models import Source, TokenUsage
from storage.sources import SourceSpec, add_missing_sources
from storage.usage import committed_on, record_usage, reserve_tokens, settle_tokens

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
DAY = date(2026, 11, 23)
LEASE = timedelta(minutes=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    db = Database(url)
    upgrade_to_head(db.engine)
    db.dispose()
    yield url


def run_processes(code: str, url: str, count: int) -> list[object]:
    """`count` Python processes running `code` against `url`; each prints one JSON value,
    returned in order. They race: each imports, says it is ready, and waits for one "go"."""
    script = "import sys\n" + textwrap.dedent(code).replace(
        "# start", "print('ready', flush=True); sys.stdin.readline()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url, str(i)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def add_sources(url: str, count: int) -> None:
    db = Database(url)
    try:
        db.call(
            add_missing_sources,
            specs=[
                SourceSpec(url=f"https://feeds{i}.example/rss", name=f"s{i}", category="research")
                for i in range(count)
            ],
        )
    finally:
        db.dispose()


def test_racing_processes_poll_each_due_source_exactly_once(database_url: str) -> None:
    add_sources(database_url, 120)
    polled = run_processes(
        """
        import json, sys, time
        from datetime import UTC, datetime, timedelta
        from sqlalchemy import update
        from storage.claims import claim_due_sources
        from storage.db import Database
        from storage.models import Source

        db = Database(sys.argv[1])
        now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
        mine = []
        # start
        while True:
            claimed = db.call(
                claim_due_sources, owner=f"p{sys.argv[2]}", now=now,
                lease=timedelta(minutes=5), limit=7,
            )
            if not claimed.ids:
                break
            mine += claimed.ids
            time.sleep(0.02)  # the poll; then its outcome, as record_poll_states writes it

            def record(*, session, ids=claimed.ids):
                session.execute(
                    update(Source).where(Source.id.in_(ids)).values(
                        next_poll_at=now + timedelta(hours=1), claimed_until=None
                    )
                )
            db.call(record)
        print(json.dumps(mine))
        """,
        database_url,
        3,
    )
    everyone = [i for ids in polled for i in ids]  # type: ignore[attr-defined]
    assert len(everyone) == 120 and len(set(everyone)) == 120  # each once, none missed
    # The work was shared (the split depends on scheduling; one process may come late).
    assert sum(1 for ids in polled if ids) >= 2  # type: ignore[attr-defined]


def test_a_dead_process_claim_expires_and_is_taken_over(database_url: str) -> None:
    add_sources(database_url, 3)
    db = Database(database_url)
    try:
        first = db.call(claim_due_sources, owner="dead", now=NOW, lease=LEASE)
        assert (first.ids, first.taken_over) == ([1, 2, 3], 0)
        while_alive = db.call(claim_due_sources, owner="b", now=NOW + LEASE / 2, lease=LEASE)
        assert while_alive.ids == []  # due, but claimed
        later = NOW + LEASE + timedelta(seconds=1)
        taken = db.call(claim_due_sources, owner="b", now=later, lease=LEASE)
        assert (taken.ids, taken.taken_over) == ([1, 2, 3], 3)
        db.call(release_sources, owner="dead", ids=[1])  # not its claim any more: no effect
        again = db.call(claim_due_sources, owner="c", now=later, lease=LEASE)
        assert again.ids == []
        db.call(release_sources, owner="b", ids=[1])  # given back by a stopping process
        db.call(release_hosts, owner="b", hosts={"feeds0.example": None}, now=later)
        assert db.call(claim_due_sources, owner="c", now=later, lease=LEASE).ids == [1]
        with Session(db.engine) as session:
            owners = {s.id: s.claimed_by for s in session.exec(select(Source))}
        assert owners == {1: "c", 2: "b", 3: "b"}
    finally:
        db.dispose()


def test_pending_articles_are_claimed_disjointly(database_url: str) -> None:
    add_sources(database_url, 1)
    db = Database(database_url)
    try:
        articles = [
            NewArticle(
                url=f"https://feeds0.example/a/{i}",
                guid=f"g{i}",
                title=f"t{i}",
                language="en",
                published_at=None,
                body_text="b",
                content_hash=f"h{i}",
                canonical_url=f"https://feeds0.example/a/{i}",
                wants_page=i == 4,
            )
            for i in range(6)
        ]
        db.call(insert_new_articles, source_id=1, articles=articles, first_seen_at=NOW)
        a = db.call(claim_pending_articles, owner="a", now=NOW, lease=LEASE, limit=3)
        b = db.call(claim_pending_articles, owner="b", now=NOW, lease=LEASE, limit=3)
        assert a.ids == [1, 2, 3]
        assert b.ids == [4, 6]  # article 5 waits for its page: not pending yet
    finally:
        db.dispose()


def test_one_process_holds_a_lease_until_it_expires_or_is_dropped(database_url: str) -> None:
    db = Database(database_url)
    try:
        held = db.call(hold_lease, name="poster", owner="a", now=NOW, ttl=LEASE)
        assert (held.held, held.taken_over) == (True, False)
        refused = db.call(hold_lease, name="poster", owner="b", now=NOW, ttl=LEASE)
        assert (refused.held, refused.holder) == (False, "a")
        renewed = db.call(hold_lease, name="poster", owner="a", now=NOW + LEASE / 2, ttl=LEASE)
        assert renewed.held and not renewed.taken_over
        still = db.call(hold_lease, name="poster", owner="b", now=NOW + LEASE, ttl=LEASE)
        assert not still.held  # renewed at +LEASE/2, so a holds it until +1.5 LEASE
        later = NOW + 2 * LEASE
        taken = db.call(hold_lease, name="poster", owner="b", now=later, ttl=LEASE)
        assert (taken.held, taken.taken_over) == (True, True)
        db.call(drop_lease, name="poster", owner="b")
        assert db.call(hold_lease, name="poster", owner="a", now=later, ttl=LEASE).held
    finally:
        db.dispose()


def test_racing_processes_stay_within_the_daily_budget(database_url: str) -> None:
    """Three processes, each with its own `TokenBudget`, reserve and settle calls of 700
    tokens until the day's 10,000 are gone: together they get exactly 14 calls, not 14 each."""
    outcomes = run_processes(
        """
        import asyncio, json, sys
        from datetime import UTC, datetime
        from zoneinfo import ZoneInfo
        from bot.llm import TokenBudget
        from jobs.llm import BudgetExhausted
        from storage.db import Database

        async def main():
            db = Database(sys.argv[1])
            # start
            budget = TokenBudget(
                db=db, daily_limit=10_000, tz=ZoneInfo("Asia/Tokyo"),
                clock=lambda: datetime(2026, 11, 23, 3, 0, tzinfo=UTC), others_wait=5.0,
            )
            calls = 0
            try:
                while True:
                    day = await budget.reserve(700)
                    await asyncio.sleep(0.005)  # the call in flight
                    await budget.settle(
                        day=day, reserved=700, model="m", purpose="summary",
                        prompt=600, completion=100,
                    )
                    calls += 1
            except BudgetExhausted:
                pass
            db.dispose()
            print(json.dumps(calls))

        asyncio.run(main())
        """,
        database_url,
        3,
    )
    assert sum(outcomes) == 10_000 // 700  # type: ignore[arg-type]
    db = Database(database_url)
    try:
        with Session(db.engine) as session:
            usage = session.exec(select(TokenUsage)).all()
        assert sum(u.prompt_tokens + u.completion_tokens for u in usage) == 14 * 700
        assert db.call(committed_on, day=DAY) == 14 * 700
    finally:
        db.dispose()


def test_budget_row_counts_usage_recorded_before_it_existed(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.call(
            record_usage, day=DAY, model="m", purpose="summary",
            prompt_tokens=900, completion_tokens=100,
        )  # fmt: skip
        assert db.call(committed_on, day=DAY) == 1_000
        assert db.call(reserve_tokens, day=DAY, tokens=500, limit=1_500)
        assert not db.call(reserve_tokens, day=DAY, tokens=1, limit=1_500)
        db.call(
            settle_tokens, day=DAY, reserved=500, model="m", purpose="summary",
            prompt_tokens=200, completion_tokens=0,
        )  # fmt: skip
        assert db.call(committed_on, day=DAY) == 1_200
        assert db.call(reserve_tokens, day=DAY, tokens=300, limit=1_500)
    finally:
        db.dispose()


def test_a_briefing_is_claimed_by_one_process_and_never_again_once_posted(
    database_url: str,
) -> None:
    """The per-destination claim, on both backends: a second claimant is refused while the
    first holds it, and nobody gets it once it is posted (on PostgreSQL the driver's rowcount
    for INSERT … ON CONFLICT is -1, which once read as "inserted" for every claimant)."""
    from storage.briefings import claim_briefing, mark_posted

    db = Database(database_url)
    try:
        first = db.call(
            claim_briefing, day=DAY, destination="slack:C1", payload={}, lease_seconds=300
        )
        assert first is not None
        second = db.call(
            claim_briefing, day=DAY, destination="slack:C1", payload={}, lease_seconds=300
        )
        assert second is None  # held by a live poster
        db.call(mark_posted, briefing_id=first.id, parent_ref="1.0")
        after = db.call(
            claim_briefing, day=DAY, destination="slack:C1", payload={}, lease_seconds=0
        )
        assert after is None  # posted: never claimed again, however old the claim
        other = db.call(
            claim_briefing, day=DAY, destination="discord:2", payload={}, lease_seconds=300
        )
        assert other is not None and other.id != first.id
    finally:
        db.dispose()


async def test_one_process_holds_the_poster_role_and_another_takes_it_over(
    database_url: str,
) -> None:
    from bot.publishing.poster import TTL, PosterRole

    now = [NOW]
    db = Database(database_url)
    takeovers: list[str] = []
    try:
        a = PosterRole(db, owner="a", clock=lambda: now[0])
        b = PosterRole(
            db, owner="b", clock=lambda: now[0], on_takeover=lambda: takeovers.append("b")
        )
        assert await a.renew() and not await b.renew()
        now[0] += TTL / 2
        assert await a.renew() and not await b.renew()  # renewed in time: still a's
        now[0] += TTL * 2  # a died: nobody renewed for two TTLs
        assert await b.renew() and b.held and takeovers == ["b"]
        assert not await a.renew() and not a.held  # back from a pause: it is b's now
        await b.release()
        assert await a.renew()  # given up at shutdown: taken at once, no takeover counted
        assert takeovers == ["b"]
    finally:
        db.dispose()


def test_one_process_polls_a_host_and_a_retry_after_holds_it_for_everyone(
    database_url: str,
) -> None:
    db = Database(database_url)
    try:
        db.call(
            add_missing_sources,
            specs=[
                SourceSpec(url=f"https://{host}/feed{i}", name=f"{host}{i}", category="research")
                for host in ("big.example", "small.example")
                for i in range(3)
            ],
        )
        a = db.call(claim_due_sources, owner="a", now=NOW, lease=LEASE, limit=1)
        b = db.call(claim_due_sources, owner="b", now=NOW, lease=LEASE, limit=1)
        assert a.ids == [1, 2, 3]  # a whole host, though the limit is one source
        assert b.ids == [4, 5, 6]  # the other host: big.example is a's while it polls it
        later = NOW + timedelta(minutes=1)
        until = later + timedelta(hours=1)
        db.call(release_sources, owner="a", ids=a.ids)
        db.call(release_hosts, owner="a", hosts={"big.example": until}, now=later)
        db.call(release_sources, owner="b", ids=b.ids)
        db.call(release_hosts, owner="b", hosts={"small.example": None}, now=later)
        # big.example said Retry-After: an hour. Nobody asks it sooner, forced or not; the
        # other host is free at once.
        for owner in ("a", "b"):
            held = db.call(claim_due_sources, owner=owner, now=later, lease=LEASE, force=True)
            assert held.ids == ([4, 5, 6] if owner == "a" else [])
        after = db.call(claim_due_sources, owner="b", now=until + timedelta(seconds=1), lease=LEASE)
        assert {1, 2, 3} <= set(after.ids)  # an hour on: asked again (a's claims expired too)
    finally:
        db.dispose()
