"""Accounts, sessions, root tokens and the transport rules of spec §0 to §1."""

from __future__ import annotations

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_ROOT_TOKEN


async def test_register_login_me(api):
    token = await api.register("Mixed.Case@Example.com", "pw-123456")
    status, me = await api.call("GET", "/me", token)
    assert status == 200
    assert me["id"] == me["userId"] and me["accountId"] and me["role"] == 50
    assert me["email"] == "mixed.case@example.com"
    status, token2 = await api.call("POST", "/login", json={"email": "MIXED.case@example.com",
                                                            "password": "pw-123456", "accountId": me["accountId"]})
    assert status == 200 and isinstance(token2, str)
    status, me2 = await api.call("GET", "/me", token2)
    assert me2 == me


@pytest.mark.parametrize("body, status, message", [
    ({"email": "nope", "password": "pw-123456"}, 400, "invalid email"),
    ({"email": "a@b.co", "password": "123"}, 400, "at least 6"),
    ({"email": "a@b.co"}, 400, "password is required"),
    ({"email": 5, "password": "pw-123456"}, 400, "invalid email"),
    (["a@b.co", "pw"], 400, "expected a JSON object"),
])
async def test_register_rejects_bad_input(api, body, status, message):
    got_status, text = await api.call("POST", "/register", json=body)
    assert got_status == status and message in text and text.endswith("\n")


async def test_register_duplicate_email_and_malformed_json(api):
    await api.register("dup@example.com")
    status, text = await api.call("POST", "/register", json={"email": "DUP@example.com", "password": "pw-123456"})
    assert (status, text) == (400, "invalid email: this email is already registered\n")
    status, text = await api.call("POST", "/register", data=b'{"email": ')
    assert status == 400 and "invalid JSON" in text


@pytest.mark.parametrize("email, password", [
    ("known@example.com", "wrong-password"),
    ("unknown@example.com", "pw-123456"),
    (None, None),
])
async def test_login_refuses_bad_credentials(api, email, password):
    await api.register("known@example.com", "pw-123456")
    status, text = await api.call("POST", "/login", json={"email": email, "password": password})
    assert status == 401 and text == "invalid email/password\n"


async def test_email_exists(api):
    await api.register("here@example.com")
    assert await api.call("GET", "/email?e=HERE@example.com") == (200, True)
    assert await api.call("GET", "/email?e=gone@example.com") == (200, False)
    assert await api.call("GET", "/email") == (200, False)


@pytest.mark.parametrize("headers, status, message", [
    ({"SB-PUBLIC-KEY": ""}, 401, "invalid StaticBackend public key"),
    ({"SB-PUBLIC-KEY": "nope"}, 500, "error finding database 'nope'"),
    ({"Authorization": "Token abc"}, 400, "should be: Bearer"),
    ({"Authorization": "Bearer forged.token.value"}, 400, "error validating auth key"),
])
async def test_transport_errors(api, headers, status, message):
    got_status, text = await api.call("GET", "/me", headers=headers)
    assert got_status == status and message in text


async def test_missing_authorization_is_401(api):
    resp = await api.client.get("/me", headers={"SB-PUBLIC-KEY": api.pk})
    assert resp.status == 401 and await resp.text() == "missing authorization HTTP header\n"
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_public_key_from_query_and_cookie(api):
    token = await api.register()
    resp = await api.client.get(f"/me?sbpk={api.pk}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    resp = await api.client.get("/me", headers={"Authorization": f"Bearer {token}", "Cookie": f"pk={api.pk}"})
    assert resp.status == 200


async def test_password_reset_revokes_old_sessions(api):
    old_token = await api.register("reset@example.com", "first-pw")
    status, code = await api.root("GET", "/password/resetcode?e=reset@example.com")
    assert status == 200 and len(code) == 10
    status, text = await api.call("POST", "/password/reset",
                                  json={"email": "reset@example.com", "code": "wrong", "password": "second-pw"})
    assert status == 500 and "invalid code" in text
    assert (await api.call("POST", "/password/reset",
                           json={"email": "reset@example.com", "code": code, "password": "second-pw"})) == (200, True)
    status, text = await api.call("GET", "/me", old_token)
    assert status == 400 and "invalid authentication token" in text
    status, _ = await api.call("POST", "/login", json={"email": "reset@example.com", "password": "first-pw"})
    assert status == 401
    status, _ = await api.call("POST", "/login", json={"email": "reset@example.com", "password": "second-pw"})
    assert status == 200
    status, _ = await api.call("POST", "/password/reset",
                               json={"email": "reset@example.com", "code": code, "password": "third-pw"})
    assert status == 500  # a code works once


async def test_reset_code_needs_root(api):
    token = await api.register("victim@example.com")
    status, text = await api.call("GET", "/password/resetcode?e=victim@example.com", token)
    assert status == 400 and "invalid root token" in text


async def test_account_users_add_list_remove(api):
    admin = await api.register("boss@example.com")
    status, member = await api.call("POST", "/account/users", admin,
                                    json={"email": "Member@example.com", "password": "pw-member"})
    assert status == 200 and member["role"] == 0 and member["email"] == "member@example.com"
    assert "token" not in member
    status, users = await api.call("GET", "/account/users", admin)
    assert [u["email"] for u in users] == ["boss@example.com", "member@example.com"]
    assert all("token" not in u for u in users)
    status, text = await api.call("POST", "/account/users", admin,
                                  json={"email": "member@example.com", "password": "pw-member"})
    assert status == 400 and "already in use" in text
    status, member_token = await api.call("POST", "/login",
                                          json={"email": "member@example.com", "password": "pw-member"})
    boss_id = users[0]["id"]
    status, text = await api.call("DELETE", f"/account/users/{boss_id}", member_token)
    assert status == 401 and "permission level not high enough" in text
    stranger = await api.register()
    status, _ = await api.call("DELETE", f"/account/users/{member['id']}", stranger)
    assert status == 404
    assert await api.call("DELETE", f"/account/users/{member['id']}", admin) == (200, True)
    status, text = await api.call("GET", "/me", member_token)
    assert status == 400


async def test_change_email(api):
    token = await api.register("old@example.com")
    await api.register("taken@example.com")
    status, text = await api.call("POST", "/me/email", token, json={"email": "taken@example.com"})
    assert status == 400 and "already in use" in text
    assert await api.call("POST", "/me/email", token, json={"email": "New@example.com"}) == (200, True)
    status, me = await api.call("GET", "/me", token)
    assert me["email"] == "new@example.com"


async def test_setrole_needs_role_100(api):
    user = await api.register("promote@example.com")
    status, text = await api.call("POST", "/setrole", user, json={"email": "promote@example.com", "role": 100})
    assert status == 401, text
    status, admin = await api.call("POST", "/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert status == 200
    status, _text = await api.call("POST", "/setrole", admin, json={"email": "promote@example.com", "role": "x"})
    assert status == 400
    assert await api.call("POST", "/setrole", admin, json={"email": "promote@example.com", "role": 70}) == (200, True)
    status, me = await api.call("GET", "/me", user)
    assert me["role"] == 70


async def test_sudogettoken(api):
    user = await api.register()
    status, me = await api.call("GET", "/me", user)
    status, token = await api.root("GET", f"/sudogettoken/{me['accountId']}")
    assert status == 200
    assert (await api.call("GET", "/me", token))[1]["userId"] == me["userId"]
    status, _ = await api.root("GET", "/sudogettoken/no-such-account")
    assert status == 404


@pytest.mark.parametrize("token, status, message", [
    ("a|b", 400, "invalid root token"),
    ("a|b|c", 400, "invalid root token"),
    ("", 401, "missing authorization"),
])
async def test_root_token_errors(api, token, status, message):
    got_status, text = await api.call("GET", "/sudolistall", token or None)
    assert got_status == status and message in text


async def test_real_root_token_and_non_root_refused(api):
    status, creds = await api.call("GET", "/account/init?email=owner@example.com&ui=1")
    assert status == 200 and set(creds) == {"pk", "rootToken", "pw"}
    other = Api(api.client, pk=creds["pk"])
    assert await other.call("GET", "/sudolistall", creds["rootToken"]) == (200, [])
    # a root token of one app is refused with another app's public key
    status, text = await api.call("GET", "/sudolistall", creds["rootToken"])
    assert status == 400
    # a user of the other app cannot use its token here
    token = await other.register()
    status, text = await api.call("GET", "/me", token)
    assert status == 400 and "invalid StaticBackend public token" in text
    status, text = await api.call("GET", "/account/init?email=owner@example.com&ui=1")
    assert status == 500 and "different" in text


async def test_prod_mode_refuses_dev_alias_and_account_init(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, prod=True)))
    prod = Api(client)
    status, text = await prod.call("GET", "/sudolistall", DEV_ROOT_TOKEN)
    assert status == 401 and "not in dev mode" in text
    status, text = await prod.call("GET", "/account/init?email=x@example.com&ui=1")
    assert status == 403


async def test_cors(api):
    resp = await api.client.options("/db/tasks", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "post",
        "Access-Control-Request-Headers": "sb-public-key,authorization"})
    assert resp.status == 200 and await resp.text() == ""
    assert resp.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert resp.headers["Access-Control-Allow-Methods"] == "POST"
    assert resp.headers["Access-Control-Allow-Headers"] == "sb-public-key,authorization"
    resp = await api.client.get("/me", headers={"Origin": "http://app.example"})
    assert resp.status == 401 and resp.headers["Access-Control-Allow-Origin"] == "http://app.example"
    resp = await api.client.get("/sudolistall", headers={"Origin": "http://app.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_ping_and_unknown_route(api):
    resp = await api.client.get("/ping")
    assert resp.status == 200 and await resp.text() == "true"
    resp = await api.client.get("/no/such/route")
    assert resp.status == 404 and resp.headers["Content-Type"].startswith("text/plain")
