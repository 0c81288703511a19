"""File storage (spec §7): uploads streamed to disk, listing, usage, serving with ranges, root delete, resize."""

from __future__ import annotations

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from sblite import files
from sblite.errors import ApiError, BadRequest
from sblite.http.keys import ACCOUNTS, CONFIG
from sblite.http.policy import OPEN, ROOT, USER, PolicyRoutes, caller
from sblite.http.request import bearer_token, paging
from sblite.http.responses import json_response
from sblite.model import Identity
from sblite.services import images
from sblite.services.files import FileService, Upload, file_url, too_large
from sblite.store.files import FileRecord
from sblite.tokens import DEV_ROOT_ALIAS

routes = PolicyRoutes()
FILES = web.AppKey("files", FileService)
READ_CHUNK = 256 * 1024
MAX_FIELD_BYTES = 4096
# Multipart framing around a file of the largest size: a bigger Content-Length is refused unread.
FRAMING_ALLOWANCE = 64 * 1024
PRIVATE_CACHE = "private, no-cache"
PUBLIC_CACHE = "public, max-age=3600"


def _base_url(request: web.Request) -> str:
    return request.app[CONFIG].storage_url or f"{request.scheme}://{request.host}"


def _answer(request: web.Request, record: FileRecord) -> web.Response:
    return json_response({"id": record.id, "url": file_url(record, _base_url(request))})


async def _parts(request: web.Request, limit: int, too_large: ApiError) -> MultipartReader:
    """The multipart reader of a form upload; 400 when the body is not one, `too_large` when it cannot fit."""
    if request.content_type != "multipart/form-data":
        raise BadRequest("invalid body: send a multipart/form-data form with a `file` field")
    if request.content_length is not None and request.content_length > limit + FRAMING_ALLOWANCE:
        raise too_large
    try:
        return await request.multipart()
    except (ValueError, RuntimeError) as exc:
        raise BadRequest(f"invalid form body: {exc}") from None


async def _field(part: BodyPartReader) -> str:
    """A small text field (`name`, `width`, `public`); 400 past MAX_FIELD_BYTES."""
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FIELD_BYTES):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"invalid form field {part.name}: longer than {MAX_FIELD_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def _check_encoding(part: BodyPartReader) -> None:
    encoding = (part.headers.get("Content-Transfer-Encoding") or "binary").lower()
    if encoding not in ("binary", "8bit", "7bit") or part.headers.get("Content-Encoding"):
        raise BadRequest("invalid file part: transfer and content encodings are not supported; send the raw bytes")


class _Form:
    """What a storage form carried besides the file."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.declared_type: str | None = None
        self.seen_file = False


async def _read_form(reader: MultipartReader, on_file: _FileSink) -> _Form:
    """Walk the parts: the `file` part's bytes go to `on_file`, small fields are kept, others skipped."""
    form = _Form()
    try:
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("invalid form body: nested multipart parts are not supported")
            if part.name == "file" and not form.seen_file:
                _check_encoding(part)
                form.seen_file, form.filename = True, part.filename
                form.declared_type = part.headers.get("Content-Type")
                while chunk := await part.read_chunk(READ_CHUNK):
                    await on_file(chunk)
            elif part.name in ("name", "width", "public"):
                form.fields[part.name] = await _field(part)
            else:
                await part.release()
    except HttpProcessingError as exc:
        raise BadRequest(f"invalid form body: {exc.message}") from None
    except (ValueError, LookupError, RuntimeError) as exc:
        raise BadRequest(f"invalid form body: {exc}") from None
    if not form.seen_file:
        raise BadRequest("invalid form body: the `file` field is missing")
    return form


class _FileSink:
    """Where a file part's chunks go."""

    async def __call__(self, chunk: bytes) -> None:
        raise NotImplementedError


class _ToUpload(_FileSink):
    def __init__(self, upload: Upload) -> None:
        self.upload = upload

    async def __call__(self, chunk: bytes) -> None:
        await self.upload.write(chunk)


class _ToMemory(_FileSink):
    def __init__(self, limit: int) -> None:
        self.data = bytearray()
        self.limit = limit

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            raise _image_too_large()


def _image_too_large() -> ApiError:
    return ApiError(f"image too large: the limit is {images.MAX_IMAGE_BYTES // (1024 * 1024)} MB", 413)


def _public(form: _Form) -> bool | None:
    raw = form.fields.get("public")
    return None if raw is None else files.is_true(raw)


@routes.post("/storage/upload", USER)
async def upload(request: web.Request) -> web.Response:
    """User: multipart `file` (+ `name`, `public`) streamed to disk → `{id, url}`."""
    service = request.app[FILES]
    reader = await _parts(request, service.max_upload_bytes, too_large(service.max_upload_bytes))
    sink = _ToUpload(service.upload(caller(request)))
    try:
        form = await _read_form(reader, sink)
        record = await sink.upload.finish(name=form.fields.get("name"), filename=form.filename,
                                          declared_type=form.declared_type, public=_public(form))
    except BaseException:
        await sink.upload.abort()
        raise
    return _answer(request, record)


@routes.post("/extra/resizeimg", USER)
async def resize_image(request: web.Request) -> web.Response:
    """User: multipart `file` (≤ 2 MB image) and `width` (the largest width) → a stored copy's `{id, url}`."""
    reader = await _parts(request, images.MAX_IMAGE_BYTES, _image_too_large())
    sink = _ToMemory(images.MAX_IMAGE_BYTES)
    form = await _read_form(reader, sink)
    try:
        width = files.parse_width(form.fields.get("width"))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if not sink.data:
        raise BadRequest("invalid file: the file is empty")
    resized = await images.resize(bytes(sink.data), width)
    record = await request.app[FILES].store_bytes(
        caller(request), resized.data, name=files.clean_name(form.fields.get("name"), form.filename or ""),
        ext=resized.ext, content_type=resized.content_type, public=_public(form))
    return _answer(request, record)


@routes.get("/storage/files", USER)
async def list_files(request: web.Request) -> web.Response:
    """User: `?page=&size=&desc=&sort=size|uploaded` of the account's files (root: the app's)."""
    paged = paging(request)
    return json_response(await request.app[FILES].list_files(caller(request), paged.page, paged.size,
                                                             paged.descending, paged.sort, _base_url(request)))


@routes.get("/storage/usage", USER)
async def usage(request: web.Request) -> web.Response:
    """User: `{bytes, gb}` stored by the caller's account."""
    stored = await request.app[FILES].usage(caller(request))
    return json_response({"bytes": stored, "gb": stored / 1024 ** 3})


@routes.route("*", "/sudostorage/delete", ROOT)
async def delete(request: web.Request) -> web.Response:
    """Root: `?id=` deletes a file's row, then its bytes → `true`."""
    await request.app[FILES].delete(caller(request), request.query.get("id", ""))
    return json_response(True)


async def _reader(request: web.Request, record: FileRecord) -> Identity | None:
    """Who asks to read a private file: a session or root token (header or `?token=`); None if nobody valid."""
    accounts = request.app[ACCOUNTS]
    try:
        token = bearer_token(request) or request.query.get("token")
        if not token:
            return None
        if "|" in token or token == DEV_ROOT_ALIAS:
            return await accounts.identify_root(token, None)
        return await accounts.identify(await accounts.app_by_id(record.app_id), token)
    except ApiError:
        return None


async def serve_file(request: web.Request) -> web.StreamResponse:
    """A stored file, with ETag, Last-Modified and ranges (aiohttp's FileResponse); 404 to whoever may not read it."""
    info = request.match_info
    service = request.app[FILES]
    record = await service.find(f"{info['app']}/{info['account']}/{info['file']}")
    service.check_read(record, None if record.public else await _reader(request, record))
    headers = {"Content-Type": record.content_type,
               "Cache-Control": PUBLIC_CACHE if record.public else PRIVATE_CACHE,
               # An uploaded page must never run as a page of this origin (the dashboard's).
               "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'; media-src 'self'"}
    if record.content_type in files.ACTIVE_TYPES:
        headers["Content-Disposition"] = "attachment"
    return web.FileResponse(service.path_of(record), headers=headers)


for _method in ("GET", "HEAD"):
    routes.route(_method, "/localfs/{app}/{account}/{file}", OPEN)(serve_file)
