"""The event core's failure paths: nothing it cannot handle is dropped silently."""

from __future__ import annotations

import logging

import pytest

from sblite.functions.recorder import RunRecorder
from sblite.model import Message
from sblite.services.bus import EventBus
from sblite.services.hub import Hub, HubLimits
from sblite.store import Database, DatabaseClosed, FunctionStore
from sblite.store.functions import RunRecord
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
        bus.publish(Message(type="db_created", channel="db-notes", data="{not json", app_id="app"))
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
