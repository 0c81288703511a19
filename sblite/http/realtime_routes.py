"""Realtime transports (SSE and WebSocket), root publishing and the channel rules API."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import WSMsgType, web

from sblite.errors import ApiError, BadRequest, NotFound, Unauthorized
from sblite.http.keys import CONFIG, HUB, REALTIME, CHANNELS
from sblite.http.policy import OPEN, ROOT, PolicyRoutes, caller
from sblite.http.request import bearer_token, json_body, request_app
from sblite.http.responses import json_response
from sblite.http.sinks import SseSink, WsSink
from sblite.jsonutil import loads

routes = PolicyRoutes()
log = logging.getLogger(__name__)


@routes.get("/sse/connect", OPEN)
async def sse_connect(request: web.Request) -> web.StreamResponse:
    """Open an event stream; the first event is `init` with the connection id."""
    app = await request_app(request)
    # No Connection header: aiohttp keeps HTTP/1.1 streams open (chunked) and ends an HTTP/1.0 one by closing.
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    sink = SseSink(request, response)
    hub = request.app[HUB]
    conn = hub.connect(app.id, "sse", sink)
    try:
        await sink.run(request.app[CONFIG].realtime_keepalive_seconds)
    finally:
        hub.disconnect(conn)
    return response


@routes.post("/sse/msg", OPEN)
async def sse_message(request: web.Request) -> web.Response:
    """A client message for an SSE connection; replies arrive on the stream."""
    app = await request_app(request)
    limit = request.app[CONFIG].realtime_max_frame_bytes
    if (request.content_length or 0) > limit or len(await request.read()) > limit:
        raise ApiError(f"message too large: the limit is {limit} bytes", status=413)
    message = await json_body(request)
    if not isinstance(message, dict) or not isinstance(message.get("sid"), str):
        raise BadRequest('invalid body: expected {"sid", "token", "type", "data", "channel"}')
    conn = request.app[HUB].connection(message["sid"])
    if conn is None or conn.app_id != app.id or conn.transport != "sse":
        raise NotFound("unknown or closed connection id")
    realtime = request.app[REALTIME]
    realtime.admit(conn, _presented_token(request, message))
    await realtime.receive(conn, app, message, request.remote)
    return json_response(True)


def _presented_token(request: web.Request, message: dict[str, Any]) -> str:
    """The token a posted message carries (body `token`, else the Bearer header); 401 if they differ."""
    field = message.get("token")
    field = field if isinstance(field, str) else ""
    header = bearer_token(request) or ""
    if field and header and not hmac.compare_digest(field.encode(), header.encode()):
        raise Unauthorized("this message's token does not match its connection")
    return field or header


@routes.get("/ws", OPEN)
async def websocket(request: web.Request) -> web.WebSocketResponse:
    """A WebSocket with the same messages as SSE: init, auth → token, join, chan_in, ..."""
    app = await request_app(request)
    config = request.app[CONFIG]
    ws = web.WebSocketResponse(heartbeat=config.realtime_ws_heartbeat_seconds,
                               max_msg_size=config.realtime_max_frame_bytes, compress=False)
    await ws.prepare(request)
    sink = WsSink(request, ws)
    hub, realtime = request.app[HUB], request.app[REALTIME]
    conn = hub.connect(app.id, "ws", sink)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                message = loads(msg.data)
            except ValueError as exc:
                realtime.refuse(conn, f"invalid message: {exc}")
                continue
            await realtime.receive(conn, app, message, request.remote)
    finally:
        hub.disconnect(conn)
        await sink.wait_closed()
    return ws


@routes.post("/publish-message", ROOT)
async def publish_message(request: web.Request) -> web.Response:
    """Root: send `{channel, type, data}` to a channel's members and to functions."""
    root = caller(request)
    await request.app[REALTIME].publish(root, await json_body(request))
    return json_response(True)


@routes.get("/channels", ROOT)
async def list_rules(request: web.Request) -> web.Response:
    """Root: every stored channel rule."""
    root = caller(request)
    return json_response([rule.to_json() for rule in request.app[CHANNELS].rules(root.app_id)])


@routes.get("/channels/{name}", ROOT)
async def get_rule(request: web.Request) -> web.Response:
    """Root: the rule stored under a name or pattern."""
    root = caller(request)
    return json_response(request.app[CHANNELS].stored_rule(root.app_id, request.match_info["name"]).to_json())


@routes.put("/channels/{name}", ROOT)
async def put_rule(request: web.Request) -> web.Response:
    """Root: create or replace a rule for a channel name or glob pattern."""
    root = caller(request)
    rule = await request.app[CHANNELS].put_rule(root.app_id, request.match_info["name"], await json_body(request))
    return json_response(rule.to_json())


@routes.delete("/channels/{name}", ROOT)
async def delete_rule(request: web.Request) -> web.Response:
    """Root: delete a stored rule."""
    root = caller(request)
    await request.app[CHANNELS].delete_rule(root.app_id, request.match_info["name"])
    return json_response(True)
