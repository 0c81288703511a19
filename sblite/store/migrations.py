"""Schema migrations, applied in order and recorded in `PRAGMA user_version`."""

from __future__ import annotations

import sqlite3

# Each entry moves the schema from version N to N+1. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE apps (
        id TEXT PRIMARY KEY,
        pk TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        owner_email TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX accounts_app ON accounts(app_id);
    CREATE TABLE users (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        token TEXT NOT NULL,
        role INTEGER NOT NULL DEFAULT 0,
        reset_code TEXT,
        reset_expires REAL,
        created TEXT NOT NULL,
        UNIQUE (app_id, email)
    );
    CREATE INDEX users_account ON users(account_id, seq);
    CREATE TABLE documents (
        seq INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        data TEXT NOT NULL CHECK (json_type(data) = 'object')
    );
    CREATE INDEX documents_collection_order ON documents(app_id, collection, seq);
    CREATE INDEX documents_collection_account ON documents(app_id, collection, account_id, seq);
    """,
    # Document counts per owner, kept by triggers, so a list's total needs no scan.
    """
    CREATE TABLE document_counts (
        app_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        account_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (app_id, collection, account_id, owner_id)
    ) WITHOUT ROWID;
    INSERT INTO document_counts (app_id, collection, account_id, owner_id, n)
        SELECT app_id, collection, account_id, owner_id, COUNT(*) FROM documents
        GROUP BY app_id, collection, account_id, owner_id;
    CREATE TRIGGER documents_counted_insert AFTER INSERT ON documents BEGIN
        INSERT INTO document_counts (app_id, collection, account_id, owner_id, n)
            VALUES (NEW.app_id, NEW.collection, NEW.account_id, NEW.owner_id, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER documents_counted_delete AFTER DELETE ON documents BEGIN
        UPDATE document_counts SET n = n - 1
            WHERE app_id = OLD.app_id AND collection = OLD.collection
              AND account_id = OLD.account_id AND owner_id = OLD.owner_id;
    END
    """,
    # Realtime: per-app channel rules and the recent messages of channels that keep history.
    """
    CREATE TABLE channel_rules (
        app_id TEXT NOT NULL,
        pattern TEXT NOT NULL,
        auth INTEGER NOT NULL,
        publish TEXT NOT NULL,
        history INTEGER NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (app_id, pattern)
    ) WITHOUT ROWID;
    CREATE TABLE channel_history (
        seq INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        frame TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX channel_history_channel ON channel_history(app_id, channel, seq);
    """,
    # Functions: code, run history, the durable queue of message-triggered runs, secrets, cache.
    """
    CREATE TABLE functions (
        id TEXT PRIMARY KEY,
        app_id TEXT NOT NULL,
        name TEXT NOT NULL,
        trigger TEXT NOT NULL,
        code TEXT NOT NULL,
        version INTEGER NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        last_run TEXT,
        UNIQUE (app_id, name)
    );
    CREATE TABLE function_runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        function_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        trigger TEXT NOT NULL,
        message_id TEXT,
        started TEXT NOT NULL,
        completed TEXT NOT NULL,
        duration_ms REAL NOT NULL,
        success INTEGER NOT NULL,
        output TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX function_runs_function ON function_runs(function_id, seq);
    CREATE INDEX function_runs_app ON function_runs(app_id, seq);
    CREATE TABLE function_jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        function_id TEXT NOT NULL,
        message TEXT NOT NULL,
        identity TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        last_error TEXT,
        created TEXT NOT NULL
    );
    CREATE INDEX function_jobs_status ON function_jobs(status, seq);
    CREATE TABLE function_secrets (
        app_id TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        updated TEXT NOT NULL,
        PRIMARY KEY (app_id, name)
    ) WITHOUT ROWID;
    CREATE TABLE cache (
        app_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (app_id, key)
    ) WITHOUT ROWID;
    """,
    # Scheduled tasks and their runs. A run row claims its task's instant: (task_id, instant) is
    # unique, and the claim advances the task's next_run in the same transaction.
    """
    CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        meta TEXT NOT NULL CHECK (json_type(meta) = 'object'),
        interval TEXT,
        at REAL,
        timezone TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        paused_note TEXT,
        overlap TEXT NOT NULL,
        catchup TEXT NOT NULL,
        catchup_window REAL NOT NULL,
        keep_runs INTEGER NOT NULL,
        keep_days REAL NOT NULL,
        identity TEXT NOT NULL,
        last_run REAL,
        next_run REAL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        UNIQUE (app_id, name)
    );
    CREATE TABLE task_runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        task_id TEXT NOT NULL,
        app_id TEXT NOT NULL,
        instant REAL,
        scheduled_for REAL NOT NULL,
        trigger TEXT NOT NULL,
        status TEXT NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        output TEXT NOT NULL,
        error TEXT,
        job_id TEXT,
        function_run_id TEXT,
        UNIQUE (task_id, instant)
    );
    CREATE INDEX task_runs_task ON task_runs(task_id, seq);
    CREATE INDEX task_runs_open ON task_runs(status) WHERE status IN ('queued', 'running');
    """,
    # 6: stored files. The bytes live on disk at a path made from `id` and `ext` alone.
    """
    CREATE TABLE files (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        account_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        ext TEXT NOT NULL,
        content_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        public INTEGER NOT NULL,
        created TEXT NOT NULL
    );
    CREATE INDEX files_account ON files(app_id, account_id, seq);
    CREATE INDEX files_account_size ON files(app_id, account_id, size, seq);
    CREATE INDEX files_app ON files(app_id, seq);
    CREATE INDEX files_app_size ON files(app_id, size, seq);
    """,
    # 7: full-text search. One FTS5 row per indexed document, rowid = the document's seq; the
    # `scope` column holds one token naming its collection ("c" + search_collections.id), so a
    # search intersects with it inside the index. Triggers keep entries with their documents in
    # the same transaction: a delete removes the entry, and a collection with `fields` set indexes
    # those fields of every document written.
    """
    CREATE TABLE search_collections (
        id INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        fields TEXT CHECK (fields IS NULL OR json_type(fields) = 'array'),
        updated TEXT NOT NULL,
        UNIQUE (app_id, collection)
    );
    CREATE VIRTUAL TABLE search_index USING fts5(scope, body, tokenize = 'unicode61 remove_diacritics 2');
    CREATE VIRTUAL TABLE search_terms USING fts5vocab(search_index, 'col');
    CREATE TRIGGER documents_search_delete AFTER DELETE ON documents
    WHEN EXISTS (SELECT 1 FROM search_collections WHERE app_id = OLD.app_id AND collection = OLD.collection)
    BEGIN
        DELETE FROM search_index WHERE rowid = OLD.seq;
    END;
    CREATE TRIGGER documents_search_insert AFTER INSERT ON documents
    WHEN EXISTS (SELECT 1 FROM search_collections
                 WHERE app_id = NEW.app_id AND collection = NEW.collection AND fields IS NOT NULL)
    BEGIN
        INSERT OR REPLACE INTO search_index (rowid, scope, body)
            SELECT NEW.seq, 'c' || s.id,
                   (SELECT COALESCE(group_concat(json_extract(NEW.data, '$."' || f.value || '"'), ' '), '')
                    FROM json_each(s.fields) AS f)
            FROM search_collections AS s WHERE s.app_id = NEW.app_id AND s.collection = NEW.collection;
    END;
    CREATE TRIGGER documents_search_update AFTER UPDATE OF data ON documents
    WHEN EXISTS (SELECT 1 FROM search_collections
                 WHERE app_id = NEW.app_id AND collection = NEW.collection AND fields IS NOT NULL)
    BEGIN
        INSERT OR REPLACE INTO search_index (rowid, scope, body)
            SELECT NEW.seq, 'c' || s.id,
                   (SELECT COALESCE(group_concat(json_extract(NEW.data, '$."' || f.value || '"'), ' '), '')
                    FROM json_each(s.fields) AS f)
            FROM search_collections AS s WHERE s.app_id = NEW.app_id AND s.collection = NEW.collection;
    END
    """,
    # 8: mail outbox and magic-link codes
    """
    CREATE TABLE mail_outbox (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        message TEXT NOT NULL CHECK (json_type(message) = 'object'),
        origin TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL,
        last_error TEXT,
        created TEXT NOT NULL,
        sent TEXT
    );
    CREATE INDEX mail_outbox_app ON mail_outbox(app_id, status, seq);
    CREATE INDEX mail_outbox_queued ON mail_outbox(next_at) WHERE status = 'queued';
    CREATE TABLE magic_codes (
        app_id TEXT NOT NULL,
        email TEXT NOT NULL,
        code_hash TEXT NOT NULL,
        expires REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        PRIMARY KEY (app_id, email)
    ) WITHOUT ROWID;
    """,
    # 9: accounts a user joined besides its own, form submissions, the FIFO queues of /sudo/cache.
    """
    CREATE TABLE memberships (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        role INTEGER NOT NULL,
        created TEXT NOT NULL,
        UNIQUE (user_id, account_id)
    );
    CREATE INDEX memberships_account ON memberships(account_id, seq);
    CREATE TABLE forms (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        app_id TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL CHECK (json_type(data) = 'object'),
        created TEXT NOT NULL
    );
    CREATE INDEX forms_app ON forms(app_id, seq);
    CREATE INDEX forms_name ON forms(app_id, name, seq);
    CREATE TABLE cache_queue (
        seq INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL
    );
    CREATE INDEX cache_queue_key ON cache_queue(app_id, key, seq);
    """,
    # 10: the indexes on document fields root asked for (each one a partial expression index).
    """
    CREATE TABLE document_indexes (
        app_id TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        name TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        PRIMARY KEY (app_id, collection, field)
    ) WITHOUT ROWID;
    """,
)

# What each entry of MIGRATIONS does, in one line (`sblite migrate --check` lists those that would
# run). Kept apart so that no released entry changes; tests hold the two tuples to the same length.
DESCRIPTIONS: tuple[str, ...] = (
    "settings, apps, accounts, users and documents",
    "document counts per owner, kept by triggers",
    "realtime channel rules and channel history",
    "functions, their runs, the function job queue, secrets and the cache",
    "scheduled tasks and their runs",
    "stored files",
    "full-text search of documents",
    "the mail outbox and magic-link codes",
    "account memberships, form submissions and cache queues",
    "indexes on document fields",
)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every migration the file lacks, each in its own transaction; return the new version."""
    require_fts5(conn)
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this sblite knows ({len(MIGRATIONS)})"
        )
    for number in range(version, len(MIGRATIONS)):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def require_fts5(conn: sqlite3.Connection) -> None:
    """Raise RuntimeError, saying what to do, when this SQLite lacks FTS5 (migration 7 needs it)."""
    if not conn.execute("SELECT sqlite_compileoption_used('ENABLE_FTS5')").fetchone()[0]:
        raise RuntimeError(f"sblite needs SQLite with FTS5 (full-text search), and this Python's sqlite3 uses "
                           f"SQLite {sqlite3.sqlite_version} without it: use a Python whose SQLite has FTS5 "
                           "(the python.org and Debian builds do)")


def _statements(script: str) -> list[str]:
    """Split a script on `;` at line ends, keeping trigger bodies (whose `;` end lines too) whole."""
    statements: list[str] = []
    current: list[str] = []
    depth = 0
    for line in script.strip().splitlines():
        current.append(line)
        stripped = line.strip().upper()
        if stripped.startswith("CREATE TRIGGER"):
            depth += 1
        if stripped in ("END", "END;"):
            depth -= 1
        if depth == 0 and (stripped.endswith(";") or stripped == "END"):
            statements.append("\n".join(current).strip().rstrip(";"))
            current = []
    if "".join(current).strip():
        statements.append("\n".join(current).strip().rstrip(";"))
    return statements
