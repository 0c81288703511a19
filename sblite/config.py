"""Settings: defaults, overridden by a TOML file, then `SBLITE_*` environment variables, then CLI flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from sblite.proxies import parse_networks

ENV_PREFIX = "SBLITE_"


class ConfigError(ValueError):
    """A setting has a bad value or name."""


@dataclass(frozen=True)
class Setting:
    """One documented setting."""

    name: str
    default: Any
    help: str
    # A whole number's range (every whole-number setting is at least 1 unless it says otherwise)
    minimum: int = 1
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # a text setting's only values


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Address to listen on. Dev mode only accepts loopback addresses."),
    Setting("port", 8099, "TCP port to listen on.", minimum=0, maximum=65535),
    Setting("db", "./sblite.db", "Path of the SQLite database file; it holds everything the server knows."),
    Setting("storage_dir", "",
            "Directory of uploaded files. Empty: beside the database, named after it (./sblite.db: ./sblite-files)."),
    Setting("storage_max_upload_mb", 150, "Largest file /storage/upload accepts, in MiB; larger ones get 413."),
    Setting("storage_url", "",
            "Base URL of the links to stored files (behind a proxy: the public address). Empty: the request's."),
    Setting("storage_public_default", False,
            "Uploads without a public field are readable by anyone with the link (as StaticBackend's); "
            "false: only by their account."),
    Setting("prod", False, "Production mode: random credentials, no dev root alias, any address allowed."),
    Setting("secret_key", "", "Key that signs session tokens. Empty: generated once and kept in the database."),
    Setting("session_ttl_seconds", 7 * 24 * 3600, "How long a session token stays valid."),
    Setting("reset_code_ttl_seconds", 3600, "How long a password-reset code stays valid."),
    Setting("max_body_bytes", 10 * 1024 * 1024, "Largest request body accepted; larger ones get 413."),
    Setting("max_page_size", 1000, "Largest page size for list and query; larger requests are clamped."),
    Setting("read_connections", 4, "Reader threads' SQLite connections (writes use one, short reads the loop's)."),
    Setting("slow_query_ms", 200,
            "Document lists, queries and counts whose reads take at least this many milliseconds are logged (no "
            "values) and counted in /metrics; repeated ones suggest indexes. 0: every query; -1: off.", minimum=-1),
    Setting("auto_index", False, "Create the indexes the slow-query advisor suggests, as they are suggested."),
    Setting("admin_email", "admin@sblite.local", "Email of the admin user created on first start in prod mode."),
    Setting("allow_account_init", False, "Allow /account/init to create new apps in prod mode (always on in dev)."),
    Setting("email_lookup_root_only", False,
            "Answer GET /email (is this email registered?) to root only; recommended in prod."),
    Setting("log_level", "info", "Log level: debug, info, warning or error."),
    Setting("log_format", "text", "Log lines as text or json (one JSON object a line: time, level, logger, message).",
            choices=("text", "json")),
    Setting("access_log", False,
            "Log one line per request at info level (method, path without secrets, status, duration, client)."),
    Setting("trusted_proxies", (),
            "Addresses or CIDR blocks of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed "
            "(the environment variable: comma-separated). Empty: those headers are ignored."),
    Setting("event_loop", "auto",
            "Event loop: auto (uvloop when it is installed, else asyncio's own), uvloop or asyncio.",
            choices=("auto", "uvloop", "asyncio")),
    Setting("auth_throttle_address_failures", 30,
            "Failed sign-in, password-reset and realtime auth attempts one client address may make per address "
            "window."),
    Setting("auth_throttle_address_window_seconds", 300, "Window of the per-address limits, in seconds."),
    Setting("auth_throttle_account_failures", 5,
            "Failed sign-in and password-reset attempts on one account from one address per account window."),
    Setting("auth_throttle_account_window_seconds", 900, "Window of the per-account limits, in seconds."),
    Setting("auth_throttle_account_total_failures", 20,
            "Failed attempts on one account per account window from addresses that never signed in to it."),
    Setting("auth_throttle_register_attempts", 30, "Registrations one client address may attempt per address window."),
    Setting("auth_throttle_max_keys", 50000,
            "Keys each of the five attempt tables remembers (about 300 bytes a key); the least recently seen go "
            "first."),
    Setting("header_timeout_seconds", 10,
            "Seconds a client has to send a request's headers, from connecting or from the first byte of its next "
            "request; slower ones are disconnected."),
    Setting("keepalive_timeout_seconds", 75, "Seconds an idle keep-alive connection stays open between requests."),
    Setting("max_connections", 0,
            "Most open client connections, SSE and WebSocket included; more are closed (503). 0: the open-file limit "
            "minus a reserve for the database, function workers and fetches.", minimum=0),
    Setting("realtime_keepalive_seconds", 15, "Seconds between keepalive comments on idle SSE streams."),
    Setting("realtime_ws_heartbeat_seconds", 30,
            "Seconds between WebSocket pings; a socket that misses a pong is closed."),
    Setting("realtime_max_frame_bytes", 65536, "Largest message a realtime client may send."),
    Setting("realtime_max_channels", 100, "Channels one connection may join."),
    Setting("realtime_max_connections_per_user", 20, "Authenticated realtime connections one user may hold."),
    Setting("realtime_max_messages_per_second", 50, "Messages one connection may send per second (more get an error)."),
    Setting("realtime_max_outgoing_bytes", 1048576,
            "Unsent bytes a connection may fall behind by before it is disconnected."),
    Setting("functions_workers", 0,
            "Most worker processes running functions (two start, more while all are busy); 0 means six per CPU, at "
            "least 8.", minimum=0),
    Setting("functions_timeout_seconds", 5, "Wall time one function run may take before its worker is killed."),
    Setting("functions_web_wait_seconds", 30, "How long a web call waits for a free worker before it is answered 503."),
    Setting("functions_memory_mb", 32, "JavaScript heap of one function run, in MiB."),
    Setting("functions_stack_kb", 1024, "JavaScript stack of one function run, in KiB."),
    Setting("functions_max_host_calls", 1000, "Host calls (create, publish, fetch, ...) one run may make."),
    Setting("functions_max_io_bytes", 1048576, "Largest input, result or fetch body of a run, in bytes."),
    Setting("functions_max_log_lines", 100, "Log lines kept per run."),
    Setting("functions_max_log_line_bytes", 8192, "Longest log line kept, in bytes."),
    Setting("functions_history", 100, "Runs kept per function."),
    Setting("functions_max_attempts", 3, "Attempts for a message-triggered run before it is parked."),
    Setting("functions_max_running", 256, "Message-triggered runs held in memory at once; more wait in the database."),
    Setting("functions_fetch_allow_private", False, "Let fetch() reach loopback, private and link-local addresses."),
    Setting("publish_limit_per_second", 50,
            "Messages one user may publish per second on average (chan_in, /publish-message, publish() and send() "
            "together); more are refused with an error, never dropped silently."),
    Setting("publish_limit_burst", 100,
            "Messages one user may publish at once before publish_limit_per_second applies."),
    Setting("forms_per_minute", 20,
            "Form submissions (POST /postform) one client address may make per minute on average, in bursts of as "
            "many; more get 429."),
    Setting("forms_max_bytes", 65536, "Largest form submission, in bytes; larger ones get 413."),
    Setting("chromium_path", "",
            "Headless Chromium that /extra/htmltox renders with. Empty: chromium, chromium-browser or google-chrome "
            "found on PATH; none: htmltox answers 501."),
    Setting("render_timeout_seconds", 30, "Wall time one /extra/htmltox render may take before Chromium is killed."),
    Setting("tasks_history", 100, "Runs a scheduled task keeps by default (its keep_runs)."),
    Setting("tasks_history_days", 14, "Days a scheduled task keeps its runs by default (its keep_days)."),
    Setting("tasks_catchup_all_limit", 100,
            "Missed instants one catch-up runs at most for a task with catchup = all; older ones are recorded missed."),
    Setting("smtp_host", "", "SMTP server that sends mail. Empty: mail is kept in the outbox (dashboard) instead."),
    Setting("smtp_port", 587, "TCP port of the SMTP server.", maximum=65535),
    Setting("smtp_user", "", "User name to sign in to the SMTP server with. Empty: no sign-in."),
    Setting("smtp_password", "", "Password to sign in to the SMTP server with."),
    Setting("smtp_security", "starttls",
            "How the SMTP connection is encrypted: starttls (upgrade a plain connection), tls (TLS from the start, "
            "usually port 465) or none.", choices=("starttls", "tls", "none")),
    Setting("smtp_ca_file", "",
            "PEM file of the authorities the SMTP server's certificate must chain to. Empty: the system's."),
    Setting("smtp_timeout_seconds", 30, "Seconds one SMTP conversation may take before the attempt fails."),
    Setting("mail_from", "no-reply@sblite.local", "Sender of mail that names none (sendMail, magic links)."),
    Setting("mail_max_attempts", 5, "Attempts to deliver a mail before it is parked (replayable)."),
    Setting("mail_keep_sent", 1000, "Sent mails each app keeps in its outbox; older sent ones are deleted.", minimum=0),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}


@dataclass(frozen=True)
class Config:
    """All settings of one server."""

    host: str = _DEFAULTS["host"]
    port: int = _DEFAULTS["port"]
    db: str = _DEFAULTS["db"]
    storage_dir: str = _DEFAULTS["storage_dir"]
    storage_max_upload_mb: int = _DEFAULTS["storage_max_upload_mb"]
    storage_url: str = _DEFAULTS["storage_url"]
    storage_public_default: bool = _DEFAULTS["storage_public_default"]
    prod: bool = _DEFAULTS["prod"]
    secret_key: str = _DEFAULTS["secret_key"]
    session_ttl_seconds: int = _DEFAULTS["session_ttl_seconds"]
    reset_code_ttl_seconds: int = _DEFAULTS["reset_code_ttl_seconds"]
    max_body_bytes: int = _DEFAULTS["max_body_bytes"]
    max_page_size: int = _DEFAULTS["max_page_size"]
    read_connections: int = _DEFAULTS["read_connections"]
    slow_query_ms: int = _DEFAULTS["slow_query_ms"]
    auto_index: bool = _DEFAULTS["auto_index"]
    admin_email: str = _DEFAULTS["admin_email"]
    allow_account_init: bool = _DEFAULTS["allow_account_init"]
    email_lookup_root_only: bool = _DEFAULTS["email_lookup_root_only"]
    log_level: str = _DEFAULTS["log_level"]
    log_format: str = _DEFAULTS["log_format"]
    access_log: bool = _DEFAULTS["access_log"]
    trusted_proxies: tuple[str, ...] = _DEFAULTS["trusted_proxies"]
    event_loop: str = _DEFAULTS["event_loop"]
    auth_throttle_address_failures: int = _DEFAULTS["auth_throttle_address_failures"]
    auth_throttle_address_window_seconds: int = _DEFAULTS["auth_throttle_address_window_seconds"]
    auth_throttle_account_failures: int = _DEFAULTS["auth_throttle_account_failures"]
    auth_throttle_account_window_seconds: int = _DEFAULTS["auth_throttle_account_window_seconds"]
    auth_throttle_account_total_failures: int = _DEFAULTS["auth_throttle_account_total_failures"]
    auth_throttle_register_attempts: int = _DEFAULTS["auth_throttle_register_attempts"]
    auth_throttle_max_keys: int = _DEFAULTS["auth_throttle_max_keys"]
    header_timeout_seconds: int = _DEFAULTS["header_timeout_seconds"]
    keepalive_timeout_seconds: int = _DEFAULTS["keepalive_timeout_seconds"]
    max_connections: int = _DEFAULTS["max_connections"]
    realtime_keepalive_seconds: int = _DEFAULTS["realtime_keepalive_seconds"]
    realtime_ws_heartbeat_seconds: int = _DEFAULTS["realtime_ws_heartbeat_seconds"]
    realtime_max_frame_bytes: int = _DEFAULTS["realtime_max_frame_bytes"]
    realtime_max_channels: int = _DEFAULTS["realtime_max_channels"]
    realtime_max_connections_per_user: int = _DEFAULTS["realtime_max_connections_per_user"]
    realtime_max_messages_per_second: int = _DEFAULTS["realtime_max_messages_per_second"]
    realtime_max_outgoing_bytes: int = _DEFAULTS["realtime_max_outgoing_bytes"]
    functions_workers: int = _DEFAULTS["functions_workers"]
    functions_timeout_seconds: int = _DEFAULTS["functions_timeout_seconds"]
    functions_web_wait_seconds: int = _DEFAULTS["functions_web_wait_seconds"]
    functions_memory_mb: int = _DEFAULTS["functions_memory_mb"]
    functions_stack_kb: int = _DEFAULTS["functions_stack_kb"]
    functions_max_host_calls: int = _DEFAULTS["functions_max_host_calls"]
    functions_max_io_bytes: int = _DEFAULTS["functions_max_io_bytes"]
    functions_max_log_lines: int = _DEFAULTS["functions_max_log_lines"]
    functions_max_log_line_bytes: int = _DEFAULTS["functions_max_log_line_bytes"]
    functions_history: int = _DEFAULTS["functions_history"]
    functions_max_attempts: int = _DEFAULTS["functions_max_attempts"]
    functions_max_running: int = _DEFAULTS["functions_max_running"]
    functions_fetch_allow_private: bool = _DEFAULTS["functions_fetch_allow_private"]
    publish_limit_per_second: int = _DEFAULTS["publish_limit_per_second"]
    publish_limit_burst: int = _DEFAULTS["publish_limit_burst"]
    forms_per_minute: int = _DEFAULTS["forms_per_minute"]
    forms_max_bytes: int = _DEFAULTS["forms_max_bytes"]
    chromium_path: str = _DEFAULTS["chromium_path"]
    render_timeout_seconds: int = _DEFAULTS["render_timeout_seconds"]
    tasks_history: int = _DEFAULTS["tasks_history"]
    tasks_history_days: int = _DEFAULTS["tasks_history_days"]
    tasks_catchup_all_limit: int = _DEFAULTS["tasks_catchup_all_limit"]
    smtp_host: str = _DEFAULTS["smtp_host"]
    smtp_port: int = _DEFAULTS["smtp_port"]
    smtp_user: str = _DEFAULTS["smtp_user"]
    smtp_password: str = _DEFAULTS["smtp_password"]
    smtp_security: str = _DEFAULTS["smtp_security"]
    smtp_ca_file: str = _DEFAULTS["smtp_ca_file"]
    smtp_timeout_seconds: int = _DEFAULTS["smtp_timeout_seconds"]
    mail_from: str = _DEFAULTS["mail_from"]
    mail_max_attempts: int = _DEFAULTS["mail_max_attempts"]
    mail_keep_sent: int = _DEFAULTS["mail_keep_sent"]


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build a Config from a TOML file, the environment and explicit overrides (in that order)."""
    env = env if env is not None else {}
    path = path or env.get(ENV_PREFIX + "CONFIG") or None
    values: dict[str, Any] = {}
    if path:
        values.update(_read_toml(Path(path)))
    for setting in SETTINGS:
        raw = env.get(ENV_PREFIX + setting.name.upper())
        if raw is not None and raw != "":
            values[setting.name] = _from_text(setting, raw)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate(replace(Config(), **{k: _coerce(k, v) for k, v in values.items()}))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_DEFAULTS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s): {', '.join(unknown)}")
    return data


def _from_text(setting: Setting, raw: str) -> Any:
    if isinstance(setting.default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{ENV_PREFIX}{setting.name.upper()} must be true or false, got {raw!r}")
    if isinstance(setting.default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{setting.name.upper()} must be a whole number, got {raw!r}") from None
    if isinstance(setting.default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _coerce(name: str, value: Any) -> Any:
    default = _DEFAULTS[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"setting {name} must be true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"setting {name} must be a whole number")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"setting {name} must be a list of strings")
        return tuple(value)
    if not isinstance(value, str):
        raise ConfigError(f"setting {name} must be a string")
    return value


def validate(config: Config) -> Config:
    """Check each setting's range or choices (`Setting`); raise ConfigError on the first bad one."""
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        if setting.choices and value not in setting.choices:
            *most, last = setting.choices
            raise ConfigError(f"setting {setting.name} must be {', '.join(most)} or {last}")
        if isinstance(value, int) and not isinstance(value, bool):
            _check_range(setting, value)
    if config.log_level.lower() not in ("debug", "info", "warning", "error"):  # in any case
        raise ConfigError("setting log_level must be debug, info, warning or error")
    try:
        parse_networks(config.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"setting trusted_proxies: {exc}") from None
    if "@" not in config.mail_from or any(c in config.mail_from for c in "\r\n"):
        raise ConfigError("setting mail_from must be an email address")
    return config


def _check_range(setting: Setting, value: int) -> None:
    if setting.maximum is not None and not setting.minimum <= value <= setting.maximum:
        raise ConfigError(f"setting {setting.name} must be between {setting.minimum} and {setting.maximum}")
    if value < setting.minimum:
        meaning = f" ({setting.help})" if setting.minimum < 1 else ""
        raise ConfigError(f"setting {setting.name} must be at least {setting.minimum}{meaning}")


def setting_names() -> list[str]:
    """Names of every setting, in documentation order."""
    return [f.name for f in fields(Config)]
