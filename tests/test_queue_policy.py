"""The job queue's rules, table-driven with plain numbers for `now` (nothing sleeps)."""

from __future__ import annotations

import pytest

from sblite.functions import queue_policy as policy
from sblite.store.functions import Job


def _job(job_id: str, next_at: float) -> Job:
    return Job(id=job_id, app_id="app", function_id="fn", message={}, identity=None, attempts=0, next_at=next_at,
               status="queued", last_error=None)


@pytest.mark.parametrize("attempts, now, max_attempts, expected", [
    (0, 100.0, 3, policy.Retry(attempts=1, next_at=101.0, park=False)),  # 1 s before the 2nd attempt
    (1, 100.0, 3, policy.Retry(attempts=2, next_at=105.0, park=False)),  # then 5 s
    (2, 100.0, 3, policy.Retry(attempts=3, next_at=130.0, park=True)),  # the last attempt: parked
    (0, 100.0, 1, policy.Retry(attempts=1, next_at=101.0, park=True)),  # one attempt only
    (3, 0.0, 10, policy.Retry(attempts=4, next_at=120.0, park=False)),
    (9, 0.0, 20, policy.Retry(attempts=10, next_at=120.0, park=False)),  # the longest wait repeats
])
def test_a_failed_attempt_backs_off_then_parks(attempts, now, max_attempts, expected):
    assert policy.after_failure(attempts, now, max_attempts) == expected


@pytest.mark.parametrize("max_running, held, expected", [
    (256, 0, 256),  # nothing runs: take all the room
    (256, 192, 64),  # a quarter or more is free: take it
    (256, 193, 0),  # less than a quarter free while runs finish: wait for a batch's worth
    (256, 256, 0),
    (4, 3, 1),  # a small room fills one by one
    (4, 4, 0),
    (1, 0, 1),
    (1, 1, 0),
])
def test_room_is_taken_in_batches(max_running, held, expected):
    assert policy.room(max_running, held) == expected


@pytest.mark.parametrize("at, now, due, wait", [
    (None, 5.0, False, None),  # nothing scheduled: wait until woken
    (10.0, 5.0, False, 5.0),
    (10.0, 10.0, True, 0.0),
    (10.0, 12.0, True, 0.0),  # overdue: do not wait
])
def test_when_a_retry_is_due_and_how_long_to_wait_for_it(at, now, due, wait):
    assert (policy.is_due(at, now), policy.wait_seconds(at, now)) == (due, wait)


@pytest.mark.parametrize("a, b, expected", [(None, None, None), (3.0, None, 3.0), (None, 4.0, 4.0),
                                            (3.0, 4.0, 3.0), (5.0, 4.0, 4.0)])
def test_the_earliest_of_two_times(a, b, expected):
    assert policy.earliest(a, b) == expected


@pytest.mark.parametrize("now, running, limit, expected", [
    (10.0, set(), 10, ["a", "b", "c"]),  # "d" is not due yet
    (10.0, {"b"}, 10, ["a", "c"]),  # a running job is not started twice
    (10.0, set(), 2, ["a", "b"]),  # oldest first, up to the room
    (20.0, {"a"}, 2, ["b", "c"]),
    (0.0, set(), 10, []),
])
def test_take_starts_due_jobs_not_running_oldest_first(now, running, limit, expected):
    jobs = [_job("a", 1.0), _job("b", 2.0), _job("c", 10.0), _job("d", 15.0)]
    assert [job.id for job in policy.take(jobs, now, running, limit)] == expected
