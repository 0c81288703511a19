"""`POST /extra/htmltox` (spec §7): a page rendered to PDF or PNG by headless Chromium → `{id, url}`."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sblite.http.fetcher import is_non_public
from sblite.http.keys import CONFIG
from sblite.http.policy import USER, PolicyRoutes, caller
from sblite.http.request import json_body
from sblite.http.responses import json_response
from sblite.http.storage_routes import FILES
from sblite.services.files import file_url
from sblite.services.render import Renderer, find_chromium, parse_request

RENDERER = web.AppKey("renderer", Renderer)

routes = PolicyRoutes()


def setup(app: web.Application) -> None:
    """Register the route and find Chromium once the file service is up."""
    routes.register(app)

    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        app[RENDERER] = Renderer(find_chromium(config.chromium_path), app[FILES],
                                 timeout_seconds=config.render_timeout_seconds,
                                 allow_private=config.functions_fetch_allow_private, refuse=is_non_public)
        yield

    app.cleanup_ctx.append(context)


@routes.post("/extra/htmltox", USER)
async def html_to_x(request: web.Request) -> web.Response:
    """User: `{toPDF, url, fullpage}` → the stored render's `{id, url}` (501 without Chromium)."""
    identity = caller(request)
    render = parse_request(await json_body(request))
    record = await request.app[RENDERER].render(identity, render)
    base = request.app[CONFIG].storage_url or f"{request.scheme}://{request.host}"
    return json_response({"id": record.id, "url": file_url(record, base)})
