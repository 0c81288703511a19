"""Magic-link sign-in end to end with a real SMTP server: the code read from the delivered mail, and every
way a code must fail (wrong, expired, used, too many tries) never giving a token."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sblite.app import create_app
from sblite.errors import ApiError
from sblite.http.keys import ACCOUNTS, DATABASE, MAIL
from sblite.services.magic import MagicLinks
from sblite.store.mail import MailStore
from tests.conftest import Api, make_config
from tests.function_helpers import eventually
from tests.smtp_server import Received, SmtpServer
from tests.support import DEV_PK

LINK = "https://app.example.com/signin"


def ask(email: str, **more: Any) -> dict[str, Any]:
    return {"fromEmail": "login@example.com", "fromName": "Example", "email": email, "subject": "Sign in",
            "body": "Hello, sign in here: [link]", "link": LINK, **more}


async def magic_api(aiohttp_client: Any, tmp_path: Any, smtp: SmtpServer, **more: Any) -> Api:
    config = make_config(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                         auth_throttle_account_failures=50, **more)
    return Api(await aiohttp_client(create_app(config)))


async def arrived(smtp: SmtpServer, count: int = 1) -> list[Received]:
    async def probe() -> list[Received] | None:
        got = smtp.messages()
        return got if len(got) >= count else None
    return await eventually(probe, what=f"{count} mail(s)")


def link_of(received: Received) -> tuple[str, str, str]:
    """(the link before its query, email, code) from a delivered mail's text."""
    text = received.body("plain")
    url = next(word for word in text.split() if word.startswith(LINK))
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", query["email"][0], query["code"][0]


async def sign_in(api: Api, email: str, code: str) -> tuple[int, Any]:
    return await api.call("GET", f"/login/magic?email={email}&code={code}")


async def test_magic_link_end_to_end_and_a_code_works_once(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("ann@example.org")
        assert await api.call("POST", "/login/magic", json=ask("Ann@Example.org")) == (200, True)
        received = (await arrived(smtp))[0]
        link, email, code = link_of(received)
        assert (link, email) == (LINK, "ann@example.org")
        assert len(code) >= 6 and code.isdigit() and code != "666333"
        assert received.message["From"] == "Example <login@example.com>" and received.message["Subject"] == "Sign in"
        status, token = await sign_in(api, email, code)
        assert status == 200 and isinstance(token, str)
        status, me = await api.call("GET", "/me", token)
        assert status == 200 and me["email"] == "ann@example.org"
        assert (await sign_in(api, email, code))[0] == 401  # used up
        _, mails = await api.root("GET", "/mail/outbox")
        assert [m["origin"] for m in mails["results"]] == ["magic-link"]


async def test_a_link_with_a_query_keeps_it_and_an_html_body_gets_the_link_escaped(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("bo@example.org")
        body = ask("bo@example.org", link=LINK + "?next=/home", body="<p><a href=\"[link]\">Sign in</a></p>")
        assert await api.call("POST", "/login/magic", json=body) == (200, True)
        received = (await arrived(smtp))[0]
    assert "?next=%2Fhome&amp;code=" in received.body("html") or "?next=/home&amp;code=" in received.body("html")
    _, email, code = link_of(received)
    assert email == "bo@example.org" and code.isdigit()


async def test_wrong_codes_never_sign_in_and_void_the_code(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("cy@example.org")
        await api.call("POST", "/login/magic", json=ask("cy@example.org"))
        _, email, code = link_of((await arrived(smtp))[0])
        wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
        for _ in range(5):
            status, text = await sign_in(api, email, wrong)
            assert status == 401 and "invalid" in text, text
        # Five wrong tries used the code up: the right one does not sign in any more.
        assert (await sign_in(api, email, code))[0] == 401
        for bad in ("", "abc", code + "0"):
            assert (await sign_in(api, email, bad))[0] in (400, 401)
        assert (await api.call("GET", "/login/magic?email=cy@example.org"))[0] == 400


async def test_the_auth_throttle_refuses_after_repeated_failures(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = Api(await aiohttp_client(create_app(make_config(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                                              smtp_security="none"))))
        statuses = [(await sign_in(api, "dee@example.org", "12345678"))[0] for _ in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


async def test_unknown_email_answers_true_and_sends_nothing(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        assert await api.call("POST", "/login/magic", json=ask("nobody@example.org")) == (200, True)
        _, mails = await api.root("GET", "/mail/outbox")
    assert mails["total"] == 0 and smtp.messages() == []


async def test_links_are_limited_per_email(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("eve@example.org")
        answers = [await api.call("POST", "/login/magic", json=ask("eve@example.org")) for _ in range(4)]
        assert answers[:3] == [(200, True)] * 3 and answers[3][0] == 429, answers
        # Only the latest code is live (mail may arrive in any order: the outbox says which is newest).
        codes = {link_of(r)[2] for r in await arrived(smtp, 3)}
        _, mails = await api.root("GET", "/mail/outbox")
        latest = parse_qs(urlsplit(mails["results"][0]["textBody"].split()[-1]).query)["code"][0]
        for older in codes - {latest}:
            assert (await sign_in(api, "eve@example.org", older))[0] == 401
        assert (await sign_in(api, "eve@example.org", latest))[0] == 200


@pytest.mark.parametrize(("change", "named"), [
    ({"link": "javascript:alert(1)"}, "link:"),
    ({"link": "ftp://example.com/"}, "link:"),
    ({"link": "https://example.com/a b"}, "link:"),
    ({"link": None}, "link:"),
    ({"email": "not-an-email"}, "email:"),
    ({"body": ""}, "body:"),
    ({"fromEmail": "a@b.com\r\nBcc: x@y.z"}, "from:"),
    ({"subject": "Hi\r\nBcc: x@y.z"}, "subject:"),
])
async def test_bad_requests_are_400_naming_the_field(aiohttp_client, tmp_path, change, named) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("fay@example.org")
        status, text = await api.call("POST", "/login/magic", json={**ask("fay@example.org"), **change})
        assert status == 400 and text.startswith(named), text
        _, mails = await api.root("GET", "/mail/outbox")
    assert mails["total"] == 0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_an_expired_code_does_not_sign_in(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await magic_api(aiohttp_client, tmp_path, smtp)
        await api.register("gus@example.org")
        server = api.client.server.app
        clock = Clock()
        links = MagicLinks(server[ACCOUNTS], MailStore(server[DATABASE]), server[MAIL], ttl=900, clock=clock)
        app = await server[ACCOUNTS].app_for_pk(DEV_PK)
        await links.request(app, ask("gus@example.org"), "127.0.0.1")
        _, email, code = link_of((await arrived(smtp))[0])
        clock.now += 900
        with pytest.raises(ApiError) as caught:
            await links.complete(app, email, code)
        assert caught.value.status == 401 and "expired" in caught.value.message
        # A fresh code, used just in time, works.
        await links.request(app, ask("gus@example.org"), "127.0.0.1")
        _, _, fresh = link_of((await arrived(smtp, 2))[1])
        clock.now += 899
        assert isinstance(await links.complete(app, email, fresh), str)
