"""Safe upgrades: the copy of a file made before migrating it, and what a migration would do.

Before a migration changes an existing file (schema version above 0 and below the current one),
the file is copied with SQLite's online backup API next to it, as `<file>.pre-v<version>.bak`.
The copy is kept until the next successful start after the migrating one: a server that starts
on a file needing no migration removes the copies made by earlier starts.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sblite.store.migrations import DESCRIPTIONS, MIGRATIONS, schema_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """A file's schema version, the current one, and the migrations that would run (number, description)."""

    version: int
    current: int
    pending: tuple[tuple[int, str], ...]


def copy_name(path: str | Path, version: int) -> Path:
    """Where the copy of `path` made before migrating it from `version` goes."""
    path = Path(path)
    return path.with_name(f"{path.name}.pre-v{version}.bak")


def copy_before_migrating(conn: sqlite3.Connection, path: str) -> Path | None:
    """Copy the file behind `conn` next to it when a migration is about to change it; the copy's path."""
    version = schema_version(conn)
    if path == ":memory:" or not 0 < version < len(MIGRATIONS):
        return None
    target = copy_name(path, version)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    dest = sqlite3.connect(str(partial))
    try:
        conn.backup(dest)
    finally:
        dest.close()
    os.replace(partial, target)  # an earlier copy of this version (a failed upgrade) gives way to this one
    log.warning("schema version %d is older than this sblite's (%d): copied %s to %s before migrating; "
                "the copy is removed at the next successful start", version, len(MIGRATIONS), path, target)
    return target


def upgrade_copies(path: str | Path) -> list[Path]:
    """The pre-migration copies of `path` that exist next to it."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.pre-v\d+\.bak")
    if not path.parent.is_dir():
        return []
    return sorted(entry for entry in path.parent.iterdir() if pattern.fullmatch(entry.name))


def remove_upgrade_copies(path: str | Path, keep: Path | None) -> list[Path]:
    """Remove the pre-migration copies of `path` except `keep`; the paths removed."""
    removed = []
    for copy in upgrade_copies(path):
        if copy != keep:
            copy.unlink(missing_ok=True)
            removed.append(copy)
            log.info("removed %s, the copy made before the last upgrade (a start after it succeeded)", copy)
    return removed


def plan(path: str | Path) -> Plan:
    """What opening `path` would migrate, read without changing the file (FileNotFoundError if absent)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(str(path))
    # Without a -wal file the main file holds everything: `immutable` reads it and creates nothing
    # (a read-only open would leave empty -wal and -shm files). With one (a server has it open, or
    # stopped without a checkpoint), a read-only open reads the WAL too.
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "immutable=1"
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True)
    try:
        version = schema_version(conn)
    finally:
        conn.close()
    pending = tuple((number + 1, DESCRIPTIONS[number]) for number in range(version, len(MIGRATIONS)))
    return Plan(version=version, current=len(MIGRATIONS), pending=pending)
