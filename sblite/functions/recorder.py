"""Run records, written in batches: every run that ends while a write is under way joins the next."""

from __future__ import annotations

import asyncio

from sblite.store import FunctionStore
from sblite.store.functions import RunRecord


class RunRecorder:
    """Records runs (and finishes their jobs) with one write per batch instead of one per run."""

    def __init__(self, store: FunctionStore, keep: int) -> None:
        self._store = store
        self._keep = keep
        self._pending: list[tuple[str, RunRecord, str | None, asyncio.Future]] = []
        self._flushing: asyncio.Task | None = None

    async def record(self, app_id: str, run: RunRecord, job_id: str | None) -> None:
        """Store a run; returns once it is committed."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((app_id, run, job_id, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._store.record_runs([(app_id, run, job_id) for app_id, run, job_id, _ in batch], self._keep)
            except Exception as exc:  # every waiting run learns that its record failed
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)
