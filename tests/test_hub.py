"""The hub on its own: holding live frames while a join replays history, sweeping gone clients."""

from __future__ import annotations

import asyncio
import json

from sblite.model import Message
from sblite.services.bus import EventBus
from sblite.services.hub import Hub, HubLimits


class RecordingSink:
    """A transport stand-in that keeps what it was sent."""

    def __init__(self) -> None:
        self.frames: list[dict] = []
        self.gone = False
        self.closed_with: bool | None = None

    def send(self, frame: bytes) -> None:
        self.frames.append(json.loads(frame))

    def pending_bytes(self) -> int:
        return 0

    def close(self, going_away: bool) -> None:
        self.closed_with = going_away

    def alive(self) -> bool:
        return not self.gone


async def test_frames_published_while_joining_wait_for_release():
    bus = EventBus()
    hub = Hub(bus, HubLimits())
    sink = RecordingSink()
    conn = hub.connect("app", "ws", sink)
    hub.join(conn, "room", hold=True)
    await bus.publish(Message(type="chan_out", channel="room", data="live", app_id="app"))
    await asyncio.sleep(0)  # live subscribers get it right after
    assert [f["type"] for f in sink.frames] == ["init"]
    hub.send(conn, '{"type":"ok","data":"room"}')
    hub.release(conn, "room")
    await bus.publish(Message(type="chan_out", channel="room", data="later", app_id="app"))
    await asyncio.sleep(0)  # live subscribers get it right after
    assert [(f["type"], f.get("data")) for f in sink.frames[1:]] == [("ok", "room"), ("chan_out", "live"),
                                                                      ("chan_out", "later")]


def test_sweep_forgets_gone_clients():
    hub = Hub(EventBus(), HubLimits())
    here, gone = RecordingSink(), RecordingSink()
    a, b = hub.connect("app", "sse", here), hub.connect("app", "sse", gone)
    hub.join(a, "room")
    hub.join(b, "room")
    gone.gone = True
    assert hub.sweep() == 1
    assert hub.member_count("app", "room") == 1 and hub.connection(b.id) is None
    assert gone.closed_with is False and hub.connection(a.id) is a
