"""Mail: `/sudo/sendmail` (spec §7) and the outbox for the dashboard and the CLI (root only)."""

from __future__ import annotations

from aiohttp import web

from sblite.http.keys import MAIL
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.request import json_body, paging
from sblite.http.responses import json_response

routes = PolicyRoutes()


@routes.post("/sudo/sendmail", ROOT)
async def send_mail(request: web.Request) -> web.Response:
    """Root: queue `{from, fromName, to, toName, subject, htmlBody, textBody, replyTo, body}`; `true` once stored."""
    root = caller(request)
    await request.app[MAIL].send(root.app_id, await json_body(request), "sudo", body_fills=True)
    return json_response(True)


@routes.get("/mail/outbox", ROOT)
async def outbox(request: web.Request) -> web.Response:
    """Root: the app's mail, newest first, `?page=&size=&status=queued|sent|parked|kept`."""
    pages = paging(request)
    return json_response(await request.app[MAIL].outbox(caller(request), request.query.get("status"),
                                                        pages.page, pages.size))


@routes.get("/mail/outbox/{id}", ROOT)
async def get(request: web.Request) -> web.Response:
    """Root: one mail with its bodies and delivery state."""
    return json_response(await request.app[MAIL].get(caller(request), request.match_info["id"]))


@routes.post("/mail/outbox/{id}/replay", ROOT)
async def replay(request: web.Request) -> web.Response:
    """Root: send a parked (or kept) mail again from its first attempt; the mail."""
    return json_response(await request.app[MAIL].replay(caller(request), request.match_info["id"]))
