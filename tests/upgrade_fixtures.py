"""Databases as each earlier schema version left them, for the upgrade tests.

Made in the test, not committed: released migrations never change, so running MIGRATIONS[:v] on a
new file gives exactly the schema an sblite of version v made, and a new migration gets its
predecessor's fixture without anyone regenerating files. Rows are written as the store writes
them (a real argon2 hash, a root token's parts, a task row as POST /tasks stores it), one or more
in every table that exists at the version; `tables_without_rows` keeps that true for new tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sblite.passwords import hash_password
from sblite.store.migrations import MIGRATIONS
from sblite.tokens import format_root_token

PK = "pk_upgrade_fixture"
APP = "a0000000-0000-4000-8000-000000000001"
ROOT_ACCOUNT, ROOT_USER, ROOT_PART = "a0000000-0000-4000-8000-000000000002", "u-root", "t-root"
ACCOUNT, USER = "a0000000-0000-4000-8000-000000000003", "u-member"
EMAIL, PASSWORD = "old@example.com", "old-password"
ROOT_TOKEN = format_root_token(ROOT_USER, ROOT_ACCOUNT, ROOT_PART)
DOC_ID, DOC_DATA = "d0000000-0000-4000-8000-000000000001", '{"title":"kept through upgrades","n":7}'
FUNCTION, TASK = "hello", "nightly"
WHEN = "2026-01-02T03:04:05.000006Z"
_hash = hash_password(PASSWORD)

# (the version whose migration made the table, table, row). Order matters only where a trigger
# reads another table: search_collections before documents, so the document is indexed.
SEEDS: list[tuple[int, str, dict[str, Any]]] = [
    (1, "settings", {"key": "secret_key", "value": "fixture-secret-key-fixture-secret-key-0123456789"}),
    (1, "apps", {"id": APP, "pk": PK, "name": "default", "owner_email": "root@example.com", "created": WHEN}),
    (1, "accounts", {"id": ROOT_ACCOUNT, "app_id": APP, "email": "root@example.com", "created": WHEN}),
    (1, "accounts", {"id": ACCOUNT, "app_id": APP, "email": EMAIL, "created": WHEN}),
    (1, "users", {"id": ROOT_USER, "app_id": APP, "account_id": ROOT_ACCOUNT, "email": "root@example.com",
                  "password_hash": _hash, "token": ROOT_PART, "role": 100, "created": WHEN}),
    (1, "users", {"id": USER, "app_id": APP, "account_id": ACCOUNT, "email": EMAIL, "password_hash": _hash,
                  "token": "t-member", "role": 50, "created": WHEN}),
    (7, "search_collections", {"app_id": APP, "collection": "notes", "fields": '["title"]', "updated": WHEN}),
    (1, "documents", {"app_id": APP, "collection": "notes", "id": DOC_ID, "account_id": ACCOUNT, "owner_id": USER,
                      "created": WHEN, "updated": WHEN, "data": DOC_DATA}),
    (3, "channel_rules", {"app_id": APP, "pattern": "room-*", "auth": 1, "publish": "members", "history": 10,
                          "updated": WHEN}),
    (3, "channel_history", {"app_id": APP, "channel": "room-1", "frame": '{"type":"chan_out","data":"hi"}',
                            "created": WHEN}),
    (4, "functions", {"id": "f-1", "app_id": APP, "name": FUNCTION, "trigger": "web",
                      "code": "function handle(body) { log('hi'); }", "version": 1, "created": WHEN,
                      "updated": WHEN, "last_run": WHEN}),
    (4, "function_runs", {"id": "r-1", "app_id": APP, "function_id": "f-1", "version": 1, "trigger": "web",
                          "started": WHEN, "completed": WHEN, "duration_ms": 1.5, "success": 1, "output": "[]"}),
    (4, "function_jobs", {"id": "j-1", "app_id": APP, "function_id": "f-1", "message": "{}", "attempts": 5,
                          "next_at": 0.0, "status": "parked", "last_error": "boom", "created": WHEN}),
    (4, "function_secrets", {"app_id": APP, "name": "API_KEY", "value": "s3cret", "updated": WHEN}),
    (4, "cache", {"app_id": APP, "key": "greeting", "value": "hello"}),
    (5, "tasks", {"id": "t-1", "app_id": APP, "name": TASK, "type": "function", "value": FUNCTION,
                  "meta": '{"data":null}', "interval": "0 3 * * *", "at": None, "timezone": "UTC", "enabled": 1,
                  "paused_note": None, "overlap": "skip", "catchup": "latest", "catchup_window": 21600.0,
                  "keep_runs": 100, "keep_days": 14.0,
                  "identity": f'{{"account_id":"{ROOT_ACCOUNT}","user_id":"{ROOT_USER}",'
                              '"email":"root@example.com","role":100}',
                  "last_run": None, "next_run": 4102444800.0, "created": WHEN, "updated": WHEN}),
    (5, "task_runs", {"id": "tr-1", "task_id": "t-1", "app_id": APP, "instant": 1767322800.0,
                      "scheduled_for": 1767322800.0, "trigger": "schedule", "status": "ok",
                      "created": 1767322800.0, "started": 1767322800.0, "finished": 1767322801.0, "output": "[]"}),
    (6, "files", {"id": "file-1", "app_id": APP, "account_id": ACCOUNT, "owner_id": USER, "key": "k/file-1.txt",
                  "name": "notes.txt", "ext": ".txt", "content_type": "text/plain", "size": 5, "public": 0,
                  "created": WHEN}),
    (8, "mail_outbox", {"id": "m-1", "app_id": APP, "message": '{"to":"old@example.com","subject":"hi"}',
                        "origin": "root", "status": "sent", "attempts": 1, "next_at": 0.0, "created": WHEN,
                        "sent": WHEN}),
    (8, "magic_codes", {"app_id": APP, "email": EMAIL, "code_hash": "x", "expires": 0.0, "created": 0.0}),
    (9, "memberships", {"id": "ms-1", "app_id": APP, "user_id": ROOT_USER, "account_id": ACCOUNT, "role": 50,
                        "created": WHEN}),
    (9, "forms", {"id": "fo-1", "app_id": APP, "name": "contact", "data": '{"email":"x@example.com"}',
                  "created": WHEN}),
    (9, "cache_queue", {"app_id": APP, "key": "jobs", "value": "first"}),
    (10, "document_indexes", {"app_id": APP, "collection": "notes", "field": "n", "name": "docfield_fixture",
                              "created": WHEN}),
]


def make_fixture(path: Path, version: int) -> None:
    """A database file at schema `version` (1..len(MIGRATIONS)), with rows in each of its tables."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # as every sblite made them
        for number in range(version):
            conn.executescript(f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;")
        for since, table, row in SEEDS:
            if since <= version:
                conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             tuple(row.values()))
    finally:
        conn.close()


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows in each ordinary table (FTS tables and their shadow tables left out)."""
    virtual = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                "AND sql LIKE 'CREATE VIRTUAL TABLE%'")]
    names = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    ordinary = [n for n in names if n not in virtual and not any(n.startswith(v + "_") for v in virtual)]
    return {name: conn.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] for name in ordinary}


def tables_without_rows(path: Path) -> list[str]:
    """Tables of the file that no seed filled (a new migration's table needs a seed here)."""
    conn = sqlite3.connect(path)
    try:
        return [name for name, count in table_counts(conn).items() if count == 0]
    finally:
        conn.close()
