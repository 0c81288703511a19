"""Headers that keep secrets out of caches and stop content sniffing; the /email lookup switch."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_ROOT_TOKEN


async def _token_answers(api: Api) -> dict[str, object]:
    """Each route that answers a token or a secret, called successfully."""
    email = "someone@example.com"
    register = await api.client.post("/register", json={"email": email, "password": "secret-pw"},
                                     headers=api.headers())
    login = await api.client.post("/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD},
                                  headers=api.headers())
    _, me = await api.call("GET", "/me", await register.json())
    sudo = await api.client.get(f"/sudogettoken/{me['accountId']}", headers=api.headers(DEV_ROOT_TOKEN))
    code = await api.client.get(f"/password/resetcode?e={email}", headers=api.headers(DEV_ROOT_TOKEN))
    init = await api.client.get("/account/init?ui=1&email=owner@example.com", headers=api.headers())
    return {"register": register, "login": login, "sudogettoken": sudo, "resetcode": code, "account_init": init}


async def test_answers_that_carry_a_token_are_never_cached(api):
    answers = await _token_answers(api)
    assert {name: resp.status for name, resp in answers.items()} == dict.fromkeys(answers, 200)
    assert {name: resp.headers.get("Cache-Control") for name, resp in answers.items()} == dict.fromkeys(
        answers, "no-store")


@pytest.mark.parametrize("method, path, token", [
    ("GET", "/ping", None), ("GET", "/db/tasks", "user"), ("GET", "/db/tasks", None), ("GET", "/nope", None),
    ("POST", "/register", None), ("GET", "/metrics", "root"), ("GET", "/sse/connect", None), ("GET", "/ws", None),
    ("OPTIONS", "/db/tasks", None),
])
async def test_every_response_says_nosniff(api, method, path, token):
    headers = api.headers(await api.register() if token == "user" else DEV_ROOT_TOKEN if token == "root" else None)
    resp = await api.client.request(method, path, headers={**headers, "Origin": "https://app.example"})
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", resp.status
    resp.close()


async def test_email_lookup_is_public_by_default(api):
    await api.register("known@example.com")
    assert await api.call("GET", "/email?e=known@example.com") == (200, True)
    assert await api.call("GET", "/email?e=other@example.com") == (200, False)


async def test_email_lookup_root_only_refuses_everyone_but_root(aiohttp_client, tmp_path):
    client: TestClient = await aiohttp_client(create_app(make_config(tmp_path, email_lookup_root_only=True)))
    api = Api(client)
    user = await api.register("known@example.com")
    status, text = await api.call("GET", "/email?e=known@example.com")
    assert status == 401
    status, text = await api.call("GET", "/email?e=known@example.com", user)
    assert status == 400 and "root" in text
    assert await api.call("GET", "/email?e=known@example.com", DEV_ROOT_TOKEN) == (200, True)
