"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

from sblite.config import Config
from sblite.functions.dispatch import Dispatcher
from sblite.functions.service import FunctionService
from sblite.scheduler.loop import Clock
from sblite.scheduler.service import TaskService
from sblite.services.account_members import AccountMembers
from sblite.services.accounts import AccountService
from sblite.services.bus import EventBus
from sblite.services.channels import ChannelService
from sblite.services.documents import DocumentService
from sblite.services.hub import Hub
from sblite.services.magic import MagicLinks
from sblite.services.mail import MailService
from sblite.services.publish_limit import PublishLimiter
from sblite.services.realtime import RealtimeService
from sblite.services.search import SearchService
from sblite.services.user_admin import UserAdmin
from sblite.store import Database
from sblite.throttle import AuthThrottle

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
BUS = web.AppKey("bus", EventBus)
ACCOUNTS = web.AppKey("accounts", AccountService)
MEMBERS = web.AppKey("members", AccountMembers)
USER_ADMIN = web.AppKey("user_admin", UserAdmin)
DOCUMENTS = web.AppKey("documents", DocumentService)
HUB = web.AppKey("hub", Hub)
CHANNELS = web.AppKey("channels", ChannelService)
REALTIME = web.AppKey("realtime", RealtimeService)
FUNCTIONS = web.AppKey("functions", FunctionService)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
AUTH_THROTTLE = web.AppKey("auth_throttle", AuthThrottle)
PUBLISH_LIMITER = web.AppKey("publish_limiter", PublishLimiter)
TASKS = web.AppKey("tasks", TaskService)
TASK_CLOCK = web.AppKey("task_clock", Clock)
MAIL = web.AppKey("mail", MailService)
MAGIC = web.AppKey("magic", MagicLinks)
SEARCH = web.AppKey("search", SearchService)
