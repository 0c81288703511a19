"""Forms (spec §7): a public sink `POST /postform/{form}` and root's `GET /form[?name=]`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, web

from sblite.errors import ApiError, BadRequest
from sblite.http.keys import CONFIG, DATABASE
from sblite.http.policy import OPEN, ROOT, PolicyRoutes, caller
from sblite.http.request import request_app
from sblite.http.responses import json_response
from sblite.services.forms import DEFAULT_LIST_SIZE, MAX_FIELDS, OUTCOMES, FormService, check_form_name
from sblite.store.forms import FormStore

FORMS = web.AppKey("forms", FormService)
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
CHUNK = 64 * 1024

routes = PolicyRoutes()


def _too_large(limit: int) -> ApiError:
    return ApiError(f"the form is larger than {limit} bytes (forms_max_bytes)", 413)


def setup(app: web.Application) -> None:
    """Register the routes and build the form service once the database is open."""
    routes.register(app)

    async def context(app: web.Application) -> AsyncIterator[None]:
        app[FORMS] = FormService(FormStore(app[DATABASE]), app[CONFIG].forms_per_minute)
        yield

    app.cleanup_ctx.append(context)


@routes.post("/postform/{form}", OPEN)
async def post_form(request: web.Request) -> web.Response:
    """Store a submission of a form (urlencoded or multipart fields, no files)."""
    app = await request_app(request)
    name = check_form_name(request.match_info["form"])
    forms = request.app[FORMS]
    forms.admit(app.id, request.remote)
    try:
        pairs = await _fields(request, request.app[CONFIG].forms_max_bytes)
    except ApiError:
        forms.rejected()
        raise
    await forms.submit(app.id, name, pairs)
    return json_response(True)


@routes.get("/form", ROOT)
async def list_forms(request: web.Request) -> web.Response:
    """Root: submissions, newest first (`name` one form's; `page`, `size`)."""
    root = caller(request)
    query = request.query
    return json_response(await request.app[FORMS].list(root.app_id, query.get("name") or None,
                                                       _positive(query.get("page"), 1),
                                                       _positive(query.get("size"), DEFAULT_LIST_SIZE)))


def metric_lines(app: web.Application) -> list[str]:
    """Form submissions by outcome, for /metrics."""
    stats = app[FORMS].stats
    return [
        "# HELP sblite_form_submissions_total Form submissions by outcome (refused: over the per-address limit,"
        " answered 429; rejected: bad input, 4xx).",
        "# TYPE sblite_form_submissions_total counter",
        *(f'sblite_form_submissions_total{{outcome="{outcome}"}} {stats[outcome]}' for outcome in OUTCOMES),
    ]


async def _fields(request: web.Request, limit: int) -> list[tuple[str, str]]:
    """The (name, value) pairs of the body, reading at most `limit` bytes of it."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    if request.content_type == URLENCODED:
        raw = await _read(request, limit)
        try:
            return parse_qsl(raw.decode(), keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS + 1)
        except (UnicodeDecodeError, ValueError):
            raise BadRequest(f"invalid form body: UTF-8 text of at most {MAX_FIELDS} fields expected") from None
    if request.content_type == MULTIPART:
        try:
            return await _multipart(request, limit)
        except (ValueError, LookupError, AssertionError, RuntimeError) as exc:
            raise BadRequest(f"invalid form body: {exc}") from None
    raise BadRequest(f"a form is sent as {URLENCODED} or {MULTIPART}")


async def _read(request: web.Request, limit: int) -> bytes:
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data)


async def _multipart(request: web.Request, limit: int) -> list[tuple[str, str]]:
    """Fields of a multipart body; a file part is refused (files go to /storage/upload)."""
    reader = await request.multipart()
    pairs: list[tuple[str, str]] = []
    total = 0
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            raise BadRequest("invalid form body: every part needs a name, and parts do not nest")
        if part.filename is not None:
            raise BadRequest(f"form field {part.name} is a file: forms take text fields (upload files with "
                             "/storage/upload)")
        raw = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            total += len(chunk)
            if total > limit:
                raise _too_large(limit)
            raw += chunk
        if len(pairs) >= MAX_FIELDS:
            raise BadRequest(f"a form may have at most {MAX_FIELDS} fields")
        pairs.append((part.name, bytes(raw).decode(part.get_charset(default="utf-8"))))
    return pairs


def _positive(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        raise BadRequest("page and size must be whole numbers") from None
    if value < 1:
        raise BadRequest("page and size must be at least 1")
    return value
