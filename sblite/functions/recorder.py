"""Run records, written in batches a few milliseconds apart instead of one write per run.

Nobody waits for a record: the call that ran the function answers at once, and the records
of every run that ended meanwhile go to the database together (with the jobs they finish).
Readers of run history call `flush` first, so they always see every run that has ended.
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
        self._flushing: asyncio.Task | None = None
        self.failures = 0

    def record(self, app_id: str, run: RunRecord, job_id: str | None) -> None:
        """Queue a run's record (and the job it finishes) for the next batch."""
        self._pending.append((app_id, run, job_id))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush_soon())

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
        try:
            await self._store.record_runs(batch, self._keep)
        except Exception:
            self.failures += len(batch)
            log.exception("could not record %d function runs", len(batch))
