"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from sblite.config import Config
from sblite.services.accounts import AccountService
from sblite.services.bus import EventBus
from sblite.services.documents import DocumentService
from sblite.store import Database

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
BUS = web.AppKey("bus", EventBus)
ACCOUNTS = web.AppKey("accounts", AccountService)
DOCUMENTS = web.AppKey("documents", DocumentService)
