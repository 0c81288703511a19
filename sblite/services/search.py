"""Full-text search of documents: indexing as a writer, searching as a reader (list permissions)."""

from __future__ import annotations

import re
from typing import Any

from sblite import search
from sblite.errors import BadRequest, NotFound
from sblite.model import Identity
from sblite.permissions import validate_collection_name
from sblite.services.documents import NOT_FOUND, access_scope
from sblite.store.search import SearchStore
from sblite.timeutil import now_text

MAX_RESULTS = 100
MAX_TEXT_LENGTH = 1_000_000  # characters of text indexed for one document
MAX_FIELDS = 32
_FIELD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def no_index(col: str) -> NotFound:
    """The answer to a search of a collection nothing was indexed in: how to index it."""
    return NotFound(f'collection "{col}" has no search index: index its documents with indexDocument(col, id, text) '
                    f'in a function, or index fields on every write with PUT /search/{col} {{"fields": [...]}} (root)')


class SearchService:
    """Index documents' text and search it, with the permissions of the documents themselves."""

    def __init__(self, store: SearchStore) -> None:
        self._store = store

    async def index(self, identity: Identity, col: str, doc_id: Any, text: Any) -> None:
        """Index `text` for one document the identity may write (so no reader can change what others find)."""
        scope = access_scope(identity, _collection(col), write=True)
        if not isinstance(doc_id, str) or not doc_id:
            raise BadRequest("the document id must be a non-empty string")
        if not isinstance(text, str):
            raise BadRequest("the text to index must be a string")
        if len(text) > MAX_TEXT_LENGTH:
            raise BadRequest(f"the text to index is limited to {MAX_TEXT_LENGTH} characters")
        if not await self._store.index(scope, doc_id, text, now_text()):
            raise NotFound(NOT_FOUND)

    async def search(self, identity: Identity, col: Any, keywords: Any, size: Any = None) -> list[dict[str, Any]]:
        """The readable documents matching every word of `keywords`, best first, at most `size` (100)."""
        scope = access_scope(identity, _collection(col), write=False)
        words = search.parse_keywords(keywords)
        if size is None:
            size = MAX_RESULTS
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RESULTS:
            raise BadRequest(f'invalid body: "size" must be a whole number from 1 to {MAX_RESULTS}')
        found = await self._store.search(scope, words, size)
        if found is None:
            raise no_index(scope.collection)
        return found

    async def info(self, identity: Identity, col: Any) -> dict[str, Any]:
        """Root: a collection's index, `{collection, fields, entries}`."""
        name = _collection(col)
        info = await self._store.info(identity.app_id, name)
        if info is None:
            raise no_index(name)
        return {"collection": name, "fields": info.fields, "entries": info.entries}

    async def set_fields(self, identity: Identity, col: Any, body: Any) -> dict[str, Any]:
        """Root: index these fields of every document on each write, those stored now included."""
        name = _collection(col)
        fields = body.get("fields") if isinstance(body, dict) else None
        if (not isinstance(fields, list) or not fields or len(fields) > MAX_FIELDS
                or not all(isinstance(f, str) and _FIELD.fullmatch(f) for f in fields)):
            raise BadRequest(f'invalid body: expected {{"fields": ["name", ...]}}, 1 to {MAX_FIELDS} top-level '
                             "field names of 1 to 64 characters among A-Z, a-z, 0-9, '_' and '-'")
        fields = list(dict.fromkeys(fields))
        indexed = await self._store.set_fields(identity.app_id, name, fields, now_text())
        return {"collection": name, "fields": fields, "entries": indexed}

    async def drop(self, identity: Identity, col: Any) -> None:
        """Root: remove a collection's index (its entries and fields); searches then answer 404."""
        name = _collection(col)
        if not await self._store.drop(identity.app_id, name):
            raise no_index(name)


def _collection(col: Any) -> str:
    if not isinstance(col, str) or not col:
        raise BadRequest('invalid body: "col" must name a collection')
    return validate_collection_name(col)
