"""Password hashing with argon2id. These calls are slow on purpose: run them in an executor."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's recommended argon2id minimum (19 MiB, 2 passes, 1 lane): ~25 ms a hash on a small VPS,
# where argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes) take ~200 ms of a core per login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MIN_PASSWORD_LENGTH = 6


def hash_password(password: str) -> str:
    """Hash a password for storage."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash`."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
