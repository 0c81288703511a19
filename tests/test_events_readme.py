"""The README's "Event messages" table names every message type the server publishes, with the payload it has."""

from __future__ import annotations

import re
from pathlib import Path

from sblite.model import User
from sblite.services.users import USER_CREATED, USER_DELETED
from sblite.services.hub import DB_EVENT_TYPES

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = re.compile(r'Message\(type="([a-z_]+)"')


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Event messages\n")
    return text[start:text.index("\n## ", start + 1)]


def _table_rows() -> dict[str, str]:
    """Each documented type (backquoted in the type column) -> its row."""
    rows: dict[str, str] = {}
    for line in _section().splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) == 5 and cells[0] not in ("channel", "---"):
            for kind in re.findall(r"`([a-z_]+)`", cells[1]):
                rows[kind] = line
    return rows


def _system_types() -> set[str]:
    """Every type the server's own code publishes."""
    found = {match for path in (ROOT / "sblite").rglob("*.py") for match in PUBLISHED.findall(path.read_text())}
    return found | DB_EVENT_TYPES | {USER_CREATED, USER_DELETED}


def test_every_published_type_has_a_row() -> None:
    documented = _table_rows()
    assert len(_system_types()) >= 10
    assert sorted(_system_types() - set(documented)) == []


def test_account_events_are_documented_with_their_exact_keys() -> None:
    keys = set(User(id="", app_id="", account_id="", email="", role=0, token="", created="").public())
    for kind in (USER_CREATED, USER_DELETED):
        row = _table_rows()[kind]
        payload = re.search(r"`\{([^}]*)\}`", row)
        assert payload is not None, row
        assert {key.strip() for key in payload.group(1).split(",")} == keys
        assert "`sys-users`" in row and "root connections only" in row


def test_the_limits_name_their_settings() -> None:
    section = _section()
    for setting in ("publish_limit_per_second", "publish_limit_burst", "realtime_max_frame_bytes",
                    "functions_max_io_bytes", "sblite_publish_messages_total"):
        assert f"`{setting}" in section, setting
