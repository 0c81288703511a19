"""Stored files' names: what a request's name may become on disk (nothing) and in metadata.

A file's place on disk is a function of its server-made id and a sanitised extension only; the
name a client sends is kept as metadata, cleaned of control characters and bounded in length.
"""

from __future__ import annotations

import math
import mimetypes
import re
import unicodedata
from pathlib import Path, PurePosixPath

MAX_NAME_CHARS = 255
MAX_WIDTH = 10_000.0
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# The generated ids (sblite.ids.new_id): nothing else is ever a file's disk name.
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_EXT = re.compile(r"\.[a-z0-9]{1,10}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
# Types a browser would run as a page of our origin: served, but never as a document there.
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"})


def files_dir_for(db: str, storage_dir: str = "") -> Path:
    """The files directory: `storage_dir`, else one beside the database named after it."""
    if storage_dir:
        return Path(storage_dir)
    path = Path(db)
    return path.with_name(f"{path.stem}-files")


def is_file_id(value: str) -> bool:
    """Whether `value` has the shape of a generated file id."""
    return _ID.fullmatch(value) is not None


def safe_ext(filename: str | None) -> str:
    """The extension of `filename` as `.abc` (ASCII letters and digits, lower case), or ""."""
    if not filename:
        return ""
    base = re.split(r"[/\\]", filename)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem.strip(".") or any(unicodedata.category(ch)[0] == "C" for ch in base):
        return ""
    candidate = "." + ext.lower()
    return candidate if _EXT.fullmatch(candidate) else ""


def clean_name(raw: str | None, fallback: str = "") -> str:
    """A name to keep as metadata: the last path part, no control characters, at most 255 characters."""
    text = raw if raw else fallback
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    return text[:MAX_NAME_CHARS] or "file"


def disk_path(root: Path, file_id: str, ext: str) -> Path:
    """Where a file lives under `root`: `<id[:2]>/<id><ext>`; ValueError for anything but an id and an ext."""
    if not is_file_id(file_id) or (ext and not _EXT.fullmatch(ext)):
        raise ValueError(f"not a stored file's id and extension: {file_id!r} {ext!r}")
    return root / file_id[:2] / f"{file_id}{ext}"


def file_key(app_id: str, account_id: str, file_id: str, ext: str) -> str:
    """The key a file is listed and served under: `<app>/<account>/<id><ext>`."""
    return str(PurePosixPath(app_id, account_id, f"{file_id}{ext}"))


def content_type_for(ext: str, declared: str | None) -> str:
    """The type to serve: from the extension, else the type the client declared if well formed."""
    guessed = mimetypes.guess_type(f"file{ext}", strict=False)[0] if ext else None
    if guessed:
        return guessed
    declared = (declared or "").split(";")[0].strip().lower()
    return declared if _CONTENT_TYPE.fullmatch(declared) else DEFAULT_CONTENT_TYPE


def parse_width(raw: str | None) -> float:
    """The `width` of a resize: a positive finite number up to MAX_WIDTH; ValueError with the reason."""
    if raw is None or not raw.strip():
        raise ValueError("missing width: send the maximum width in pixels as the `width` field")
    try:
        width = float(raw)
    except ValueError:
        raise ValueError(f"invalid width {raw[:40]!r}: expected a number of pixels") from None
    if not math.isfinite(width) or width < 1:
        raise ValueError(f"invalid width {raw[:40]!r}: it must be at least 1 pixel")
    if width > MAX_WIDTH:
        raise ValueError(f"invalid width {raw[:40]!r}: at most {MAX_WIDTH:.0f} pixels")
    return width


def is_true(raw: str | None) -> bool:
    """A form flag: 1, true, yes or on."""
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")
