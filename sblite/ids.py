"""Identifiers: document and user ids, public keys, secrets and reset codes."""

from __future__ import annotations

import os
import secrets

# StaticBackend's alphabet for generated names: no 0, 1, 8, l, o, I, O.
PK_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ2345679"


def new_id() -> str:
    """A random (version 4) lowercase hyphenated UUID, as StaticBackend returns for documents and users."""
    digits = os.urandom(16).hex()  # the same text as str(uuid.uuid4()), without building a UUID object
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
