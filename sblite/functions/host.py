"""The host API a function calls (`create`, `publish`, `fetch`, ...), run by the server.

Database calls go through the same DocumentService as the HTTP API, as the identity that
triggered the run: same permissions, same db_* events. Messages count against that
identity's publish limit, like its own chan_in. `schedule()` and `runLater()` create one-off
tasks through the scheduler (`Scheduling`). Every call answers `{ok, content}`; content is
an error string when ok is false.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sblite.channels import check_publishable
from sblite.errors import ApiError, BadRequest
from sblite.jsonutil import dumps, dumps_stored, loads
from sblite.model import Identity, Message
from sblite.services.bus import EventBus
from sblite.services.documents import DocumentService, Paging
from sblite.services.publish_limit import PublishLimiter
from sblite.store import FunctionStore

log = logging.getLogger(__name__)

# fetch(url, options, limit_bytes) → {status, body, headers}; given by the wiring (it needs HTTP).
Fetcher = Callable[[str, dict[str, Any], int], Awaitable[dict[str, Any]]]
MAX_CACHE_KEY = 256
MAX_DEPTH = 8  # functions triggering functions: how deep a chain may go
MAX_TYPE_LENGTH = 64


class Scheduling(Protocol):
    """Creates one-off tasks durably (the scheduler's TaskService)."""

    async def schedule_once(self, app_id: str, identity: Identity, *, kind: str, value: str,
                            meta: dict[str, Any], when: float | str) -> dict[str, Any]:
        """A one-off task of `kind` ("message" or "function") due at `when`; its task JSON, BadRequest on bad input."""


class Searching(Protocol):
    """Full-text search of documents (the search service); BadRequest and NotFound on bad input."""

    async def index(self, identity: Identity, col: str, doc_id: Any, text: Any) -> None:
        """Index `text` for one document `identity` may write."""

    async def search(self, identity: Identity, col: Any, keywords: Any, size: Any = None) -> list[dict[str, Any]]:
        """The documents matching `keywords` that `identity` may read, best first."""


class Mailing(Protocol):
    """Durable outgoing mail (the mail service); owned by the mail work."""

    async def send(self, app_id: str, mail: dict[str, Any], origin: str) -> str:
        """Queue one message; its outbox id."""


@dataclass(frozen=True)
class RunContext:
    """Who a run acts as and where its messages come from."""

    app_id: str
    identity: Identity
    function_id: str
    depth: int = 0  # the depth of the message that triggered the run

    @property
    def next_depth(self) -> int:
        """The depth of what the run publishes or writes: one step deeper."""
        return self.depth + 1


class HostApi:
    """Implements every host function for one app's runs."""

    def __init__(self, documents: DocumentService, bus: EventBus, store: FunctionStore, fetcher: Fetcher,
                 io_limit: int, *,
                 limiter: PublishLimiter,
                 scheduling: Scheduling,
                 search: Searching | None = None,
                 mail: Mailing | None = None,
                 ) -> None:
        self._documents = documents
        self._bus = bus
        self._store = store
        self._fetcher = fetcher
        self._io_limit = io_limit
        self._limiter = limiter
        self._scheduling = scheduling
        self._search = search
        self._mail = mail
        self._calls: dict[str, Callable[..., Awaitable[Any]]] = {
            "create": self._create, "list": self._list, "getById": self._get, "query": self._query,
            "count": self._count, "update": self._update, "del": self._delete, "publish": self._publish,
            "send": self._send, "fetch": self._fetch, "cacheGet": self._cache_get, "cacheSet": self._cache_set,
            "inc": self._inc, "dec": self._dec, "sendMail": self._send_mail,
            "schedule": self._schedule, "runLater": self._run_later,
            "indexDocument": self._index_document, "search": self._search_documents,
        }

    def handler(self, context: RunContext) -> Callable[[str, str], Awaitable[str]]:
        """The host-call handler for one run."""
        async def handle(name: str, args_json: str) -> str:
            return dumps_stored(await self.call(context, name, args_json))
        return handle

    async def call(self, context: RunContext, name: str, args_json: str) -> dict[str, Any]:
        """Run one host call; never raises."""
        method = self._calls.get(name)
        if method is None:
            return {"ok": False, "content": f"unknown host function {name}"}
        try:
            args = loads(args_json)
            if not isinstance(args, list):
                raise BadRequest("host call arguments must be a list")
            return {"ok": True, "content": await method(context, *args)}
        except TypeError as exc:  # the function's mistake, answered to it (debug: where it was raised)
            log.debug("host function %s: wrong arguments", name, exc_info=exc)
            return {"ok": False, "content": f"{name}: wrong arguments ({exc})"}
        except ApiError as exc:
            return {"ok": False, "content": exc.message}
        except ValueError as exc:
            log.debug("host function %s: bad value", name, exc_info=exc)
            return {"ok": False, "content": f"{name}: {exc}"}
        except Exception:
            log.exception("host function %s failed", name)
            return {"ok": False, "content": f"{name}: internal error"}

    # --- database

    async def _create(self, ctx: RunContext, col: str, doc: Any) -> Any:
        return await self._documents.create(ctx.identity, col, doc, depth=ctx.next_depth)

    async def _list(self, ctx: RunContext, col: str, params: Any = None) -> Any:
        return await self._documents.list_documents(ctx.identity, col, _paging(params))

    async def _get(self, ctx: RunContext, col: str, doc_id: str) -> Any:
        return await self._documents.get(ctx.identity, col, _text(doc_id, "id"))

    async def _query(self, ctx: RunContext, col: str, filters: Any, params: Any = None) -> Any:
        return await self._documents.query(ctx.identity, col, filters, _paging(params))

    async def _count(self, ctx: RunContext, col: str, filters: Any = None) -> Any:
        return await self._documents.count(ctx.identity, col, filters or [])

    async def _update(self, ctx: RunContext, col: str, doc_id: str, doc: Any) -> Any:
        return await self._documents.update(ctx.identity, col, _text(doc_id, "id"), doc, depth=ctx.next_depth)

    async def _delete(self, ctx: RunContext, col: str, doc_id: str) -> Any:
        return await self._documents.delete(ctx.identity, col, _text(doc_id, "id"), depth=ctx.next_depth)

    # --- messages

    async def _publish(self, ctx: RunContext, channel: Any, kind: Any, data: Any = None) -> None:
        channel, kind = _publishable(channel), _message_type(kind)
        self._limiter.admit("function", ctx.identity)
        await self._bus.publish(Message(type=kind, channel=channel, data=_as_text(data), sid=ctx.function_id,
                                        app_id=ctx.app_id, identity=ctx.identity, depth=ctx.next_depth))
        return None

    async def _send(self, ctx: RunContext, kind: Any, data: Any = None, channel: Any = None) -> None:
        return await self._publish(ctx, channel, kind, data)

    # --- one-off tasks

    async def _schedule(self, ctx: RunContext, when: Any, kind: Any, channel: Any, data: Any = None) -> Any:
        """A task that publishes `kind` with `data` on `channel` at `when`, as a message task does."""
        meta = {"channel": _publishable(channel), "data": data}  # published as a string, as publish() does
        return await self._schedule_once(ctx, "message", _message_type(kind), meta, when)

    async def _run_later(self, ctx: RunContext, when: Any, function_name: Any, data: Any = None) -> Any:
        """A task that runs the function `function_name` with `data` at `when`, as a function task does."""
        name = _text(function_name, "the function name")
        return await self._schedule_once(ctx, "function", name, {"data": data}, when)  # handle() gets it as given

    async def _schedule_once(self, ctx: RunContext, kind: str, value: str, meta: dict[str, Any], when: Any) -> Any:
        if isinstance(when, bool) or not isinstance(when, (int, float, str)):
            raise BadRequest("when: give seconds from now (a number) or an RFC 3339 time")
        return await self._scheduling.schedule_once(ctx.app_id, ctx.identity, kind=kind, value=value, meta=meta,
                                                    when=when)

    async def _fetch(self, ctx: RunContext, url: Any, options: Any = None) -> Any:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest("fetch needs an http:// or https:// URL")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("fetch options must be an object {method, headers, body}")
        return await self._fetcher(url, options or {}, self._io_limit)

    # --- cache

    async def _cache_get(self, ctx: RunContext, key: Any) -> str:
        value = await self._store.cache_get(ctx.app_id, _key(key))
        return "" if value is None else value

    async def _cache_set(self, ctx: RunContext, key: Any, value: Any) -> None:
        text = value if isinstance(value, str) else dumps(value)
        if len(text) > self._io_limit:
            raise BadRequest(f"cache values are limited to {self._io_limit} bytes")
        await self._store.cache_set(ctx.app_id, _key(key), text)

    async def _inc(self, ctx: RunContext, key: Any, amount: Any = 1) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise BadRequest("inc and dec need a whole number")
        return await self._store.cache_add(ctx.app_id, _key(key), amount)

    async def _dec(self, ctx: RunContext, key: Any, amount: Any = 1) -> int:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise BadRequest("inc and dec need a whole number")
        return await self._store.cache_add(ctx.app_id, _key(key), -amount)

    # --- full-text search

    async def _index_document(self, ctx: RunContext, col: str, doc_id: Any, text: Any) -> bool:
        """Index `text` (not the id, as StaticBackend does) for a document the run may write."""
        await self._searching().index(ctx.identity, col, doc_id, text)
        return True

    async def _search_documents(self, ctx: RunContext, col: str, keywords: Any) -> Any:
        return await self._searching().search(ctx.identity, col, keywords)

    def _searching(self) -> Searching:
        if self._search is None:
            raise BadRequest("search is not set up on this server")
        return self._search

    # --- mail

    async def _send_mail(self, ctx: RunContext, mail: Any) -> str:
        """Queue `{from, fromName, to, toName, subject, htmlBody, textBody, replyTo}` in the outbox; its id."""
        if self._mail is None:
            raise BadRequest("sendMail: mail is not set up on this server")
        return await self._mail.send(ctx.app_id, mail, f"function:{ctx.function_id}")


def _paging(params: Any) -> Paging:
    if params is None:
        return Paging()
    if not isinstance(params, dict):
        raise BadRequest("list parameters must be an object {page, size, desc}")
    page, size = params.get("page", 1), params.get("size", Paging().size)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (page, size)):
        raise BadRequest("page and size must be whole numbers")
    sort = params.get("sort")
    if sort is not None and not isinstance(sort, str):
        raise BadRequest("sort must be a field name")
    return Paging(page=page, size=size, descending=bool(params.get("desc")), sort=sort)


def _publishable(channel: Any) -> str:
    """A channel a function may publish to (not a database or system channel)."""
    return check_publishable(channel, "functions cannot publish to database channels")


def _message_type(kind: Any) -> str:
    if not isinstance(kind, str) or not kind or len(kind) > MAX_TYPE_LENGTH:
        raise BadRequest(f"the message type must be a non-empty string of at most {MAX_TYPE_LENGTH} characters")
    return kind


def _as_text(data: Any) -> str:
    """Message data is a string: a string as it is, anything else as its JSON."""
    return data if isinstance(data, str) else dumps(data)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} must be a non-empty string")
    return value


def _key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_CACHE_KEY:
        raise BadRequest(f"cache keys are non-empty strings of at most {MAX_CACHE_KEY} characters")
    return key
