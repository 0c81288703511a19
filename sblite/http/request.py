"""Reading a request: the app its public key names, the caller's identity, the JSON body."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDictProxy

from sblite.errors import BadRequest, Unauthorized
from sblite.http.keys import ACCOUNTS
from sblite.jsonutil import TooDeep, loads
from sblite.model import App, Identity
from sblite.services.accounts import anonymous
from sblite.services.documents import DEFAULT_PAGE_SIZE, Paging

def public_key(request: web.Request) -> str | None:
    """The public key from the SB-PUBLIC-KEY header, the `sbpk` query parameter or the `pk` cookie."""
    return request.headers.get("SB-PUBLIC-KEY") or request.query.get("sbpk") or request.cookies.get("pk")


async def request_app(request: web.Request) -> App:
    """The app this request is for; 401 without a public key."""
    pk = public_key(request)
    if not pk:
        raise Unauthorized("invalid StaticBackend public key")
    return await request.app[ACCOUNTS].app_for_pk(pk)


def bearer_token(request: web.Request) -> str | None:
    """The Bearer token of the Authorization header; None when the header is missing."""
    header = request.headers.get("Authorization")
    if header is None or header == "":
        return None
    if not header.startswith("Bearer "):
        raise BadRequest(
            f"invalid authorization HTTP header, should be: Bearer your-token, but we got {header}")
    return header[len("Bearer "):].strip()


async def request_user(request: web.Request, *, anonymous_ok: bool = False) -> Identity:
    """The authenticated caller; without a token, the anonymous caller if `anonymous_ok`."""
    app = await request_app(request)
    token = bearer_token(request)
    if not token:
        if anonymous_ok:
            return anonymous(app)
        raise Unauthorized("missing authorization HTTP header")
    return await request.app[ACCOUNTS].identify(app, token)


async def request_root(request: web.Request) -> Identity:
    """The root caller (role 100), by root token in the Authorization header or `token` cookie."""
    token = bearer_token(request) or request.cookies.get("token")
    if not token:
        raise Unauthorized("missing authorization HTTP header")
    return await request.app[ACCOUNTS].identify_root(token, public_key(request))


async def json_body(request: web.Request, *, required: bool = True) -> Any:
    """The decoded JSON body; BadRequest when it is missing (if required) or malformed."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadRequest("invalid body: a JSON body is required")
        return None
    try:
        return loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None


async def form_body(request: web.Request) -> MultiDictProxy[Any]:
    """The fields of a urlencoded or multipart body; BadRequest when it is malformed."""
    try:
        return await request.post()
    except HttpProcessingError as exc:  # a multipart part's headers do not parse
        raise BadRequest(f"invalid form body: {exc.message}") from None
    # No boundary, a part without a name, an unknown charset or transfer encoding, bytes not in the charset.
    except (ValueError, LookupError, RuntimeError) as exc:
        raise BadRequest(f"invalid form body: {exc}") from None


def paging(request: web.Request) -> Paging:
    """Paging from `page`, `size`, `desc` and `sort`; unparsable numbers fall back to defaults."""
    return Paging(
        page=_int(request.query.get("page"), 1),
        size=_int(request.query.get("size"), DEFAULT_PAGE_SIZE),
        descending=bool(request.query.get("desc")),
        sort=request.query.get("sort") or None,
    )


def _int(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


def decode_filter_param(raw: str | None) -> Any:
    """Decode the base64 JSON of a bulk delete's `x` parameter, leniently (spaces, no padding)."""
    if not raw:
        raise BadRequest("no filters supplied via the &x= query parameter")
    text = raw.strip().replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text, altchars=b"-_" if "-" in text or "_" in text else None,
                                   validate=False)
        return loads(decoded)
    except TooDeep as exc:
        raise BadRequest(f"invalid &x= parameter: {exc}") from None
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("invalid &x= parameter: expected base64 of a JSON array of clauses") from None
