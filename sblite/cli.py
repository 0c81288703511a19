"""The `sblite` command line."""

from __future__ import annotations

import argparse
import asyncio
import gc
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn
from collections.abc import Callable

from aiohttp import web

from sblite import __version__, manage, task_cli
from sblite import index_cli
from sblite.app import create_app, max_function_workers
from sblite.config import Config, ConfigError, load_config
from sblite.files import files_dir_for
from sblite.http.connections import (
    ConnectionGuard, ConnectionLimits, default_max_connections, open_file_limit,
)
from sblite.http.access_log import LOGGER as ACCESS_LOGGER, AccessLogger
from sblite.logs import configure_logging
from sblite.services.files import copy_files
from sblite.store import Database
from sblite.store.files import FileStore
from sblite.http.keys import DATABASE
from sblite.store.upgrade import copy_name, plan

log = logging.getLogger("sblite")
# Collect cyclic garbage after 20,000 new container objects instead of 700 (older generations
# as rarely): almost all of a request's objects are freed by reference counting anyway. Measured
# (6 interleaved pairs of runs) as ~8% less server CPU per document create.
GC_THRESHOLDS = (20_000, 50, 100)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sblite command."""
    parser = argparse.ArgumentParser(prog="sblite", description="A self-hosted backend in one process.")
    parser.add_argument("--version", action="version", version=f"sblite {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8099)")
    serve.add_argument("--db", help="SQLite database file (default ./sblite.db)")
    serve.add_argument("--config", help="TOML config file (see config.example.toml)")
    serve.add_argument("--prod", action="store_true", default=None, help="production mode")
    backup = commands.add_parser("backup", help="copy the database and its files, safely while the server runs")
    backup.add_argument("target", help="the database file to write (must not exist); files go to TARGET-files/")
    backup.add_argument("--db", help="the database file (default SBLITE_DB, else the config's db, else ./sblite.db)")
    backup.add_argument("--files", help="its files directory (default storage_dir, else beside the database)")
    backup.add_argument("--config", help="the server's TOML config file, for db and storage_dir")
    backup.set_defaults(handler=run_backup)
    migrate = commands.add_parser("migrate", help="the database's schema version and the migrations a start would run")
    migrate.add_argument("--check", action="store_true", required=True,
                         help="only report (exit 0: up to date, 1: migrations pending); changes nothing")
    migrate.add_argument("--db", help="the database file (default SBLITE_DB, else the config's db, else ./sblite.db)")
    migrate.add_argument("--config", help="the server's TOML config file, for db")
    migrate.set_defaults(handler=run_migrate_check)
    manage.register(commands)
    task_cli.register(commands)
    index_cli.register(commands)
    return parser


def run_backup(args: argparse.Namespace) -> None:
    """Copy the database with SQLite's online backup API, then every file its copy lists.

    `out.db` gets its files in `out-files/` (where `sblite serve --db out.db` looks by default).
    A file deleted while the copy runs loses its row in the copy too, so every row has its file.
    """
    try:
        config = load_config(args.config, os.environ, {"db": args.db, "storage_dir": args.files})
    except ConfigError as exc:
        raise manage.CommandError(str(exc)) from None
    source = Path(config.db)
    source_files = files_dir_for(config.db, config.storage_dir)
    target = Path(args.target)
    target_files = files_dir_for(str(target))
    if not source.exists():
        raise manage.CommandError(f"no database at {source}")
    for path in (target, target_files):
        if path.exists():
            raise manage.CommandError(f"{path} exists already: choose a new file")

    async def copy() -> tuple[int, list[str]]:
        database = Database(source, read_connections=1)
        await database.open()
        try:
            await database.backup_to(target)
        finally:
            await database.close()
        copied = Database(target, read_connections=1)
        await copied.open()
        try:
            return await copy_files(FileStore(copied), source_files, target_files)
        finally:
            await copied.close()

    count, gone = asyncio.run(copy())
    print(f"backed up {source} to {target} and {count} file(s) from {source_files} to {target_files}"
          + (f" ({len(gone)} deleted during the backup left out)" if gone else ""))


def run_migrate_check(args: argparse.Namespace) -> None:
    """Print the file's schema version and the migrations that would run; exit 1 if any would."""
    try:
        db = load_config(args.config, os.environ, {"db": args.db}).db
    except ConfigError as exc:
        _fail(str(exc))
    try:
        found = plan(db)
    except FileNotFoundError:
        _fail(f"no database at {db} (a start would create a new one)")
    if found.version > found.current:
        _fail(f"{db} has schema version {found.version}, newer than this sblite's ({found.current}): "
              "run the sblite that made it")
    print(f"{db}: schema version {found.version}, this sblite's is {found.current}")
    if not found.pending:
        print("up to date: no migration would run")
        return
    print(f"{len(found.pending)} migration(s) would run at the next start"
          + (f", after a copy to {copy_name(db, found.version)}:" if found.version else ":"))
    for number, description in found.pending:
        print(f"  {number}: {description}")
    sys.exit(1)


def _fail(message: str) -> NoReturn:
    """Exit with code 2 (1 means "migrations pending" for `migrate --check`)."""
    print(f"sblite: {message}", file=sys.stderr)
    sys.exit(2)


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    """Run the command line."""
    args = build_parser().parse_args(argv)
    if args.command != "serve":
        try:
            args.handler(args)
        except manage.CommandError as exc:
            sys.exit(f"sblite: {exc}")
        return
    try:
        config = load_config(args.config, os.environ, {
            "host": args.host, "port": args.port, "db": args.db, "prod": args.prod,
        })
    except ConfigError as exc:
        sys.exit(f"sblite: {exc}")
    configure_logging(config.log_level, config.log_format)
    if not config.prod and not is_loopback(config.host):
        sys.exit(f"sblite: dev mode only listens on a loopback address (127.0.0.1, ::1, localhost), "
                 f"not {config.host}. Use --prod (or SBLITE_PROD=1) to serve on other addresses.")
    with asyncio.Runner(loop_factory=loop_factory(config.event_loop)) as runner:
        runner.run(serve(config))


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: uvloop's when chosen or (auto) installed; None = asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            sys.exit("sblite: event_loop is uvloop but uvloop is not installed (pip install uvloop)")
        return None
    return uvloop.new_event_loop


async def serve(config: Config) -> None:
    """Serve until SIGINT or SIGTERM, then close connections and the database cleanly."""
    app = create_app(config, announce=True)
    guard = ConnectionGuard(connection_limits(config))
    guard.install(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=5,
                           access_log=ACCESS_LOGGER if config.access_log else None, access_log_class=AccessLogger,
                           keepalive_timeout=config.keepalive_timeout_seconds)
    await runner.setup()
    gc.freeze()  # what start-up made lives as long as the server: never traverse it again
    gc.set_threshold(*GC_THRESHOLDS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    listener: asyncio.Server | None = None
    try:
        assert runner.server is not None  # set up above
        listener = await guard.listen(runner.server, config.host, config.port)
        await app[DATABASE].started()  # removes the copies made before the last upgrade, now that it started
        mode = "prod" if config.prod else "dev"
        log.info("accepting at most %d connections (max_connections; open-file limit %d)",
                 guard.limits.max_connections, open_file_limit())
        print(f"server started at: http://{_url_host(config.host)}:{config.port} ({mode} mode, "
              f"database {config.db})", flush=True)
        print("press CTRL+C to quit and close server", flush=True)
        await stop.wait()
        print("shutting down", flush=True)
    finally:
        if listener is not None:
            listener.close()
        await runner.cleanup()


def connection_limits(config: Config) -> ConnectionLimits:
    """The header deadline and the connection cap; a cap of 0 is derived from the open-file limit."""
    cap = config.max_connections or default_max_connections(
        open_file_limit(), max_function_workers(config), config.read_connections + 3)  # + writer, checkpointer, loop
    return ConnectionLimits(header_timeout=config.header_timeout_seconds, max_connections=cap)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
