"""sblite.proxies: who may speak for the client, and how far (address and scheme), and the settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sblite.config import ConfigError, load_config
from sblite.proxies import TrustedProxies, parse_address, parse_networks

LOCAL = TrustedProxies(parse_networks(["127.0.0.1", "10.0.0.0/8", "::1"]))
NOBODY = TrustedProxies()


@pytest.mark.parametrize("trusted, peer, forwarded, expected", [
    # no trusted proxies (the default): the header never counts
    (NOBODY, "127.0.0.1", ["203.0.113.9"], "127.0.0.1"),
    (NOBODY, "198.51.100.1", [], "198.51.100.1"),
    # an untrusted peer's header is ignored, whatever it says
    (LOCAL, "198.51.100.1", ["203.0.113.9"], "198.51.100.1"),
    (LOCAL, "198.51.100.1", ["127.0.0.1"], "198.51.100.1"),
    # a trusted peer: the right-most entry that is not itself a trusted proxy
    (LOCAL, "127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    (LOCAL, "127.0.0.1", ["1.1.1.1, 203.0.113.9"], "203.0.113.9"),  # 1.1.1.1 was the client's own claim
    (LOCAL, "127.0.0.1", ["203.0.113.9, 10.1.2.3"], "203.0.113.9"),  # through two proxies
    (LOCAL, "127.0.0.1", ["203.0.113.9", "10.1.2.3"], "203.0.113.9"),  # repeated headers read as one list
    (LOCAL, "127.0.0.1", ["spoof, 203.0.113.9, 10.1.2.3"], "203.0.113.9"),
    # every hop is trusted: the left-most one is the client (a client on the proxy's own network)
    (LOCAL, "127.0.0.1", ["10.0.0.5, 10.1.2.3"], "10.0.0.5"),
    # no header, or an empty one: the peer itself
    (LOCAL, "127.0.0.1", [], "127.0.0.1"),
    (LOCAL, "127.0.0.1", [" , "], "127.0.0.1"),
    # an unreadable entry stops the walk at the trusted hop right of it
    (LOCAL, "127.0.0.1", ["not-an-ip"], "127.0.0.1"),
    (LOCAL, "127.0.0.1", ["203.0.113.9, unknown, 10.1.2.3"], "10.1.2.3"),
    # ports, brackets and IPv4-mapped IPv6 spellings
    (LOCAL, "127.0.0.1", ["203.0.113.9:4711"], "203.0.113.9"),
    (LOCAL, "127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
    (LOCAL, "127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
    (LOCAL, "::ffff:127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
    (LOCAL, "::1", ["203.0.113.9"], "203.0.113.9"),
    (LOCAL, "127.0.0.1", ["::ffff:10.0.0.7, 203.0.113.9"], "203.0.113.9"),
    # no peer address at all (a Unix socket): nothing to trust
    (LOCAL, None, ["203.0.113.9"], None),
])
def test_client_address(trusted: TrustedProxies, peer: str | None, forwarded: list[str], expected: str) -> None:
    assert trusted.client_address(peer, forwarded) == expected


@pytest.mark.parametrize("trusted, peer, scheme, proto, expected", [
    (NOBODY, "127.0.0.1", "http", "https", "http"),
    (LOCAL, "198.51.100.1", "http", "https", "http"),  # untrusted peer
    (LOCAL, "127.0.0.1", "http", "https", "https"),
    (LOCAL, "127.0.0.1", "http", "HTTPS", "https"),
    (LOCAL, "127.0.0.1", "https", "http", "http"),
    (LOCAL, "127.0.0.1", "http", "https, http", "http"),  # the nearest proxy's word counts
    (LOCAL, "127.0.0.1", "http", "gopher", "http"),
    (LOCAL, "127.0.0.1", "http", "", "http"),
    (LOCAL, "127.0.0.1", "http", None, "http"),
    (LOCAL, None, "http", "https", "http"),
])
def test_client_scheme(trusted: TrustedProxies, peer: str | None, scheme: str, proto: str | None,
                       expected: str) -> None:
    assert trusted.client_scheme(peer, scheme, proto) == expected


@pytest.mark.parametrize("entries, expected", [
    ([], ()),
    (["127.0.0.1"], ("127.0.0.1/32",)),
    ([" 10.0.0.0/8 ", "::1"], ("10.0.0.0/8", "::1/128")),
    (["192.168.1.7/24"], ("192.168.1.0/24",)),  # host bits are forgiven
])
def test_parse_networks(entries: list[str], expected: tuple[str, ...]) -> None:
    assert tuple(str(n) for n in parse_networks(entries)) == expected


@pytest.mark.parametrize("entry", ["", "localhost", "10.0.0.0/33", "1.2.3", "10.0.0.0/8/8"])
def test_parse_networks_rejects(entry: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or CIDR block"):
        parse_networks([entry])


@pytest.mark.parametrize("text, expected", [
    ("1.2.3.4", "1.2.3.4"), (" 1.2.3.4 ", "1.2.3.4"), ("1.2.3.4:80", "1.2.3.4"), ("::1", "::1"),
    ("[::1]", "::1"), ("[::1]:80", "::1"), ("::ffff:1.2.3.4", "1.2.3.4"),
    ("", None), ("unknown", None), ("1.2.3.4:80:90", None), ("_hidden", None),
])
def test_parse_address(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address else None) == expected


@pytest.mark.parametrize("source, expected", [
    ({"env": {"SBLITE_TRUSTED_PROXIES": "127.0.0.1, ::1,,10.0.0.0/8"}}, ("127.0.0.1", "::1", "10.0.0.0/8")),
    ({"env": {"SBLITE_TRUSTED_PROXIES": ""}}, ()),
    ({"toml": 'trusted_proxies = ["127.0.0.1", "192.168.0.0/16"]\n'}, ("127.0.0.1", "192.168.0.0/16")),
    ({"toml": "trusted_proxies = []\n"}, ()),
])
def test_trusted_proxies_setting(tmp_path: Path, source: dict[str, Any], expected: tuple[str, ...]) -> None:
    path = None
    if "toml" in source:
        path = tmp_path / "sblite.toml"
        path.write_text(source["toml"])
    assert load_config(path, env=source.get("env", {})).trusted_proxies == expected


@pytest.mark.parametrize("source, words", [
    ({"env": {"SBLITE_TRUSTED_PROXIES": "127.0.0.1,localhost"}}, "trusted_proxies: 'localhost' is not an IP"),
    ({"toml": 'trusted_proxies = "127.0.0.1"\n'}, "trusted_proxies must be a list of strings"),
    ({"toml": "trusted_proxies = [127]\n"}, "trusted_proxies must be a list of strings"),
    ({"toml": 'trusted_proxies = ["10.0.0.0/40"]\n'}, "is not an IP address or CIDR block"),
    ({"toml": 'log_format = "xml"\n'}, "log_format must be text or json"),
    ({"env": {"SBLITE_ACCESS_LOG": "sometimes"}}, "SBLITE_ACCESS_LOG must be true or false"),
])
def test_bad_proxy_and_log_settings(tmp_path: Path, source: dict[str, Any], words: str) -> None:
    path = None
    if "toml" in source:
        path = tmp_path / "sblite.toml"
        path.write_text(source["toml"])
    with pytest.raises(ConfigError) as info:
        load_config(path, env=source.get("env", {}))
    assert words in str(info.value)
