"""The task tables on a real SQLite file: an instant is claimed once, with the schedule; retention."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sblite.store import Database, TaskStore
from sblite.store.tasks import Claim, Finish, Stale, TaskRecord, TaskRun

DAY = 86400.0


@pytest.fixture
async def store(tmp_path):
    database = Database(tmp_path / "tasks.db")
    await database.open()
    yield TaskStore(database)
    await database.close()


def task(next_run: float | None = 100.0) -> TaskRecord:
    return TaskRecord(id="t1", app_id="a1", name="tick", type="message", value="tick",
                      meta={"channel": "lobby", "data": ""}, interval="@every 1s", at=None, timezone="UTC",
                      enabled=True, paused_note=None, overlap="skip", catchup="latest", catchup_window=21600.0,
                      keep_runs=100, keep_days=14.0, identity={"account_id": "x", "user_id": "u", "email": "",
                                                                "role": 100},
                      last_run=None, next_run=next_run, created="2030-01-01T00:00:00Z",
                      updated="2030-01-01T00:00:00Z")


def run(run_id: str, instant: float | None, created: float, status: str = "ok") -> TaskRun:
    return TaskRun(id=run_id, task_id="t1", app_id="a1", instant=instant, scheduled_for=instant or created,
                   trigger="schedule", status=status, created=created, started=created, finished=created)


async def test_a_claim_moves_the_schedule_and_records_the_run(store: TaskStore) -> None:
    await store.insert(task())
    await store.claim(Claim("t1", [run("r1", 100.0, 100.0)], expected_next_run=100.0, next_run=101.0,
                            last_run=100.0))
    stored = await store.task("t1")
    assert stored is not None and (stored.next_run, stored.last_run) == (101.0, 100.0)
    assert [r.id for r in await store.runs("t1", 10)] == ["r1"]


async def test_an_instant_is_claimed_once(store: TaskStore) -> None:
    await store.insert(task())
    await store.claim(Claim("t1", [run("r1", 100.0, 100.0)], expected_next_run=100.0, next_run=101.0))
    with pytest.raises(Stale):  # the schedule moved on: a second firing of the same instant writes nothing
        await store.claim(Claim("t1", [run("r2", 100.0, 100.0)], expected_next_run=100.0, next_run=101.0))
    with pytest.raises(Stale):  # even with the right next_run, the same instant cannot be claimed again
        await store.claim(Claim("t1", [run("r3", 100.0, 100.0)], expected_next_run=101.0, next_run=102.0))
    stored = await store.task("t1")
    assert stored is not None and stored.next_run == 101.0
    assert [r.id for r in await store.runs("t1", 10)] == ["r1"]


async def test_extra_rows_commit_or_fail_with_the_claim(store: TaskStore) -> None:
    await store.insert(task())

    def failing(conn) -> None:
        conn.execute("INSERT INTO cache (app_id, key, value) VALUES ('a1', 'k', 'v')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.claim(Claim("t1", [run("r1", 100.0, 100.0)], expected_next_run=100.0, next_run=101.0), failing)
    stored = await store.task("t1")
    assert stored is not None and stored.next_run == 100.0  # still due: nothing was lost
    assert await store.runs("t1", 10) == []


async def test_retention_keeps_the_newest_runs_and_none_too_old(store: TaskStore) -> None:
    await store.insert(replace(task(), keep_runs=3))
    next_run = 100.0
    for n in range(6):
        await store.claim(Claim("t1", [run(f"r{n}", next_run, n * DAY)], expected_next_run=next_run,
                                next_run=next_run + 1, keep_runs=3, keep_after=0.0))
        next_run += 1
    assert [r.id for r in await store.runs("t1", 10)] == ["r5", "r4", "r3"]
    await store.claim(Claim("t1", [run("r6", next_run, 6 * DAY)], expected_next_run=next_run, next_run=next_run + 1,
                            keep_runs=3, keep_after=4.5 * DAY))
    assert [r.id for r in await store.runs("t1", 10)] == ["r6", "r5"]


async def test_retention_never_drops_a_run_under_way(store: TaskStore) -> None:
    await store.insert(task())
    await store.claim(Claim("t1", [run("open", 100.0, 0.0, status="running")], expected_next_run=100.0,
                            next_run=101.0, keep_runs=1))
    await store.claim(Claim("t1", [run("r1", 101.0, 1.0), run("r2", 102.0, 2.0)], expected_next_run=101.0,
                            next_run=103.0, keep_runs=1, keep_after=1.5))
    assert [r.id for r in await store.runs("t1", 10)] == ["r2", "open"]
    assert [found.run.id for found in await store.open_runs()] == ["open"]
    ended, _ = await store.finish(Finish("open", "t1", "ok", 3.0, ["done"], None, keep_runs=1))
    assert ended
    again, _ = await store.finish(Finish("open", "t1", "failed", 4.0, [], "late", keep_runs=1))
    assert not again  # a run ends once
    assert [(r.id, r.status) for r in await store.runs("t1", 10)] == [("r2", "ok")]
