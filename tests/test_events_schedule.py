"""Functions' schedule(when, type, channel, data) and runLater(when, functionName, data) globals."""

from __future__ import annotations

import pytest

from tests.function_helpers import EVAL_SOURCE, add_function, evaluate

# A call with bad arguments answers {ok: false} naming what is wrong, and creates no task.
BAD_CALLS = [
    ('schedule(true, "reminder", "room", {})', "when"),
    ('schedule(null, "reminder", "room", {})', "when"),
    ('schedule({}, "reminder", "room", {})', "when"),
    ('schedule(10, "", "room", {})', "message type"),
    ('schedule(10, 5, "room", {})', "message type"),
    ('schedule(10, "x".repeat(65), "room", {})', "message type"),
    ('schedule(10, "reminder", "", {})', "channel"),
    ('schedule(10, "reminder", "db-orders", {})', "database"),
    ('schedule(10, "reminder", "sys-users", {})', "system channel"),
    ('schedule(10, "reminder")', "channel"),
    ('runLater(10, "", {})', "function name"),
    ('runLater(10, 42, {})', "function name"),
    ('runLater()', "when"),
]


@pytest.mark.parametrize(("call", "named"), BAD_CALLS)
async def test_bad_arguments_answer_ok_false_naming_the_field(api, call, named):
    await add_function(api, "eval", EVAL_SOURCE)
    answer = await evaluate(api, await api.register(), call)
    assert answer["ok"] is False and named in answer["content"], answer
    status, tasks = await api.root("GET", "/tasks")
    assert status in (200, 404)  # 404 until the task API is wired
    if status == 200:
        assert tasks == []
