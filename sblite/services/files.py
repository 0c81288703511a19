"""Stored files: uploads streamed to disk off the event loop, listing, usage, reading rules, deletion.

A file is written to a temporary file, flushed to disk and renamed into place before its row is
committed, and its row is deleted before its bytes: a crash can leave a file without a row (wasted
space), never a row without its file.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sblite import files, ids
from sblite.errors import ApiError, BadRequest, NotFound
from sblite.filters import INT64_MAX
from sblite.model import Identity
from sblite.store.files import FileRecord, FileStore
from sblite.timeutil import now_text

T = TypeVar("T")
WRITE_BUFFER = 512 * 1024  # bytes gathered before one write in the executor
SORTS = ("uploaded", "size")
NOT_FOUND = ("file not found (a private file is read with a session token of its account: "
             "Authorization: Bearer <token> or ?token=<token>)")


async def _off_loop(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def too_large(limit: int) -> ApiError:
    """The 413 of an upload past the limit."""
    return ApiError(f"file too large: the limit is {limit // (1024 * 1024)} MB (storage_max_upload_mb)", 413)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(temp: Path, final: Path) -> None:
    """Move a flushed temporary file to its place, durably."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, final)
    _fsync_dir(final.parent)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _flush_close(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


class Upload:
    """One file being received: its bytes go to a temporary file in chunks, written off the event loop."""

    def __init__(self, service: FileService, identity: Identity, limit: int) -> None:
        self._service = service
        self._identity = identity
        self._limit = limit
        self.id = ids.new_id()
        self._temp = service.temp_dir / f"{self.id}.part"
        self._handle: Any = None
        self._buffer = bytearray()
        self.size = 0

    async def write(self, chunk: bytes) -> None:
        """Add bytes; 413 (and nothing kept) once the file passes the limit."""
        self.size += len(chunk)
        if self.size > self._limit:
            await self.abort()
            raise too_large(self._limit)
        self._buffer += chunk
        if len(self._buffer) >= WRITE_BUFFER:
            await self._drain()

    async def _drain(self) -> None:
        if self._handle is None:
            self._handle = await _off_loop(open, self._temp, "xb")
        data, self._buffer = self._buffer, bytearray()
        await _off_loop(self._handle.write, data)

    async def abort(self) -> None:
        """Drop what was received."""
        self._buffer = bytearray()
        handle, self._handle = self._handle, None
        if handle is not None:
            await _off_loop(handle.close)
        await _off_loop(_unlink, self._temp)

    async def finish(self, *, name: str | None, filename: str | None, declared_type: str | None,
                     public: bool | None, ext: str | None = None, content_type: str | None = None) -> FileRecord:
        """Put the file in place and record it; 400 for an empty file.

        The extension comes from the file name (else the `name`), the type from the extension (else
        the declared type), unless the caller knows them (`ext`, `content_type`).
        """
        if self.size == 0:
            await self.abort()
            raise BadRequest("invalid file: the file is empty")
        try:
            await self._drain()
            handle, self._handle = self._handle, None
            await _off_loop(_flush_close, handle)
        except BaseException:
            await self.abort()
            raise
        if ext is None:
            ext = files.safe_ext(filename) or files.safe_ext(name)
        return await self._service.record(
            self._identity, self.id, self._temp, self.size, ext=ext, name=files.clean_name(name, filename or ""),
            content_type=content_type or files.content_type_for(ext, declared_type), public=public)


class FileService:
    """Files of every app under one directory; rows in the database."""

    def __init__(self, store: FileStore, root: Path, *, max_upload_bytes: int, public_default: bool,
                 max_page_size: int) -> None:
        self._store = store
        self.root = root
        self.temp_dir = root / "tmp"
        self.max_upload_bytes = max_upload_bytes
        self._public_default = public_default
        self._max_page_size = max_page_size

    async def open(self) -> None:
        """Create the directory; drop temporary files a previous process left half-written."""
        def prepare() -> None:
            if not mimetypes.inited:  # read the system's type files here, not on the event loop at the first upload
                mimetypes.init()
            self.temp_dir.mkdir(parents=True, exist_ok=True)
            for leftover in self.temp_dir.glob("*.part"):
                leftover.unlink(missing_ok=True)

        await _off_loop(prepare)

    def upload(self, identity: Identity) -> Upload:
        """A new upload by `identity`, bounded by the upload limit."""
        return Upload(self, identity, self.max_upload_bytes)

    async def store_bytes(self, identity: Identity, data: bytes, *, name: str, ext: str, content_type: str,
                          public: bool | None) -> FileRecord:
        """Store bytes made by the server (a resized image) with the extension and type of their format."""
        upload = self.upload(identity)
        await upload.write(data)
        return await upload.finish(name=name, filename=None, declared_type=None, public=public,
                                   ext=ext, content_type=content_type)

    async def record(self, identity: Identity, file_id: str, temp: Path, size: int, *, ext: str, name: str,
                     content_type: str, public: bool | None) -> FileRecord:
        """Move a complete temporary file into place and commit its row."""
        record = FileRecord(id=file_id, app_id=identity.app_id, account_id=identity.account_id,
                            owner_id=identity.user_id, key=files.file_key(identity.app_id, identity.account_id,
                                                                          file_id, ext),
                            name=name, ext=ext, content_type=content_type, size=size,
                            public=self._public_default if public is None else public, created=now_text())
        final = self.path_of(record)
        try:
            await _off_loop(_place, temp, final)
            await self._store.insert(record)
        except BaseException:
            await _off_loop(_unlink, temp)
            await _off_loop(_unlink, final)
            raise
        return record

    def path_of(self, record: FileRecord) -> Path:
        """Where a stored file's bytes are."""
        return files.disk_path(self.root, record.id, record.ext)

    async def list_files(self, identity: Identity, page: int, size: int, descending: bool, sort: str | None,
                         base_url: str) -> dict[str, Any]:
        """`{page, size, total, results}` of the caller's account's files (root: the whole app's)."""
        sort = sort or "uploaded"
        if sort not in SORTS:
            raise BadRequest(f"invalid sort {sort[:40]!r}: expected size or uploaded")
        size = min(size, self._max_page_size)
        offset = (page - 1) * size
        if offset > INT64_MAX:
            raise BadRequest(f"page {page} is too large: (page - 1) * size must fit in 64 bits")
        account = None if identity.is_root else identity.account_id
        total, records = await self._store.page(identity.app_id, account, sort=sort, descending=descending,
                                                limit=size, offset=offset)
        return {"page": page, "size": size, "total": total,
                "results": [file_json(record, base_url) for record in records]}

    async def usage(self, identity: Identity) -> int:
        """Bytes the caller's account stores."""
        return await self._store.usage(identity.app_id, identity.account_id)

    async def delete(self, root: Identity, file_id: str) -> None:
        """Root: delete a file of the app, row first, then its bytes; 404 when there is none."""
        record = await self._store.delete(root.app_id, file_id) if files.is_file_id(file_id) else None
        if record is None:
            raise NotFound("file not found")
        await _off_loop(_unlink, self.path_of(record))

    async def find(self, key: str) -> FileRecord:
        """The file served under `key` (`<app>/<account>/<id><ext>`); 404 for anything else."""
        file_id = key.rsplit("/", 1)[-1].split(".", 1)[0]
        record = await self._store.get(file_id) if files.is_file_id(file_id) else None
        if record is None or record.key != key:
            raise NotFound(NOT_FOUND)
        return record

    @staticmethod
    def check_read(record: FileRecord, reader: Identity | None) -> None:
        """Public files: anyone. Others: root of the app or a user of the uploading account; else 404."""
        if record.public:
            return
        if reader is not None and reader.app_id == record.app_id and (
                reader.is_root or reader.account_id == record.account_id):
            return
        raise NotFound(NOT_FOUND)


def file_json(record: FileRecord, base_url: str) -> dict[str, Any]:
    """A file as /storage/files lists it (StaticBackend's model.File, plus name, type and public)."""
    return {"id": record.id, "accountId": record.account_id, "key": record.key, "url": file_url(record, base_url),
            "size": record.size, "uploaded": record.created, "name": record.name,
            "contentType": record.content_type, "public": record.public}


def file_url(record: FileRecord, base_url: str) -> str:
    """Where a file is served."""
    return f"{base_url.rstrip('/')}/localfs/{record.key}"


async def copy_files(store: FileStore, source: Path, target: Path) -> tuple[int, list[str]]:
    """Copy every file `store` (a backup's database) lists; forget the rows whose files went meanwhile.

    Returns (files copied, ids forgotten). A file deleted after the database was copied loses its
    row first, so dropping that row from the copy leaves the copy as the server was a moment later.
    """
    rows = await store.every_file()

    def copy_all() -> tuple[int, list[str]]:
        target.mkdir(parents=True, exist_ok=False)
        copied, missing = 0, []
        for file_id, ext in rows:
            src, dst = files.disk_path(source, file_id, ext), files.disk_path(target, file_id, ext)
            dst.parent.mkdir(exist_ok=True)
            try:
                shutil.copy2(src, dst)
                copied += 1
            except FileNotFoundError:
                missing.append(file_id)
        return copied, missing

    copied, missing = await _off_loop(copy_all)
    if missing:
        await store.forget(missing)
    return copied, missing
