"""The application factory: wires the store, the services and the HTTP routes together."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from sblite.config import Config
from sblite.functions.dispatch import Dispatcher
from sblite.functions.host import HostApi
from sblite.functions.pool import WorkerPool
from sblite.functions.service import FunctionLimits, FunctionService
from sblite.http import auth_routes, db_routes, function_routes, realtime_routes, system_routes, task_routes
from sblite.http import dashboard_routes, live_channel_routes, overview_routes, user_admin_routes
from sblite.http import cache_routes, form_routes, render_routes, unsupported_routes
from sblite.http.fetcher import Fetcher
from sblite.http import storage_routes
from sblite.http import slow_query_routes
from sblite.http import magic_routes, mail_routes
from sblite.http import search_routes
from sblite.services.search import SearchService
from sblite.store.search import SearchStore
from sblite.http.keys import (
    ACCOUNTS, AUTH_THROTTLE, BUS, CHANNELS, CONFIG, DATABASE, DISPATCHER, DOCUMENTS, FUNCTIONS, HUB, MAGIC, MAIL,
    MEMBERS, PUBLISH_LIMITER, REALTIME, SEARCH, TASK_CLOCK, TASKS, USER_ADMIN,
)
from sblite.http.middleware import error_middleware
from sblite.http.client import client_middleware
from sblite.proxies import TrustedProxies, parse_networks
from sblite.http.policy import on_response_prepare, policy_middleware
from sblite.http.system_routes import credentials_banner
from sblite.ids import new_secret
from sblite.services.account_members import AccountMembers
from sblite.services.accounts import AccountService
from sblite.services.memberships import Memberships
from sblite.services.user_admin import UserAdmin
from sblite.services.users import UserDirectory
from sblite.services.bus import EventBus
from sblite.services.channels import ChannelService
from sblite.services.documents import DocumentService
from sblite.services.files import FileService
from sblite.services.hub import Hub, HubLimits
from sblite.services.magic import MagicLinks
from sblite.services.mail import MailService, SmtpSettings
from sblite.store.mail import MailStore
from sblite.services.publish_limit import PublishLimiter
from sblite.services.realtime import RealtimeService
from sblite.model import Identity
from sblite.scheduler.definition import Limits as TaskLimits
from sblite.scheduler.loop import Clock, SystemClock
from sblite.scheduler.service import TaskService
from sblite.services.accounts import ANONYMOUS_ID
from sblite.store import AccountStore, ChannelStore, Database, DocumentStore, FunctionStore, TaskStore
from sblite.files import files_dir_for
from sblite.store.files import FileStore
from sblite.throttle import AuthThrottle, ThrottleLimits
from sblite.tokens import SessionTokens

log = logging.getLogger(__name__)
SWEEP_SECONDS = 1.0


def create_app(config: Config, *, announce: bool = False, clock: Clock | None = None) -> web.Application:
    """A ready-to-run aiohttp application for `config`; `announce` prints the credentials banner.

    `clock` is the scheduler's (tests move it instead of waiting); the machine's by default.
    """
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[client_middleware(TrustedProxies(parse_networks(config.trusted_proxies))),
                                       error_middleware, policy_middleware])
    app.on_response_prepare.append(on_response_prepare)
    app[CONFIG] = config
    app[TASK_CLOCK] = clock or SystemClock()
    app[BUS] = EventBus(lambda write: app[DATABASE].write(write))  # the database opens at startup
    app[HUB] = Hub(app[BUS], HubLimits(
        max_channels=config.realtime_max_channels,
        max_connections_per_user=config.realtime_max_connections_per_user,
        max_messages_per_second=config.realtime_max_messages_per_second,
        max_outgoing_bytes=config.realtime_max_outgoing_bytes))
    app[AUTH_THROTTLE] = auth_throttle(config)
    app[PUBLISH_LIMITER] = PublishLimiter(config.publish_limit_per_second, config.publish_limit_burst)
    app.cleanup_ctx.append(_storage_and_services(announce))
    app.cleanup_ctx.append(_files)
    app.cleanup_ctx.append(_mail)
    app.cleanup_ctx.append(_functions)
    app.cleanup_ctx.append(_sweep_gone_connections)
    app.on_shutdown.append(_close_realtime_connections)
    for table in (system_routes.routes, auth_routes.routes, db_routes.routes, realtime_routes.routes,
                  function_routes.routes, task_routes.routes):
        table.register(app)
    overview_routes.routes.register(app)
    live_channel_routes.routes.register(app)
    user_admin_routes.routes.register(app)
    search_routes.routes.register(app)
    storage_routes.routes.register(app)
    mail_routes.routes.register(app)
    magic_routes.routes.register(app)
    form_routes.setup(app)
    cache_routes.setup(app)
    unsupported_routes.routes.register(app)
    render_routes.setup(app)
    slow_query_routes.setup(app)
    dashboard_routes.setup(app, config)
    return app


def function_limits(config: Config) -> FunctionLimits:
    """Per-run limits from the config."""
    return FunctionLimits(
        timeout_seconds=config.functions_timeout_seconds, memory_bytes=config.functions_memory_mb * 1024 * 1024,
        stack_bytes=config.functions_stack_kb * 1024, host_calls=config.functions_max_host_calls,
        io_bytes=config.functions_max_io_bytes, log_lines=config.functions_max_log_lines,
        log_line_bytes=config.functions_max_log_line_bytes, history=config.functions_history,
        web_wait_seconds=config.functions_web_wait_seconds)


def auth_throttle(config: Config, clock: Callable[[], float] = time.monotonic) -> AuthThrottle:
    """The login, reset and register attempt limits from the config."""
    return AuthThrottle(ThrottleLimits(
        address_failures=config.auth_throttle_address_failures,
        address_window_seconds=config.auth_throttle_address_window_seconds,
        account_failures=config.auth_throttle_account_failures,
        account_window_seconds=config.auth_throttle_account_window_seconds,
        account_total_failures=config.auth_throttle_account_total_failures,
        register_attempts=config.auth_throttle_register_attempts,
        max_keys=config.auth_throttle_max_keys), clock=clock)


def max_function_workers(config: Config) -> int:
    """How many function worker processes may run at once."""
    # A worker mostly waits while the server runs its host calls: many more workers than cores
    # keep enough runs in flight (the former functions benchmark measured 4 → 12 workers on 2 cores as
    # 1.6x the invocations/s). Two start on first use, the others only while all are busy.
    return config.functions_workers or max(8, 6 * (os.cpu_count() or 2))


async def _functions(app: web.Application) -> AsyncIterator[None]:
    """The worker pool, the function service, the dispatcher of queued runs and the task scheduler."""
    config = app[CONFIG]
    pool = WorkerPool(max_function_workers(config))
    fetcher = Fetcher(allow_private=config.functions_fetch_allow_private)
    store = FunctionStore(app[DATABASE])
    host = HostApi(app[DOCUMENTS], app[BUS], store, fetcher, config.functions_max_io_bytes,
                   limiter=app[PUBLISH_LIMITER],
                   scheduling=_Scheduling(app),
                   mail=app[MAIL],
                   search=app[SEARCH],
                   )
    functions = FunctionService(store, pool, host, function_limits(config))
    await functions.load()
    app[FUNCTIONS] = functions
    dispatcher = Dispatcher(functions, store, app[BUS], config.functions_max_attempts, _anonymous,
                            max_running=config.functions_max_running)
    app[DISPATCHER] = dispatcher
    tasks = TaskService(TaskStore(app[DATABASE]), app[BUS], dispatcher, fetcher, clock=app[TASK_CLOCK],
                        limits=TaskLimits(keep_runs=config.tasks_history, keep_days=config.tasks_history_days,
                                          meta_bytes=config.functions_max_io_bytes),
                        io_limit=config.functions_max_io_bytes, catchup_all_limit=config.tasks_catchup_all_limit)
    dispatcher.on_settled(tasks.job_settled)  # before the queue resumes: no outcome goes unheard
    app[TASKS] = tasks
    await tasks.load()  # settles the runs a previous process left under way
    await dispatcher.resume()
    tasks.start()
    try:
        yield
    finally:
        await tasks.close()
        await dispatcher.close()
        await functions.flush()
        await pool.close()
        await fetcher.close()


class _Scheduling:
    """The functions' schedule() and runLater(), handed to the scheduler (made after the host API)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    async def schedule_once(self, app_id: str, identity: Identity, *, kind: str, value: str,
                            meta: dict[str, Any], when: float | str) -> dict[str, Any]:
        """TaskService.schedule_once."""
        return await self._app[TASKS].schedule_once(app_id, identity, kind=kind, value=value, meta=meta, when=when)


async def _mail(app: web.Application) -> AsyncIterator[None]:
    """The outbox and its delivery (resumes the mail left queued), and magic-link sign-in on top of it."""
    config = app[CONFIG]
    smtp = SmtpSettings(host=config.smtp_host, port=config.smtp_port, user=config.smtp_user,
                        password=config.smtp_password, security=config.smtp_security, ca_file=config.smtp_ca_file,
                        timeout=config.smtp_timeout_seconds) if config.smtp_host else None
    store = MailStore(app[DATABASE])
    mail = MailService(store, smtp, default_from=config.mail_from, max_attempts=config.mail_max_attempts,
                       keep_sent=config.mail_keep_sent)
    app[MAIL] = mail
    app[MAGIC] = MagicLinks(app[ACCOUNTS], store, mail)
    mail.start()
    try:
        yield
    finally:
        await mail.close()


async def _files(app: web.Application) -> AsyncIterator[None]:
    """Stored files: the directory beside the database (or storage_dir) and their rows."""
    config = app[CONFIG]
    files = FileService(FileStore(app[DATABASE]), files_dir_for(config.db, config.storage_dir),
                        max_upload_bytes=config.storage_max_upload_mb * 1024 * 1024,
                        public_default=config.storage_public_default, max_page_size=config.max_page_size)
    await files.open()
    app[storage_routes.FILES] = files
    yield


def _anonymous(app_id: str) -> Identity:
    return Identity(app_id=app_id, account_id=ANONYMOUS_ID, user_id=ANONYMOUS_ID, email="", role=0)


async def _sweep_gone_connections(app: web.Application) -> AsyncIterator[None]:
    """Every second, forget realtime clients that went away (an idle SSE stream would not notice)."""
    async def sweep() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            app[HUB].sweep()

    task = asyncio.ensure_future(sweep())
    yield
    task.cancel()


async def _close_realtime_connections(app: web.Application) -> None:
    """Shutdown: end every SSE stream and close every WebSocket with 1001 (going away)."""
    app[HUB].close_all(going_away=True)


def _storage_and_services(announce: bool) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        database = Database(config.db, read_connections=config.read_connections)
        await database.open()
        app[DATABASE] = database
        try:
            account_store = AccountStore(database)
            secret = config.secret_key or await account_store.ensure_setting("secret_key", new_secret())
            tokens = SessionTokens(secret, config.session_ttl_seconds)
            accounts = _account_services(app, account_store, tokens)
            documents = DocumentStore(database)
            for collection, field in await documents.indexes.rebuild_older():
                log.info("rebuilt the index on %s of %s for this version's queries", field, collection)
            app[DOCUMENTS] = DocumentService(documents, app[BUS], max_page_size=config.max_page_size)
            app[SEARCH] = SearchService(SearchStore(database))
            channels = ChannelService(ChannelStore(database))
            await channels.load([a.id for a in await account_store.apps()])
            app[CHANNELS] = channels
            app[HUB].on_record(channels.record)
            app[REALTIME] = RealtimeService(app[HUB], accounts, channels, app[BUS], app[AUTH_THROTTLE],
                                            app[PUBLISH_LIMITER])
            await _bootstrap(accounts, config, announce)
            yield
            await channels.flush()
        finally:
            await database.close()

    return context


def _account_services(app: web.Application, store: AccountStore, tokens: SessionTokens) -> AccountService:
    """Accounts, account members and root's user admin, sharing one user cache and one role cache."""
    config = app[CONFIG]
    users, memberships = UserDirectory(store, app[BUS]), Memberships(store.memberships)
    accounts = AccountService(store, users, memberships, tokens, dev_mode=not config.prod,
                              reset_code_ttl=config.reset_code_ttl_seconds)
    app[ACCOUNTS] = accounts
    app[MEMBERS] = AccountMembers(store, users, memberships, tokens)
    app[USER_ADMIN] = UserAdmin(store, accounts, users, memberships, tokens)
    return accounts


async def _bootstrap(accounts: AccountService, config: Config, announce: bool) -> None:
    """Dev mode: make sure the dev app exists. Prod mode: create a first app on first start."""
    if not config.prod:
        dev = await accounts.ensure_dev_app()
        if announce:
            print(credentials_banner(dev, dev_alias=True), flush=True)
        return
    first = await accounts.ensure_first_app(config.admin_email)
    if first is not None and announce:
        print(credentials_banner(first, dev_alias=False)
              + "These credentials are shown only once: keep them somewhere safe.\n", flush=True)
