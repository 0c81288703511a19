"""The realtime protocol (spec §3.3): what a client's auth, join, chan_in, ... messages do."""

from __future__ import annotations

import hmac
import logging
from functools import partial
from typing import Any

from sblite.channels import check_publishable, is_system_channel, validate_channel
from sblite.errors import ApiError, BadRequest, Unauthorized
from sblite.jsonutil import dumps
from sblite.model import App, Identity, Message
from sblite.services.accounts import AccountService
from sblite.services.bus import EventBus
from sblite.services.channels import ChannelService
from sblite.services.hub import Connection, Hub, as_history, payload
from sblite.services.publish_limit import PublishLimiter
from sblite.throttle import AttemptLimiter, AuthThrottle

log = logging.getLogger(__name__)
OPEN_TYPES = frozenset({"auth", "echo", "join", "leave", "presence"})  # allowed before auth
# Failed `auth` attempts one connection may make per address window (the real client makes one).
AUTH_FAILURES_PER_CONNECTION = 5


def _as_text(value: Any) -> str:
    """Payload data is always a string: a non-string value is sent as its JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else dumps(value)


class RealtimeService:
    """Handles messages from realtime clients and publishes on behalf of root."""

    def __init__(self, hub: Hub, accounts: AccountService, channels: ChannelService, bus: EventBus,
                 throttle: AuthThrottle, limiter: PublishLimiter) -> None:
        self._hub = hub
        self._limiter = limiter  # custom messages per user, shared with functions' publish()
        self._accounts = accounts
        self._channels = channels
        self._bus = bus
        self._throttle = throttle  # failed auth attempts per client address, shared with /login
        self._per_connection = AttemptLimiter(AUTH_FAILURES_PER_CONNECTION, throttle.limits.address_window_seconds,
                                              max_keys=throttle.limits.max_keys)
        self._handlers = {
            "join": self._join, "leave": self._leave, "chan_in": self._chan_in,
            "presence": self._presence, "echo": self._echo,
        }

    def admit(self, conn: Connection, presented: str) -> None:
        """Refuse (401) a message posted for a connection without the token it answers to.

        The first message posted for a connection claims it with the token it carries (the
        real client sends the session token it authenticates with, "" when it has none); a
        successful `auth` re-keys it to that token. Knowing the connection's id is not enough.
        """
        if conn.key is None:
            conn.key = presented
        elif not hmac.compare_digest(conn.key.encode(), presented.encode()):
            self._hub.stats["refused_wrong_token"] += 1
            raise Unauthorized("this message's token does not match its connection")

    async def receive(self, conn: Connection, app: App, message: Any, remote: str | None) -> None:
        """Handle one client message (sent from address `remote`); problems are answered with an `error` frame."""
        if conn.closed:
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return self._error(conn, 'invalid message: expected a JSON object with a "type"')
        if not conn.bucket.allow():
            self._hub.stats["rate_limited"] += 1
            return self._error(conn, f"rate limit exceeded: at most {self._hub.limits.max_messages_per_second} "
                                     "messages per second")
        kind = message["type"]
        # `auth` is the one message whose failures are throttled by address.
        handler = partial(self._auth, remote=remote) if kind == "auth" else self._handlers.get(kind)
        if handler is None:
            return self._error(conn, f"{kind} command not found")
        if conn.identity is None and kind not in OPEN_TYPES:
            return self._error(conn, "authenticate first: send an auth message with your session token")
        try:
            await handler(conn, app, message)
        except ApiError as exc:
            self._error(conn, exc.message)

    def _reply(self, conn: Connection, kind: str, data: str, channel: str = "") -> None:
        self._hub.send(conn, payload(conn.id, kind, data, channel))

    def refuse(self, conn: Connection, text: str) -> None:
        """Answer a frame the transport could not decode with an `error` frame."""
        self._error(conn, text)

    def _error(self, conn: Connection, text: str) -> None:
        self._hub.stats["errors_sent"] += 1
        self._reply(conn, "error", text)

    def _throttled(self, conn: Connection, text: str) -> None:
        self._hub.stats["auth_throttled"] += 1
        self._error(conn, text)

    async def _auth(self, conn: Connection, app: App, message: dict[str, Any], remote: str | None) -> None:
        retry = self._per_connection.check(conn.id)
        if retry is not None:
            return self._throttled(conn, f"too many failed auth attempts on this connection: "
                                         f"try again in {retry} seconds")
        ticket = self._throttle.begin("realtime", remote)  # counted as failed until it succeeds
        if ticket.refused:
            return self._throttled(conn, ticket.message)
        raw = message.get("data")
        token = raw if isinstance(raw, str) else ""
        try:
            identity = await self._accounts.identify(app, token) if token else None
        except ApiError:
            identity = None
        if identity is None:
            self._throttle.failed(ticket)
            self._per_connection.fail(conn.id)
            return self._error(conn, "invalid token")
        self._throttle.succeeded(ticket)
        if not self._hub.may_bind(conn, identity):
            return self._error(conn, "this connection is authenticated as another user: "
                                     "open a new connection to sign in as someone else")
        if not self._hub.authenticate(conn, identity, token):
            self._error(conn, "too many realtime connections for this user")
            conn.sink.close(False)
            self._hub.disconnect(conn)
            return
        self._reply(conn, "token", token)

    async def _join(self, conn: Connection, app: App, message: dict[str, Any]) -> None:
        channel = validate_channel(message.get("data"))
        if is_system_channel(channel) and (conn.identity is None or not conn.identity.is_root):
            return self._error(conn, f"{channel} is a system channel: only root users may join it")
        rule = self._channels.rule_for(app.id, channel)
        if rule.auth and conn.identity is None:
            return self._error(conn, f"authentication required to join {channel}")
        if channel not in conn.channels and len(conn.channels) >= self._hub.limits.max_channels:
            return self._error(conn, f"too many channels: at most {self._hub.limits.max_channels} per connection")
        # Join first, holding live frames back, so nothing published during the read is lost;
        # the read queues behind pending history writes, so nothing already published is missed.
        self._hub.join(conn, channel, hold=True)
        try:
            history = await self._channels.history(app.id, channel)
        except BaseException:
            self._hub.leave(conn, channel)
            raise
        if conn.closed:
            return
        self._reply(conn, "ok", channel)
        for frame in history:
            self._hub.send(conn, as_history(self._hub.own_view(conn, frame)))
        self._hub.release(conn, channel)
        # Members see the joiner's public alias; the joiner's own copy shows its id.
        await self._bus.publish(Message(type="joined", channel=channel, data=conn.public_id, sid=conn.public_id,
                                        app_id=app.id, identity=conn.identity))

    async def _leave(self, conn: Connection, app: App, message: dict[str, Any]) -> None:
        channel = validate_channel(message.get("data"))
        self._hub.leave(conn, channel)
        self._reply(conn, "ok", channel)

    async def _chan_in(self, conn: Connection, app: App, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if not channel:
            return self._error(conn, "no channel was specified")
        channel = check_publishable(channel)
        if self._channels.rule_for(app.id, channel).publish == "server":
            return self._error(conn, f"{channel} is read-only: only the server publishes there")
        if conn.identity is not None:  # always set here: chan_in needs auth
            self._limiter.admit("chan_in", conn.identity)
        # `ok` (the acknowledgement) is sent once the runs of functions it triggers are stored.
        await self._bus.publish(Message(type="chan_out", channel=channel, data=_as_text(message.get("data")),
                                        sid=conn.public_id, app_id=app.id, identity=conn.identity, origin="chan_in"))
        self._reply(conn, "ok", "")

    async def _presence(self, conn: Connection, app: App, message: dict[str, Any]) -> None:
        channel = validate_channel(message.get("data"))
        self._reply(conn, "presence", str(self._hub.member_count(app.id, channel)), channel)

    async def _echo(self, conn: Connection, app: App, message: dict[str, Any]) -> None:
        self._reply(conn, "echo", f"echo: {_as_text(message.get('data'))}", _as_text(message.get("channel")))

    async def publish(self, root: Identity, body: Any) -> None:
        """Root: send a message of any type to a channel's members (and to functions)."""
        if not isinstance(body, dict):
            raise BadRequest('invalid body: expected {"channel": "...", "type": "...", "data": "..."}')
        channel = validate_channel(body.get("channel"))
        if is_system_channel(channel):  # root may write to db- channels, as on StaticBackend, not forge system events
            raise BadRequest(f"{channel} is a system channel: only the server publishes there")
        kind = body.get("type")
        if not isinstance(kind, str) or not kind or len(kind) > 64:
            raise BadRequest('"type" must be a non-empty string of at most 64 characters')
        self._limiter.admit("publish_message", root)
        await self._bus.publish(Message(type=kind, channel=channel, data=_as_text(body.get("data")),
                                        sid="user-msg", app_id=root.app_id, identity=root))
