"""`GroupCommit`: writes that arrive while a transaction runs share the next one, and a failing
write fails alone. On both databases, with the real engine and threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from storage.db import Database, GroupCommit
from storage.migrate import upgrade_to_head
from storage.models import Source


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'group.sqlite3'}"
    )
    database = Database(url)
    upgrade_to_head(database.engine)
    yield database
    database.dispose()


class Writes:
    """`add` stores a source named `name` and notes which transaction it ran in; a write can
    be held at a gate (to let others queue behind it) or made to fail."""

    def __init__(self) -> None:
        self.transactions: dict[str, int] = {}
        self.gate = threading.Event()
        self._count = 0

    def add(self, *, session: Session, name: str, hold: bool = False, fail: bool = False) -> str:
        if "transaction" not in session.info:
            self._count += 1
            session.info["transaction"] = self._count
        self.transactions[name] = session.info["transaction"]
        if hold:
            assert self.gate.wait(10), "the test never opened the gate"
        session.add(Source(name=name, url=f"https://example.com/{name}", category="research"))
        session.flush()
        if fail:
            raise ValueError(f"{name} is bad")
        return name


def stored(db: Database) -> set[str]:
    return set(db.call(lambda session: session.exec(select(Source.name)).all()))


async def queued_behind_a_held_write(
    writes: Writes, commit: GroupCommit[str], names: list[str], **flags: bool
) -> tuple[asyncio.Task[str], list[asyncio.Task[str]]]:
    first = asyncio.create_task(commit(name="first", hold=True))
    while "first" not in writes.transactions:  # the first transaction is running
        await asyncio.sleep(0.01)
    rest = [asyncio.create_task(commit(name=n, fail=flags.get(n, False))) for n in names]
    await asyncio.sleep(0.05)  # every caller has queued its write
    return first, rest


async def test_writes_queued_during_a_transaction_share_the_next(db: Database) -> None:
    writes = Writes()
    commit = GroupCommit(db, writes.add)
    names = [f"queued-{i}" for i in range(5)]
    first, rest = await queued_behind_a_held_write(writes, commit, names)
    writes.gate.set()

    assert await first == "first"
    assert await asyncio.gather(*rest) == names
    assert writes.transactions["first"] == 1
    assert {writes.transactions[n] for n in names} == {2}
    assert stored(db) == {"first", *names}


async def test_a_batch_is_at_most_max_batch_writes(db: Database) -> None:
    writes = Writes()
    commit = GroupCommit(db, writes.add, max_batch=2)
    names = [f"queued-{i}" for i in range(5)]
    first, rest = await queued_behind_a_held_write(writes, commit, names)
    writes.gate.set()
    await asyncio.gather(first, *rest)

    assert [writes.transactions[n] for n in names] == [2, 2, 3, 3, 4]
    assert stored(db) == {"first", *names}


async def test_a_failing_write_fails_alone_and_the_others_of_its_batch_are_stored(
    db: Database,
) -> None:
    writes = Writes()
    commit = GroupCommit(db, writes.add)
    names = ["good-1", "bad", "good-2"]
    first, rest = await queued_behind_a_held_write(writes, commit, names, bad=True)
    writes.gate.set()
    outcomes = await asyncio.gather(first, *rest, return_exceptions=True)

    assert outcomes[:2] == ["first", "good-1"] and outcomes[3] == "good-2"
    assert isinstance(outcomes[2], ValueError) and str(outcomes[2]) == "bad is bad"
    assert stored(db) == {"first", "good-1", "good-2"}


async def test_a_write_cancelled_before_its_batch_starts_is_not_made(db: Database) -> None:
    writes = Writes()
    commit = GroupCommit(db, writes.add)
    first, rest = await queued_behind_a_held_write(writes, commit, ["kept", "cancelled"])
    rest[1].cancel()
    writes.gate.set()
    await asyncio.gather(first, rest[0])

    with pytest.raises(asyncio.CancelledError):
        await rest[1]
    assert "cancelled" not in writes.transactions
    assert stored(db) == {"first", "kept"}
