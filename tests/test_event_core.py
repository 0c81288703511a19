"""The event core's failure paths: nothing it cannot handle is dropped silently."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from sblite.functions.recorder import RunRecorder
from sblite.http.keys import ACCOUNTS, DATABASE, DISPATCHER
from sblite.model import Message
from sblite.services.bus import EventBus
from sblite.services.hub import Hub, HubLimits
from sblite.store import Database, DatabaseClosed, FunctionStore
from sblite.store.functions import Job, RunRecord
from tests.function_helpers import add_function, wait_runs
from tests.support import DEV_PK
from tests.test_hub import RecordingSink


def _run(run_id: str = "run1") -> RunRecord:
    return RunRecord(id=run_id, function_id="fn1", version=1, trigger="t", message_id=None,
                     started="2026-01-01T00:00:00Z", completed="2026-01-01T00:00:01Z", duration_ms=1.0,
                     success=True, output=[], error=None)


async def test_a_db_event_that_cannot_be_parsed_is_counted_and_logged(caplog):
    bus = EventBus()
    hub = Hub(bus, HubLimits())
    sink = RecordingSink()
    hub.join(hub.connect("app", "ws", sink), "db-notes")
    with caplog.at_level(logging.ERROR, logger="sblite.services.hub"):
        await bus.publish(Message(type="db_created", channel="db-notes", data="{not json", app_id="app"))
        await asyncio.sleep(0)  # live subscribers get it right after
    assert [f["type"] for f in sink.frames] == ["init"]  # nobody may read what cannot be checked
    assert hub.stats["undeliverable"] == 1
    assert [r.exc_info is not None for r in caplog.records] == [True]


async def test_a_run_record_that_cannot_be_written_fails_the_run_it_finishes(tmp_path):
    db = Database(tmp_path / "recorder.db")
    await db.open()
    recorder = RunRecorder(FunctionStore(db), keep=10, delay=0)
    await db.close()
    written = recorder.record("app", _run(), "job1")
    assert written is not None
    with pytest.raises(DatabaseClosed):
        await written  # the dispatcher hears a failure, not a success
    assert recorder.failures == 1


def _fail(conn: object) -> None:
    raise ValueError("this write fails, so its whole batch runs again with savepoints")


async def test_a_change_whose_batch_runs_twice_queues_and_starts_its_run_once(api):
    # A document write shares its batch with a failing write: the batch is rolled back and run
    # again, so the write (with the job it queues) runs twice; its run must happen once.
    await add_function(api, "once", 'function handle(c, t, doc) { create("seen", {n: doc.n}); }', "db-notes")
    token = await api.register()
    db = api.client.server.app[DATABASE]
    blocker = db.submit(lambda conn: time.sleep(0.3))  # holds the writer while the batch forms
    created = asyncio.ensure_future(api.call("POST", "/db/notes", token, json={"n": 1}))
    await asyncio.sleep(0.1)
    failing = db.submit(_fail)
    await blocker
    assert (await created)[0] == 201
    with pytest.raises(ValueError):
        await failing
    await wait_runs(api, "once", 1)
    await asyncio.sleep(0.3)  # a second start would have run by now
    _, seen = await api.call("GET", "/db/seen", token)
    assert [doc["n"] for doc in seen["results"]] == [1]
    dispatcher = api.client.server.app[DISPATCHER]
    assert (dispatcher.stats["queued"], dispatcher.stats["succeeded"]) == (1, 1)


async def test_an_exception_in_a_run_is_a_failed_attempt_with_backoff_not_a_tight_loop(api, caplog):
    app = api.client.server.app
    added = await add_function(api, "victim", 'function handle(b) { return 1; }', "work")
    app_id = (await app[ACCOUNTS].app_for_pk(DEV_PK)).id
    store = FunctionStore(app[DATABASE])
    # A job whose stored identity is broken: running it raises before the function is called.
    job = Job(id="broken-job", app_id=app_id, function_id=added["id"], message={"type": "work", "data": "x"},
              identity={"app_id": app_id}, attempts=0, next_at=time.time(), status="queued", last_error=None)
    await app[DATABASE].write(lambda conn: FunctionStore.enqueue_in(conn, [job], "2026-01-01T00:00:00Z"))
    await store.reschedule(job.id, 3, time.time(), "parked for the test", park=True)
    with caplog.at_level(logging.ERROR, logger="sblite.functions.dispatch"):
        started = time.time()
        assert await app[DISPATCHER].replay(app_id, job.id)
        await asyncio.sleep(0.5)  # a tight loop would have run it hundreds of times by now
    [queued] = await store.jobs(app_id, "queued", 10)
    assert (queued.id, queued.attempts) == (job.id, 1)
    assert queued.next_at >= started + 1.0  # the first backoff
    assert "KeyError" in (queued.last_error or "") or "internal error" in (queued.last_error or "")
    assert app[DISPATCHER].stats["internal_errors"] == 1
    assert [r.exc_info is not None for r in caplog.records] == [True]  # logged once, with its traceback
