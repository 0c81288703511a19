"""Run records, written in batches a few milliseconds apart instead of one write per run.

Nobody waits for a record: the call that ran the function answers at once, and the records
of every run that ended meanwhile go to the database together (with the jobs they finish).
Readers of run history call `flush` first, so they always see every run that has ended.
A run that finishes a job gets a future that is done once its batch has been written (the
dispatcher holds the job until then, so it never takes a finished job for a queued one), or
that fails with the write's error (the job is still queued: the dispatcher counts a failure).
"""

from __future__ import annotations

import asyncio
import logging

from sblite.store import FunctionStore
from sblite.store.functions import RunRecord

log = logging.getLogger(__name__)
FLUSH_DELAY_SECONDS = 0.02


class RunRecorder:
    """Buffers run records and writes them together."""

    def __init__(self, store: FunctionStore, keep: int, delay: float = FLUSH_DELAY_SECONDS) -> None:
        self._store = store
        self._keep = keep
        self._delay = delay
        self._pending: list[tuple[str, RunRecord, str | None]] = []
        self._written: list[asyncio.Future[None]] = []  # one per pending run that finishes a job
        self._flushing: asyncio.Task[None] | None = None
        self.failures = 0

    def record(self, app_id: str, run: RunRecord, job_id: str | None) -> asyncio.Future[None] | None:
        """Queue a run's record (and the job it finishes) for the next batch; with a job, when it is written."""
        self._pending.append((app_id, run, job_id))
        written = None
        if job_id is not None:
            written = asyncio.get_running_loop().create_future()
            self._written.append(written)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_soon())
        return written

    async def flush(self) -> None:
        """Wait until every run recorded so far is in the database."""
        while self._flushing is not None and not self._flushing.done():
            await asyncio.shield(self._flushing)
        if self._pending:
            await self._write()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self._delay)
        while self._pending:
            await self._write()

    async def _write(self) -> None:
        batch, self._pending = self._pending, []
        written, self._written = self._written, []
        try:
            await self._store.record_runs(batch, self._keep)
        except Exception as exc:  # the jobs stay queued: their runs count as failed attempts
            self.failures += len(batch)
            log.exception("could not record %d function runs", len(batch))
            for future in written:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in written:
            if not future.done():
                future.set_result(None)
