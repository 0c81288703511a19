"""GET /realtime/channels (root): the app's channels that have members now, with how many, and the rule each follows."""

from __future__ import annotations

from aiohttp import web

from sblite.http.keys import CHANNELS, HUB
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.responses import json_response

routes = PolicyRoutes()


@routes.get("/realtime/channels", ROOT)
async def live_channels(request: web.Request) -> web.Response:
    """Root: `[{channel, members, rule}]`, busiest first; `rule` is the stored rule that applies (`*`: the default)."""
    root = caller(request)
    channels = request.app[CHANNELS]
    members = request.app[HUB].channel_members(root.app_id)
    found = []
    for channel, count in sorted(members.items(), key=lambda item: (-item[1], item[0])):
        rule = channels.rule_for(root.app_id, channel)
        found.append({"channel": channel, "members": count, "rule": rule.to_json()})
    return json_response(found)
