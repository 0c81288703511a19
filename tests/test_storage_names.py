"""Names and paths from requests never reach the filesystem: the rules, then hostile names over the wire."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sblite import files
from sblite.app import create_app
from sblite.ids import new_id
from tests.conftest import Api, make_config
from tests.storage_support import files_under, path_of_url, post_parts

# Names a client may send as the part's filename or the `name` field.
HOSTILE = [
    "../../../../etc/passwd",
    "../../test.db",
    "/etc/passwd",
    "/absolute/path/x.png",
    "..\\..\\windows\\win.ini",
    "C:\\Windows\\System32\\evil.exe",
    "a\x00b.png",
    "x.png\x00.html",
    "..\uff0f..\uff0fx.png",  # fullwidth solidus
    "\u2024\u2024/\u2024\u2024/x.png",  # one-dot leader
    "..\u2215..\u2215x.png",  # division slash
    "\u2025/x",  # two-dot leader
    "%2e%2e%2f%2e%2e%2fx.png",
    "x" * 5000 + ".png",
    "a." + "b" * 11,
    ".htaccess",
    "..",
    ".",
    "",
    "tmp/../tmp/x.part",
    "con.txt",
    "x.PNG ",
    "\u202egnp.exe",  # right-to-left override
]


@pytest.mark.parametrize(("name", "ext"), [
    ("photo.JPG", ".jpg"), ("archive.tar.gz", ".gz"), ("../../x.png", ".png"), ("..\\x.exe", ".exe"),
    ("noext", ""), (".bashrc", ""), ("..", ""), ("a.", ""), ("a.b" * 1 + "c" * 10, ""), ("a.p\u00f1g", ""),
    ("x.png\x00.html", ""), ("x\uff0epng", ""), ("x\u2024png", ""), ("x.png/", ""), ("x.png ", ""), (None, ""),
    ("a." + "b" * 10, "." + "b" * 10), ("a." + "b" * 11, ""),
])
def test_safe_ext_is_ascii_letters_and_digits_or_nothing(name: str | None, ext: str) -> None:
    assert files.safe_ext(name) == ext


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("holiday.png", "holiday.png"), ("../../etc/passwd", "passwd"), ("C:\\x\\y.txt", "y.txt"),
    ("a\x00b\r\nc", "abc"), ("   ", "file"), ("", "file"), (None, "file"), ("..\uff0fx", "..\uff0fx"),
    ("x" * 300, "x" * 255), ("\u202egnp.exe", "gnp.exe"),
])
def test_names_are_kept_as_metadata_only_cleaned(raw: str | None, cleaned: str) -> None:
    assert files.clean_name(raw) == cleaned


def test_disk_paths_are_made_from_an_id_and_an_extension_only(tmp_path: Path) -> None:
    file_id = new_id()
    assert files.disk_path(tmp_path, file_id, ".png") == tmp_path / file_id[:2] / f"{file_id}.png"
    for bad_id, ext in [("../x", ""), (file_id + "/..", ""), (file_id.upper(), ""), ("", ""),
                        (file_id, "/../x"), (file_id, ".PNG"), (file_id, "png"), (file_id, ".a/b")]:
        with pytest.raises(ValueError):
            files.disk_path(tmp_path, bad_id, ext)


def test_the_files_directory_is_beside_the_database_unless_configured() -> None:
    assert files.files_dir_for("./sblite.db") == Path("./sblite-files")
    assert files.files_dir_for("/data/app.sqlite3") == Path("/data/app-files")
    assert files.files_dir_for("/data/app.db", "/srv/files") == Path("/srv/files")


@pytest.fixture
async def api(aiohttp_client, tmp_path) -> Api:
    return Api(await aiohttp_client(create_app(make_config(tmp_path))))


STORED = re.compile(r"^[0-9a-f]{2}/[0-9a-f-]{36}(\.[a-z0-9]{1,10})?$")


@pytest.mark.parametrize("field", ["filename", "name"])
async def test_hostile_names_never_reach_the_filesystem(api: Api, tmp_path: Path, field: str) -> None:
    token = await api.register()
    before = files_under(tmp_path)
    accepted = 0
    for name in HOSTILE:
        parts = [("file", name if field == "filename" else "plain.txt", b"payload", None)]
        if field == "name":
            parts.append(("name", None, name.encode(), None))
        status, body = await post_parts(api, "/storage/upload", token, parts)
        assert status in (200, 400), (name, status, body)
        new = files_under(tmp_path) - before
        if status == 400:  # a part header the parser refuses: nothing stored
            assert {p for p in new if not p.name.startswith("server-")} == set(), name
            continue
        accepted += 1
        stored = {p for p in new if p.parts[0] == "test-files"}
        assert new - stored <= {p for p in new if "test.db" in p.name}, (name, new)  # the database's own files
        assert len(stored) == 1, (name, stored)
        relative = next(iter(stored)).relative_to("test-files").as_posix()
        assert STORED.match(relative) and body["id"] in relative, (name, relative)
        assert ".." not in body["url"] and "\\" not in body["url"], body
        before |= new
        resp = await api.client.get(path_of_url(body["url"]), headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200 and await resp.read() == b"payload", name
    assert accepted >= len(HOSTILE) - 3  # only NUL and the like may be refused by the parser
    status, page = await api.call("GET", "/storage/files?size=100", token)
    for row in page["results"]:
        assert not set(row["name"]) & {"/", "\\", "\x00", "\r", "\n"}, row["name"]
        assert 1 <= len(row["name"]) <= files.MAX_NAME_CHARS
        assert re.fullmatch(r"[0-9a-f-]{36}/[0-9a-f-]{36}/[0-9a-f-]{36}(\.[a-z0-9]{1,10})?", row["key"]), row["key"]
