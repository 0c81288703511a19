"""fetch() never reaches a non-public address: not directly, not by redirect, not by a name.

Two loopback servers stand in for the internet: the "public" one on 127.0.0.2 (the injected
address check lets only it through) and the "private" one on 127.0.0.1, which records every
request so a test can assert it was never reached. Nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from sblite.errors import BadRequest
from sblite.http.fetcher import MAX_REDIRECTS, Fetcher, IPAddress, is_non_public
from tests.function_helpers import EVAL_SOURCE, add_function, evaluate

PUBLIC_HOST = "127.0.0.2"
PRIVATE_HOST = "127.0.0.1"
LIMIT = 1024 * 1024
BIG = 300_000  # several reads' worth of body


def only_public_host(ip: IPAddress) -> bool:
    """The injected check: everything but the stand-in public server is off limits."""
    return ip != ipaddress.IPv4Address(PUBLIC_HOST)


@dataclass
class Servers:
    """The stand-in internet: URLs on each server and the requests the private one got."""

    public_base: URL
    other_public_base: URL
    private_port: int
    private_hits: list[str] = field(default_factory=list)

    def public(self, path: str) -> str:
        return str(self.public_base.with_path(path))

    def other_public(self, path: str) -> str:
        return str(self.other_public_base.with_path(path))

    def private(self, path: str = "/secret", host: str = PRIVATE_HOST) -> str:
        return f"http://{host}:{self.private_port}{path}"

    def redirect(self, status: int, to: str) -> str:
        """A public URL that answers `status` with `Location: to`."""
        return str(self.public_base.with_path("/to").with_query(status=str(status), url=to))


def _public_app() -> web.Application:
    async def to(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query["status"]), headers={"Location": request.query["url"]})

    async def chain(request: web.Request) -> web.Response:
        left = int(request.match_info["left"])
        if left == 0:
            return web.Response(text="end of chain")
        return web.Response(status=302, headers={"Location": f"/chain/{left - 1}"})  # relative

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"method": request.method, "body": await request.text(),
                                  "authorization": request.headers.get("Authorization"),
                                  "content_type": request.headers.get("Content-Type")})

    async def final(request: web.Request) -> web.Response:
        return web.Response(text="public body")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG)

    app = web.Application()
    app.router.add_get("/chain/{left}", chain)
    app.router.add_get("/final", final)
    app.router.add_get("/big", big)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/to", to)
    return app


def _private_app(hits: list[str]) -> web.Application:
    async def record(request: web.Request) -> web.Response:
        hits.append(f"{request.method} {request.path}")
        return web.Response(text="secret")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    return app


@pytest.fixture
async def servers(aiohttp_server) -> Servers:
    hits: list[str] = []
    public = await aiohttp_server(_public_app(), host=PUBLIC_HOST)
    other = await aiohttp_server(_public_app(), host=PUBLIC_HOST)
    private = await aiohttp_server(_private_app(hits), host=PRIVATE_HOST)
    return Servers(public.make_url("/"), other.make_url("/"), private.port, hits)


@pytest.fixture
async def fetchers():
    """Makes Fetchers for a test and closes them after it."""
    made: list[Fetcher] = []

    def make(allow_private: bool = False, **kwargs: Any) -> Fetcher:
        fetcher = Fetcher(allow_private, refuse=only_public_host, **kwargs)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.close()


# --- refused: (what, URL, options, a word the error must hold)

REFUSED: list[tuple[str, Callable[[Servers], str], dict, str]] = [
    ("a direct private URL", lambda s: s.private(), {}, "refuses"),
    ("a 302 to the private server", lambda s: s.redirect(302, s.private()), {}, "refuses"),
    ("a 301 to the private server", lambda s: s.redirect(301, s.private()), {}, "refuses"),
    ("a 303 to the private server", lambda s: s.redirect(303, s.private()), {}, "refuses"),
    ("a 307 POST to the private server", lambda s: s.redirect(307, s.private()),
     {"method": "POST", "body": "payload"}, "refuses"),
    ("a 308 PUT to the private server", lambda s: s.redirect(308, s.private()),
     {"method": "PUT", "body": "payload"}, "refuses"),
    ("a public chain that ends inside", lambda s: s.redirect(302, s.redirect(307, s.private())), {}, "refuses"),
    ("a scheme-relative Location", lambda s: s.redirect(302, f"//{PRIVATE_HOST}:{s.private_port}/secret"), {},
     "refuses"),
    ("an IPv4-mapped IPv6 literal", lambda s: s.redirect(302, s.private(host="[::ffff:127.0.0.1]")), {},
     "refuses"),
    ("the unspecified address", lambda s: s.redirect(302, s.private(host="0.0.0.0")), {}, "refuses"),
    ("the IPv6 loopback", lambda s: s.redirect(302, s.private(host="[::1]")), {}, "refuses"),
    ("a decimal IPv4 form", lambda s: s.redirect(302, s.private(host="2130706433")), {}, ""),
    ("an octal IPv4 form", lambda s: s.redirect(302, s.private(host="0177.0.0.1")), {}, ""),
    ("a hex IPv4 form", lambda s: s.redirect(302, s.private(host="0x7f.0.0.1")), {}, ""),
    ("a short IPv4 form", lambda s: s.redirect(302, s.private(host="127.1")), {}, ""),
    ("a name that resolves to the private address", lambda s: s.private(host="localhost"), {}, "refuses"),
    ("a redirect to such a name", lambda s: s.redirect(302, s.private(host="localhost")), {}, "refuses"),
]


@pytest.mark.parametrize("what, url, options, word", REFUSED, ids=[case[0] for case in REFUSED])
async def test_fetch_refuses_every_way_inside(servers, fetchers, what, url, options, word):
    with pytest.raises(BadRequest) as refused:
        await fetchers()(url(servers), options, LIMIT)
    assert word in refused.value.message, refused.value.message
    assert servers.private_hits == []  # the private server's handler never ran


async def test_a_refusal_after_a_redirect_says_where_it_was_sent(servers, fetchers):
    with pytest.raises(BadRequest) as refused:
        await fetchers()(servers.redirect(302, servers.private()), {}, LIMIT)
    assert f"redirected to {servers.private()}" in refused.value.message, refused.value.message


async def test_the_connect_guard_alone_refuses_a_name_that_resolves_inside(servers, fetchers):
    # A resolver that lets every answer through stands for a skipped check or a rebound name:
    # the socket factory still sees the real address and refuses it.
    fetcher = fetchers(resolver=aiohttp.ThreadedResolver())
    for url in (servers.private(host="localhost"), servers.redirect(302, servers.private(host="localhost"))):
        with pytest.raises(BadRequest) as refused:
            await fetcher(url, {}, LIMIT)
        assert "refuses 127.0.0.1" in refused.value.message or "refuses ::1" in refused.value.message, \
            refused.value.message
    assert servers.private_hits == []


# --- followed: (what, URL, options, the JSON or text the final body must be)

FOLLOWED: list[tuple[str, Callable[[Servers], str], dict, Any]] = [
    ("no redirect", lambda s: s.public("/final"), {}, "public body"),
    ("a relative Location", lambda s: s.redirect(302, "/final"), {}, "public body"),
    (f"a chain of exactly {MAX_REDIRECTS} redirects", lambda s: s.public(f"/chain/{MAX_REDIRECTS}"), {},
     "end of chain"),
    ("a 307 keeps the method and body", lambda s: s.redirect(307, s.public("/echo")),
     {"method": "POST", "body": "payload", "headers": {"Content-Type": "text/plain"}},
     {"method": "POST", "body": "payload", "authorization": None, "content_type": "text/plain"}),
    ("a 308 keeps the method and body", lambda s: s.redirect(308, s.public("/echo")),
     {"method": "PUT", "body": "payload", "headers": {"Content-Type": "text/plain"}},
     {"method": "PUT", "body": "payload", "authorization": None, "content_type": "text/plain"}),
    ("a 302 turns a POST into a GET without body", lambda s: s.redirect(302, s.public("/echo")),
     {"method": "POST", "body": "payload", "headers": {"Content-Type": "text/plain"}},
     {"method": "GET", "body": "", "authorization": None, "content_type": None}),
    ("a 301 turns a POST into a GET without body", lambda s: s.redirect(301, s.public("/echo")),
     {"method": "POST", "body": "payload"},
     {"method": "GET", "body": "", "authorization": None, "content_type": None}),
    ("a 303 turns a PUT into a GET without body", lambda s: s.redirect(303, s.public("/echo")),
     {"method": "PUT", "body": "payload"},
     {"method": "GET", "body": "", "authorization": None, "content_type": None}),
    ("the same origin keeps Authorization", lambda s: s.redirect(302, s.public("/echo")),
     {"headers": {"Authorization": "Bearer t"}},
     {"method": "GET", "body": "", "authorization": "Bearer t", "content_type": None}),
    ("another origin does not get Authorization", lambda s: s.redirect(302, s.other_public("/echo")),
     {"headers": {"Authorization": "Bearer t"}},
     {"method": "GET", "body": "", "authorization": None, "content_type": None}),
]


@pytest.mark.parametrize("what, url, options, expected", FOLLOWED, ids=[case[0] for case in FOLLOWED])
async def test_fetch_follows_redirects_within_public(servers, fetchers, what, url, options, expected):
    got = await fetchers()(url(servers), options, LIMIT)
    assert got["status"] == 200, got
    body = got["body"] if isinstance(expected, str) else json.loads(got["body"])
    assert body == expected


BAD_REDIRECTS = [
    ("more than the redirect limit", lambda s: s.public(f"/chain/{MAX_REDIRECTS + 1}"), "too many redirects"),
    ("a non-http Location", lambda s: s.redirect(302, "ftp://example.com/file"), "not an http(s) URL"),
    ("a Location that is no URL", lambda s: s.redirect(302, "http://[::1"), "not an http(s) URL"),
    ("a mailto: Location", lambda s: s.redirect(302, "mailto:a@example.com"), "not an http(s) URL"),
]


@pytest.mark.parametrize("what, url, word", BAD_REDIRECTS, ids=[case[0] for case in BAD_REDIRECTS])
async def test_bad_redirects_are_clear_errors(servers, fetchers, what, url, word):
    with pytest.raises(BadRequest) as refused:
        await fetchers()(url(servers), {}, LIMIT)
    assert word in refused.value.message, refused.value.message


async def test_allow_private_lets_every_address_through(servers, fetchers):
    fetcher = fetchers(allow_private=True)
    for url in (servers.private(), servers.redirect(302, servers.private()), servers.private(host="localhost")):
        got = await fetcher(url, {}, LIMIT)
        assert (got["status"], got["body"]) == (200, "secret"), url
    assert servers.private_hits == ["GET /secret"] * 3


async def test_a_body_of_many_reads_arrives_whole_and_the_limit_holds(servers, fetchers):
    fetcher = fetchers()
    got = await fetcher(servers.public("/big"), {}, LIMIT)
    assert len(got["body"]) == BIG
    with pytest.raises(BadRequest) as refused:
        await fetcher(servers.public("/big"), {}, BIG - 1)
    assert "larger than" in refused.value.message


# --- the real address check

NON_PUBLIC = ["127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
              "100.64.0.1", "198.18.0.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::", "::1", "fe80::1",
              "fc00::1", "fec0::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
              "::127.0.0.1", "2002:7f00:1::", "2002:a00:1::", "64:ff9b::a9fe:a9fe", "2001::1", "2001:db8::1"]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::200e",
          "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]


@pytest.mark.parametrize("address", NON_PUBLIC)
def test_non_public_addresses_are_refused(address):
    assert is_non_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert not is_non_public(ipaddress.ip_address(address))


# --- end to end, through a function's fetch() on the default config


async def test_a_function_cannot_reach_loopback_in_any_spelling(api, aiohttp_server):
    hits: list[str] = []
    server = await aiohttp_server(_private_app(hits), host=PRIVATE_HOST)
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    problems = []
    for host in (PRIVATE_HOST, "[::ffff:127.0.0.1]", "0.0.0.0", "localhost", "2130706433", "0177.0.0.1", "127.1"):
        got = await evaluate(api, token, f'fetch("http://{host}:{server.port}/secret")')
        if got["ok"] is not False or not isinstance(got["content"], str) or not got["content"]:
            problems.append((host, got))
    assert problems == []
    assert hits == []
