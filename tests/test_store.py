"""The store on a real SQLite file: group commit, isolation of failing writes, migrations."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from sblite.filters import NO_FILTER
from sblite.query_plan import QueryPlan
from sblite.store import Database, DatabaseClosed, DocumentStore, Page
from sblite.store.documents import NewDocument, Scope
from sblite.store.migrations import MIGRATIONS, migrate, schema_version


def _insert(value: str):
    def run(conn: sqlite3.Connection) -> int:
        return conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (value, value)).lastrowid
    return run


async def _keys(db: Database) -> list[str]:
    rows = await db.read(lambda c: c.execute("SELECT key FROM settings ORDER BY key").fetchall())
    return [row[0] for row in rows]


async def test_concurrent_writes_all_commit(db):
    await asyncio.gather(*(db.write(_insert(f"k{n:04d}")) for n in range(500)))
    assert await _keys(db) == [f"k{n:04d}" for n in range(500)]


async def test_a_failing_write_rolls_back_alone(db):
    def fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO settings (key, value) VALUES ('half', 'done')")
        raise ValueError("boom")

    results = await asyncio.gather(db.write(_insert("a")), db.write(fails), db.write(_insert("b")),
                                   db.write(_insert("a")), return_exceptions=True)
    assert isinstance(results[1], ValueError)
    assert isinstance(results[3], sqlite3.IntegrityError)  # duplicate key
    assert await _keys(db) == ["a", "b"]


async def test_a_failing_write_alone_leaves_nothing_behind(db):
    def fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO settings (key, value) VALUES ('half', 'done')")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await db.write(fails)
    assert await db.write(_insert("after")) > 0
    assert await _keys(db) == ["after"]


async def test_readers_cannot_write(db):
    with pytest.raises(sqlite3.OperationalError):
        await db.read(lambda c: c.execute("INSERT INTO settings VALUES ('x', 'y')"))


async def test_close_is_idempotent_and_final(tmp_path):
    database = Database(tmp_path / "c.db")
    await database.open()
    pending = [asyncio.ensure_future(database.write(_insert(f"last{n:03d}"))) for n in range(300)]
    await asyncio.sleep(0)
    await database.close()
    await database.close()
    assert all(await asyncio.gather(*pending))  # queued before close (more than one batch): committed
    with pytest.raises(DatabaseClosed):
        await database.write(_insert("late"))
    with pytest.raises(DatabaseClosed):
        await database.read(lambda c: None)
    check = sqlite3.connect(tmp_path / "c.db")
    assert check.execute("SELECT key FROM settings").fetchall() == [(f"last{n:03d}",) for n in range(300)]
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_versioned_and_idempotent(tmp_path):
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    assert migrate(conn) == len(MIGRATIONS)
    assert schema_version(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this sblite"):
        migrate(conn)


async def test_documents_table_rejects_non_objects(db):
    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO documents (app_id, collection, id, account_id, owner_id, created, updated, data) "
                     "VALUES ('a', 'c', 'i', 'x', 'y', 't', 't', '[1]')")
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(bad)


def test_count_migration_backfills_existing_documents(tmp_path):
    from sblite.store.migrations import _statements

    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    rows = [("app", "c", f"id{n}", "acc", f"u{n % 2}", "t", "t", "{}") for n in range(5)]
    conn.executemany("INSERT INTO documents (app_id, collection, id, account_id, owner_id, created, updated, data) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    migrate(conn)
    counts = conn.execute("SELECT owner_id, n FROM document_counts ORDER BY owner_id").fetchall()
    assert counts == [("u0", 3), ("u1", 2)]
    conn.execute("DELETE FROM documents WHERE id = 'id0'")
    conn.execute("INSERT INTO documents (app_id, collection, id, account_id, owner_id, created, updated, data) "
                 "VALUES ('app', 'c', 'new', 'acc', 'u1', 't', 't', '{}')")
    counts = conn.execute("SELECT owner_id, n FROM document_counts ORDER BY owner_id").fetchall()
    assert counts == [("u0", 2), ("u1", 3)]


async def test_work_staged_with_a_change_commits_with_it_or_not_at_all(db):
    documents = DocumentStore(db)
    new = [NewDocument(id=f"d{n}", account_id="acct", owner_id="user", data={"n": n}) for n in range(3)]

    def refuse(conn: sqlite3.Connection, docs: list[dict]) -> None:
        conn.execute("INSERT INTO settings (key, value) VALUES ('staged', 'half')")
        raise ValueError("staging failed")

    with pytest.raises(ValueError):
        await documents.insert("app", "col", new, "2026-01-01T00:00:00Z", refuse)
    assert await documents.page(Scope("app", "col"), QueryPlan(NO_FILTER, [], "seq", []), False, 10, 0) == Page(0, [])
    assert await _keys(db) == []

    seen: list[list[str]] = []

    def stage(conn: sqlite3.Connection, docs: list[dict]) -> None:
        seen.append([doc["id"] for doc in docs])
        conn.execute("INSERT INTO settings (key, value) VALUES ('staged', ?)", (str(len(docs)),))

    created = await documents.insert("app", "col", new, "2026-01-01T00:00:00Z", stage)
    assert [doc["id"] for doc in created] == ["d0", "d1", "d2"] and seen == [["d0", "d1", "d2"]]
    assert await _keys(db) == ["staged"]
    deleted = await documents.delete(Scope("app", "col"), "id = ?", ["missing"], stage)
    assert deleted == [] and len(seen) == 1  # no change, nothing staged


async def test_the_wal_is_checkpointed_in_the_background(tmp_path):
    path = tmp_path / "busy.db"
    database = Database(path, read_connections=1)
    await database.open()
    try:
        size_before = path.stat().st_size
        await asyncio.gather(*(database.write(_insert(f"{n:05d}" + "x" * 2000)) for n in range(2000)))
        deadline = asyncio.get_running_loop().time() + 10
        while path.stat().st_size < size_before + 2000 * 2000:  # the rows reached the database file
            assert asyncio.get_running_loop().time() < deadline, "no checkpoint within 10 s"
            await asyncio.sleep(0.05)
        assert len(await _keys(database)) == 2000
    finally:
        await database.close()
    assert not path.with_name("busy.db-wal").exists()
