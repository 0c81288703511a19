"""The realtime hub: connections, channel membership, and fan-out of bus messages to members.

Transports (SSE, WebSocket) give each connection a `Sink` that writes a frame without
waiting. A connection has two ids: its own (`id`, sent only to it in `init`, the one
/sse/msg addresses) and a public alias (`public_id`) that everyone else sees in `joined`
and `chan_out` frames and functions get as `sid`, so that seeing it gives no hold on it. The hub
checks how far a connection has fallen behind after every write and cuts off one that passes
the limit, so a slow reader never delays the others or grows memory.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol
from collections.abc import Callable

from sblite import ids
from sblite.channels import is_db_channel
from sblite.jsonutil import dumps, loads
from sblite.model import Identity, Message
from sblite.permissions import collection_rules, may_read
from sblite.ratelimit import TokenBucket
from sblite.services.bus import EventBus

log = logging.getLogger(__name__)

DB_EVENT_TYPES = frozenset({"db_created", "db_updated", "db_deleted"})
_ZERO_AUTH = '{"accountId":"","userId":"","email":"","role":0}'
_HISTORY_MARKER = ',"history":true'


class Sink(Protocol):
    """Where a connection's frames go."""

    def send(self, frame: bytes) -> None:
        """Queue one Payload JSON (UTF-8) for the client without waiting."""

    def pending_bytes(self) -> int:
        """Bytes queued or written but not yet taken by the client."""

    def close(self, going_away: bool) -> None:
        """End the connection: gracefully when the server goes away, at once otherwise."""

    def alive(self) -> bool:
        """False once the client has gone."""


def payload(sid: str, kind: str, data: str, channel: str = "", token: str = "") -> str:
    """A Payload frame as StaticBackend writes it: 7 keys, `data` a string, `auth` zeroed."""
    return (
        f'{{"sid":{dumps(sid)},"type":{dumps(kind)},"data":{dumps(data)},"channel":{dumps(channel)},'
        f'"token":{dumps(token)},"auth":{_ZERO_AUTH},"base":""}}'
    )


def as_history(frame: str) -> str:
    """A recorded frame marked as replayed history."""
    return frame[:-1] + _HISTORY_MARKER + "}"


@dataclass(eq=False)
class Connection:
    """One realtime client: SSE stream or WebSocket."""

    id: str
    public_id: str
    app_id: str
    transport: str
    sink: Sink
    bucket: TokenBucket
    identity: Identity | None = None
    token: str | None = None
    # The token every /sse/msg message must carry: the first message's, then the one authenticated with.
    key: str | None = None
    channels: set[str] = field(default_factory=set)
    closed: bool = False
    # Channels being joined: their live frames wait here until the history replay is sent.
    held: dict[str, list[str | bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class HubLimits:
    """Bounds on what one connection may cost."""

    max_channels: int = 100
    max_connections_per_user: int = 20
    max_messages_per_second: int = 50
    max_outgoing_bytes: int = 1024 * 1024


class Hub:
    """Connections and channels of every app; delivers bus messages to channel members."""

    def __init__(self, bus: EventBus, limits: HubLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.stats: Counter[str] = Counter()
        self._clock = clock
        self._connections: dict[str, Connection] = {}
        self._by_public: dict[str, Connection] = {}
        self._members: dict[tuple[str, str], set[Connection]] = {}
        self._per_user: Counter[str] = Counter()
        self._recorders: list[Callable[[Message, Callable[[], str]], None]] = []
        bus.subscribe(self.deliver)

    # --- connections

    def connect(self, app_id: str, transport: str, sink: Sink) -> Connection:
        """Register a new connection and send it `init` with its id."""
        conn = Connection(id=ids.new_id(), public_id=ids.new_id(), app_id=app_id, transport=transport, sink=sink,
                          bucket=TokenBucket(self.limits.max_messages_per_second, self._clock))
        self._connections[conn.id] = conn
        self._by_public[conn.public_id] = conn
        self.stats["connections_opened"] += 1
        self.send(conn, payload("", "init", conn.id))
        return conn

    def connection(self, sid: str) -> Connection | None:
        """The open connection with this id."""
        return self._connections.get(sid)

    def may_bind(self, conn: Connection, identity: Identity) -> bool:
        """False (and counted) when the connection is bound to another user: it stays theirs."""
        bound = conn.identity
        if bound is None or (bound.app_id, bound.user_id) == (identity.app_id, identity.user_id):
            return True
        self.stats["refused_rebind"] += 1
        return False

    def authenticate(self, conn: Connection, identity: Identity, token: str) -> bool:
        """Bind a user to a connection (see `may_bind`); False when the user holds too many connections."""
        if not self.may_bind(conn, identity):
            raise ValueError("a realtime connection cannot be re-bound to another user")
        if conn.identity is None:
            if self._per_user[identity.user_id] >= self.limits.max_connections_per_user:
                self.stats["refused_too_many_connections"] += 1
                return False
            self._per_user[identity.user_id] += 1
        conn.identity, conn.token, conn.key = identity, token, token
        return True

    def disconnect(self, conn: Connection) -> None:
        """Forget a connection and its memberships. Safe to call twice."""
        if conn.closed:
            return
        conn.closed = True
        self._connections.pop(conn.id, None)
        self._by_public.pop(conn.public_id, None)
        for channel in conn.channels:
            self._leave_members(conn, channel)
        conn.channels.clear()
        if conn.identity is not None:
            self._per_user[conn.identity.user_id] -= 1
            if self._per_user[conn.identity.user_id] <= 0:
                del self._per_user[conn.identity.user_id]
        self.stats["connections_closed"] += 1

    def close_all(self, going_away: bool = True) -> None:
        """End every connection (server shutdown)."""
        for conn in tuple(self._connections.values()):
            conn.sink.close(going_away)
            self.disconnect(conn)

    @property
    def connection_count(self) -> int:
        """Open connections."""
        return len(self._connections)

    # --- channels

    def join(self, conn: Connection, channel: str, hold: bool = False) -> None:
        """Make a connection a member of a channel; with `hold`, live frames wait for `release`."""
        conn.channels.add(channel)
        self._members.setdefault((conn.app_id, channel), set()).add(conn)
        if hold:
            conn.held.setdefault(channel, [])

    def release(self, conn: Connection, channel: str) -> None:
        """Send the frames held back while joining, then deliver live again."""
        for frame in conn.held.pop(channel, ()):
            self.send(conn, frame)

    def sweep(self) -> int:
        """Forget connections whose client has gone; returns how many."""
        gone = [conn for conn in self._connections.values() if not conn.sink.alive()]
        for conn in gone:
            conn.sink.close(False)
            self.disconnect(conn)
        return len(gone)

    def leave(self, conn: Connection, channel: str) -> None:
        """Remove a connection from a channel."""
        conn.channels.discard(channel)
        conn.held.pop(channel, None)
        self._leave_members(conn, channel)

    def _leave_members(self, conn: Connection, channel: str) -> None:
        members = self._members.get((conn.app_id, channel))
        if members is not None:
            members.discard(conn)
            if not members:
                del self._members[(conn.app_id, channel)]

    def member_count(self, app_id: str, channel: str) -> int:
        """How many connections are members of a channel."""
        return len(self._members.get((app_id, channel), ()))

    def channel_members(self, app_id: str) -> dict[str, int]:
        """Each channel of an app that has members, with how many."""
        return {channel: len(members) for (app, channel), members in self._members.items() if app == app_id}

    # --- delivery

    def send(self, conn: Connection, frame: str | bytes) -> None:
        """Write one frame to a connection; cut it off if it has fallen too far behind."""
        if conn.closed:
            return
        conn.sink.send(frame.encode() if isinstance(frame, str) else frame)
        if conn.sink.pending_bytes() > self.limits.max_outgoing_bytes:
            self.stats["slow_consumers_disconnected"] += 1
            log.warning("realtime connection %s fell behind by more than %d bytes: disconnected",
                        conn.id, self.limits.max_outgoing_bytes)
            conn.sink.close(False)
            self.disconnect(conn)

    def on_record(self, recorder: Callable[[Message, Callable[[], str]], None]) -> None:
        """Call `recorder(message, framed)` for every message delivered; `framed()` is its frame (history)."""
        self._recorders.append(recorder)

    def deliver(self, message: Message) -> None:
        """Bus subscriber: send a message to the members of its channel."""
        if not message.app_id or not message.channel:
            return
        frame = ""

        def framed() -> str:  # most database events reach no member and no history: frame on demand
            nonlocal frame
            if not frame:
                frame = payload(message.sid, message.type, message.data, message.channel)
            return frame

        for recorder in self._recorders:
            recorder(message, framed)
        members = self._members.get((message.app_id, message.channel))
        if not members:
            return
        frame = framed()
        readers = self._db_readers(message, members) if message.type in DB_EVENT_TYPES else members
        encoded = frame.encode()  # once for every member
        origin = self._by_public.get(message.sid) if message.sid else None
        for conn in tuple(readers):
            out: str | bytes = encoded if conn is not origin else self.own_view(conn, frame)
            if conn.held and message.channel in conn.held:
                conn.held[message.channel].append(out)
            else:
                self.send(conn, out)
        self.stats["deliveries"] += len(readers)

    @staticmethod
    def own_view(conn: Connection, frame: str) -> str:
        """A frame as its own connection sees it: its alias replaced by its id (`sid === wsId`)."""
        return frame.replace(dumps(conn.public_id), dumps(conn.id))

    def _db_readers(self, message: Message, members: set[Connection]) -> list[Connection]:
        """Members allowed to read the document an event carries (spec §3.4; root sees all)."""
        if not is_db_channel(message.channel):
            return list(members)
        try:
            rules = collection_rules(message.channel[3:])
            doc = loads(message.data, max_depth=None)  # written here, maybe from a document stored before the limit
            account_id, owner_id = doc.get("accountId", ""), doc.get("ownerId", "")
        except Exception:  # nobody may read what cannot be checked: counted, never dropped silently
            self.stats["undeliverable"] += 1
            log.exception("a %s event on %s could not be parsed: delivered to nobody", message.type,
                          message.channel)
            return []
        allowed = []
        for conn in members:
            who = conn.identity
            if who is None:
                role, my_account, my_user = 0, "", ""
            else:
                role, my_account, my_user = who.role, who.account_id, who.user_id
            if may_read(rules, role=role, account_id=my_account, user_id=my_user,
                        doc_account_id=account_id, doc_owner_id=owner_id):
                allowed.append(conn)
        return allowed
