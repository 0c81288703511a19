"""Messages between the server and its function workers: 4-byte length, then JSON."""

from __future__ import annotations

import json
import struct
from typing import IO, Any

HEADER = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    """One framed message."""
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return HEADER.pack(len(body)) + body


def read_blocking(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message from a blocking stream; None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is too large")
    body = stream.read(size)
    if len(body) < size:
        return None
    return json.loads(body)
