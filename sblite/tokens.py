"""Session tokens (signed, expiring) and root tokens (`userId|accountId|userToken`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from collections.abc import Callable

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from sblite.errors import BadRequest

DEV_ROOT_ALIAS = "safe-to-use-in-dev-root-token"
VERIFIED_CACHE_SIZE = 10_000
_EXPIRED = "error validating auth key: your session token has expired"


@dataclass(frozen=True)
class SessionClaim:
    """What a valid session token says: whose it is and which per-user token it was cut from."""

    user_id: str
    user_token: str
    # The account the session acts in when it is not the user's own (an association); None: their own.
    account_id: str | None = None


class SessionTokens:
    """Issues and checks signed session tokens that expire after `ttl_seconds`."""

    def __init__(self, secret_key: str, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        class ClockedSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(secret_key, salt="sblite-session", signer=ClockedSigner)
        self._ttl = ttl_seconds
        self._clock = clock
        # Checking a signature is a large share of a small request's cost: remember good ones.
        self._verified: OrderedDict[str, tuple[SessionClaim, int]] = OrderedDict()

    def issue(self, user_id: str, user_token: str, account_id: str | None = None) -> str:
        """A new session token for this user, acting in `account_id` when given (else their own account)."""
        claim = [user_id, user_token] if account_id is None else [user_id, user_token, account_id]
        return self._serializer.dumps(claim)

    def verify(self, token: str) -> SessionClaim:
        """The claim in `token`; raises BadRequest (StaticBackend answers 400) if invalid or expired."""
        cached = self._verified.get(token)
        if cached is None:
            cached = self._check_signature(token)
            self._verified[token] = cached
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        claim, issued = cached
        if int(self._clock()) - issued > self._ttl:
            self._verified.pop(token, None)
            raise BadRequest(_EXPIRED)
        return claim

    def _check_signature(self, token: str) -> tuple[SessionClaim, int]:
        try:
            value, issued = self._serializer.loads(token, max_age=self._ttl, return_timestamp=True)
        except SignatureExpired:
            raise BadRequest(_EXPIRED) from None
        except BadSignature:
            raise BadRequest(
                "error validating auth key: could not verify your authentication token"
            ) from None
        if not (isinstance(value, list) and len(value) in (2, 3) and all(isinstance(v, str) for v in value)):
            raise BadRequest("error validating auth key: invalid authentication token")
        account_id = value[2] if len(value) == 3 else None
        return SessionClaim(user_id=value[0], user_token=value[1], account_id=account_id), int(issued.timestamp())


@dataclass(frozen=True)
class RootClaim:
    """The three parts of a root token."""

    user_id: str
    account_id: str
    user_token: str


def format_root_token(user_id: str, account_id: str, user_token: str) -> str:
    """The root token of a role-100 user."""
    return f"{user_id}|{account_id}|{user_token}"


def parse_root_token(token: str) -> RootClaim:
    """Split a root token; raises BadRequest unless it has exactly three non-empty parts."""
    parts = token.split("|")
    if len(parts) != 3 or not all(parts):
        raise BadRequest("invalid root token")
    return RootClaim(user_id=parts[0], account_id=parts[1], user_token=parts[2])
