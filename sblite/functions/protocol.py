"""Messages between the server and its function workers.

A frame is a 4-byte length, a 4-byte length of the head, the head (a small JSON object:
the operation and its fields) and the payload: opaque UTF-8 text, usually JSON that one
side made and the other parses (a run's input, a host call's arguments, a result). Keeping
payloads out of the head means they are never escaped into, or parsed out of, a second
JSON document on their way through.
"""

from __future__ import annotations

import json
import struct
from typing import IO, Any

from sblite.jsonutil import dumps_stored

HEADER = struct.Struct("!II")  # frame size (after these 4 bytes), head size
MAX_MESSAGE = 64 * 1024 * 1024
_HEAD_DECODER = json.JSONDecoder()  # made once: json.loads with options builds one per call

Frame = tuple[dict[str, Any], bytes]


def encode(head: dict[str, Any], payload: str | bytes = b"") -> bytes:
    """One framed message."""
    head_bytes = dumps_stored(head).encode()
    body = payload.encode() if isinstance(payload, str) else payload
    return HEADER.pack(len(head_bytes) + len(body) + 4, len(head_bytes)) + head_bytes + body


def frame_size(header: bytes) -> tuple[int, int]:
    """(bytes left to read after the header, head size); ValueError for a bad header."""
    size, head_size = HEADER.unpack(header)
    if size > MAX_MESSAGE or head_size > size - 4:
        raise ValueError(f"bad frame: {size} bytes with a head of {head_size}")
    return size - 4, head_size


def decode(rest: bytes, head_size: int) -> Frame:
    """The head and payload of a frame's bytes after its header."""
    return _HEAD_DECODER.decode(rest[:head_size].decode()), rest[head_size:]


def read_blocking(stream: IO[bytes]) -> Frame | None:
    """The next message from a blocking stream; None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    left, head_size = frame_size(header)
    rest = stream.read(left)
    if len(rest) < left:
        return None
    return decode(rest, head_size)
