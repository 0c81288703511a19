"""Fixtures: a real app on a real listening socket, backed by a SQLite file in a temp dir."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from sblite.app import create_app
from sblite.config import Config
from sblite.store import Database
from tests.support import DEV_PK, DEV_ROOT_TOKEN

_emails = itertools.count(1)


@pytest.fixture
async def db(tmp_path):
    """A real Database on a file in the test's directory, with two reader threads."""
    database = Database(tmp_path / "store.db", read_connections=2)
    await database.open()
    yield database
    await database.close()


@dataclass
class Api:
    """A thin caller of the wire API with StaticBackend's headers."""

    client: TestClient
    pk: str = DEV_PK

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        """Headers the JS client sends."""
        headers = {"SB-PUBLIC-KEY": self.pk, "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return {**headers, **extra}

    async def call(self, method: str, path: str, token: str | None = None, json: Any = None,
                   data: bytes | str | None = None, headers: dict | None = None) -> tuple[int, Any]:
        """Send a request; returns (status, decoded JSON or the error text)."""
        all_headers = {**self.headers(token), **(headers or {})}
        resp = await self.client.request(method, path, json=json, data=data, headers=all_headers)
        if resp.status > 299:
            return resp.status, await resp.text()
        return resp.status, await resp.json()

    async def register(self, email: str | None = None, password: str = "secret-pw") -> str:
        """Register a fresh user; returns its session token."""
        email = email or f"user{next(_emails)}@example.com"
        status, token = await self.call("POST", "/register", json={"email": email, "password": password})
        assert status == 200, token
        return token

    async def root(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        """Call a root route with the dev root alias."""
        return await self.call(method, path, token=DEV_ROOT_TOKEN, json=json)


def make_config(tmp_path, **overrides: Any) -> Config:
    """A dev-mode config on a fresh database file."""
    return Config(db=str(tmp_path / "test.db"), **overrides)


@pytest.fixture
async def api(aiohttp_client, tmp_path) -> Api:
    """An Api over a freshly started app."""
    client = await aiohttp_client(create_app(make_config(tmp_path)))
    return Api(client)


@pytest.fixture
async def clients():
    """Opens realtime clients for a test (`await clients(api, "ws", token)`) and closes them after it."""
    from tests.function_helpers import open_client  # it builds on Api, defined here

    opened = []

    async def make(api: Api, transport: str = "sse", token: str | None = None):
        client = await open_client(api, transport, token)
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.close()
