"""Storage layer: the only code that talks to SQLite."""

from sblite.store.accounts import AccountStore, Duplicate, UserRecord
from sblite.store.channels import ChannelStore
from sblite.store.database import Database, DatabaseClosed
from sblite.store.functions import FunctionStore
from sblite.store.documents import DocumentStore, Page
from sblite.store.tasks import TaskStore

__all__ = [
    "AccountStore",
    "ChannelStore",
    "Database",
    "DatabaseClosed",
    "DocumentStore",
    "Duplicate",
    "FunctionStore",
    "Page",
    "TaskStore",
    "UserRecord",
]
