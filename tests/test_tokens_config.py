"""Session tokens, root tokens and configuration loading."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from sblite.config import SETTINGS, Config, ConfigError, load_config, setting_names
from sblite.errors import BadRequest
from sblite.tokens import RootClaim, SessionClaim, SessionTokens, format_root_token, parse_root_token

SECRET = "test-secret-key"
TTL = 3600
T0 = 1_700_000_000

# ---------------------------------------------------------------------------------------------
# session tokens
# ---------------------------------------------------------------------------------------------


def test_session_token_round_trip() -> None:
    tokens = SessionTokens(SECRET, TTL)
    token = tokens.issue("user-1", "per-user-token")
    assert isinstance(token, str) and token.count(".") == 2
    assert tokens.verify(token) == SessionClaim(user_id="user-1", user_token="per-user-token")


def test_session_tokens_differ_per_user() -> None:
    tokens = SessionTokens(SECRET, TTL)
    a, b = tokens.issue("user-1", "t"), tokens.issue("user-2", "t")
    assert a != b
    assert tokens.verify(b).user_id == "user-2"


def test_token_from_another_key_is_rejected() -> None:
    token = SessionTokens("another-key", TTL).issue("user-1", "t")
    with pytest.raises(BadRequest, match="could not verify your authentication token") as info:
        SessionTokens(SECRET, TTL).verify(token)
    assert info.value.status == 400


def _tamper(token: str) -> str:
    """Flip one character of the payload part."""
    return ("A" if token[0] != "A" else "B") + token[1:]


@pytest.mark.parametrize("make_bad", [
    lambda t: _tamper(t),
    lambda t: t[:-2],
    lambda t: t + "x",
    lambda t: "",
    lambda t: "not-a-token",
    lambda t: "a.b.c",
], ids=["tampered payload", "truncated", "extended", "empty", "garbage", "three dots"])
def test_malformed_tokens_are_rejected(make_bad) -> None:
    tokens = SessionTokens(SECRET, TTL)
    with pytest.raises(BadRequest, match="error validating auth key"):
        tokens.verify(make_bad(tokens.issue("user-1", "t")))


@pytest.mark.parametrize("age, valid", [
    (0, True), (TTL - 1, True), (TTL, True), (TTL + 0.5, True), (TTL + 1, False), (10 * TTL, False),
])
def test_session_token_expiry(age: float, valid: bool) -> None:
    """Expiry without sleeping: SessionTokens takes the clock itsdangerous signs and checks with."""
    now = [float(T0)]
    tokens = SessionTokens(SECRET, TTL, clock=lambda: now[0])
    token = tokens.issue("user-1", "t")
    now[0] = T0 + age
    if valid:
        assert tokens.verify(token).user_id == "user-1"
    else:
        with pytest.raises(BadRequest, match="your session token has expired"):
            tokens.verify(token)


def test_injected_clock_is_per_instance() -> None:
    """A token cut by a clock far in the past is expired for an instance on the real clock."""
    old = SessionTokens(SECRET, TTL, clock=lambda: float(T0 - 10 * TTL))
    token = old.issue("user-1", "t")
    assert old.verify(token).user_id == "user-1"
    with pytest.raises(BadRequest, match="expired"):
        SessionTokens(SECRET, TTL).verify(token)


# ---------------------------------------------------------------------------------------------
# root tokens
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token, claim", [
    ("u|a|t", RootClaim("u", "a", "t")),
    ("user-1|acc-1|tok en", RootClaim("user-1", "acc-1", "tok en")),
])
def test_parse_root_token(token: str, claim: RootClaim) -> None:
    assert parse_root_token(token) == claim
    assert format_root_token(claim.user_id, claim.account_id, claim.user_token) == token


@pytest.mark.parametrize("token", [
    "", "u", "u|a", "u|a|t|x", "|a|t", "u||t", "u|a|", "||", "|||", "safe-to-use-in-dev-root-token",
])
def test_parse_root_token_rejects(token: str) -> None:
    with pytest.raises(BadRequest, match=r"^invalid root token$"):
        parse_root_token(token)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"
DEFAULTS = {s.name: s.default for s in SETTINGS}


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sblite.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config()
    assert config == Config()
    for name, default in DEFAULTS.items():
        assert getattr(config, name) == default and type(getattr(config, name)) is type(default), name


def test_setting_names_follow_settings() -> None:
    assert setting_names() == [s.name for s in SETTINGS]


def test_toml_file_values(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9000\nprod = true\ndb = "data/x.db"\nlog_level = "debug"\n')
    config = load_config(path)
    assert (config.port, config.prod, config.db, config.log_level) == (9000, True, "data/x.db", "debug")
    assert config.host == DEFAULTS["host"]


def test_config_path_from_env(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9001\n")
    assert load_config(env={"SBLITE_CONFIG": str(path)}).port == 9001


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'port = 9000\nhost = "127.0.0.2"\n')
    config = load_config(path, env={"SBLITE_PORT": "9100", "SBLITE_PROD": "yes"})
    assert (config.port, config.host, config.prod) == (9100, "127.0.0.2", True)


def test_empty_env_value_is_ignored(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9000\n")
    assert load_config(path, env={"SBLITE_PORT": ""}).port == 9000


def test_env_ignores_other_variables() -> None:
    assert load_config(env={"PORT": "1", "SBLITE_port": "2", "SBLITE_NOT_A_SETTING": "x"}) == Config()


def test_overrides_win_over_env(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "port = 9000\n")
    env = {"SBLITE_PORT": "9100", "SBLITE_DB": "env.db"}
    config = load_config(path, env=env, overrides={"port": 9200, "db": None})
    assert (config.port, config.db) == (9200, "env.db")  # a None override leaves the lower layer


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" True ", True),
    ("0", False), ("false", False), ("No", False), ("off", False),
])
def test_env_bool(raw: str, expected: bool) -> None:
    assert load_config(env={"SBLITE_PROD": raw}).prod is expected


@pytest.mark.parametrize("name, raw", [
    ("SBLITE_PROD", "maybe"),
    ("SBLITE_ALLOW_ACCOUNT_INIT", "2"),
    ("SBLITE_PORT", "eighty"),
    ("SBLITE_PORT", "80.5"),
    ("SBLITE_READ_CONNECTIONS", "four"),
    ("SBLITE_SESSION_TTL_SECONDS", "1h"),
])
def test_env_parse_errors_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env={name: raw})
    assert name in str(info.value) and repr(raw) in str(info.value)


@pytest.mark.parametrize("text, words", [
    ("portt = 1\n", "unknown setting(s): portt"),
    ("port = 1\n[server]\nhost = 'x'\n", "unknown setting(s): server"),
    ("port = \n", "is not valid TOML"),
    ("port = 80\nport = 81\n", "is not valid TOML"),
    ('port = "80"\n', "setting port must be a whole number"),
    ("port = true\n", "setting port must be a whole number"),
    ("port = 80.0\n", "setting port must be a whole number"),
    ("prod = 1\n", "setting prod must be true or false"),
    ("host = 127\n", "setting host must be a string"),
    ("port = 70000\n", "port must be between 0 and 65535"),
    ("read_connections = 0\n", "read_connections must be at least 1"),
    ("slow_query_ms = -2\n", "slow_query_ms must be at least -1 ("),
    ("mail_keep_sent = -1\n", "mail_keep_sent must be at least 0"),
    ("smtp_port = 0\n", "smtp_port must be between 1 and 65535"),
    ('smtp_security = "ssl"\n', "smtp_security must be starttls, tls or none"),
    ('log_level = "loud"\n', "log_level must be debug, info, warning or error"),
    ('event_loop = "trio"\n', "event_loop must be auto, uvloop or asyncio"),
])
def test_bad_toml_files(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_toml(tmp_path, text))
    assert words in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_example_config_documents_every_setting_with_its_default() -> None:
    example = tomllib.loads(EXAMPLE.read_text())
    assert list(example) == [s.name for s in SETTINGS]
    for name, default in DEFAULTS.items():
        value: Any = example[name]
        value = tuple(value) if isinstance(value, list) else value  # TOML lists are tuples in Config
        assert value == default and type(value) is type(default), name


def test_example_config_loads_to_the_defaults() -> None:
    assert load_config(EXAMPLE) == Config()
