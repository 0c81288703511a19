"""Identifiers: document and user ids, public keys, secrets and reset codes."""

from __future__ import annotations

import os
import secrets
import threading

# StaticBackend's alphabet for generated names: no 0, 1, 8, l, o, I, O.
PK_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ2345679"


class _RandomBytes:
    """os.urandom read 4 KiB at a time, for 256 ids instead of one.

    os.urandom lets go of the GIL around its system call, and getting it back from the
    database threads costs the event loop more than the call: 14% of a create's CPU in the
    harness (docs/performance.md).
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)  # a child must never repeat our bytes

    def take(self, count: int) -> bytes:
        """`count` random bytes, never handed out twice."""
        with self._lock:
            if self._at + count > len(self._buffer):
                self._buffer, self._at = os.urandom(self._size), 0
            chunk = self._buffer[self._at:self._at + count]
            self._at += count
            return chunk

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0


_random = _RandomBytes()


def new_id() -> str:
    """A random (version 4) lowercase hyphenated UUID, as StaticBackend returns for documents and users."""
    digits = _random.take(16).hex()  # uuid.uuid4() builds the same text about twice as slowly
    variant = "89ab"[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


def new_public_key() -> str:
    """A 12-character public key starting with 'a', like StaticBackend's database names."""
    return "a" + "".join(secrets.choice(PK_ALPHABET) for _ in range(11))


def new_password(length: int = 16) -> str:
    """A random password from the same unambiguous alphabet."""
    return "".join(secrets.choice(PK_ALPHABET) for _ in range(length))


def new_secret() -> str:
    """A random secret key for signing session tokens."""
    return secrets.token_urlsafe(48)


def new_code(length: int = 10) -> str:
    """A random password-reset code."""
    return "".join(secrets.choice(PK_ALPHABET) for _ in range(length))
