"""The dashboard over HTTP: its files, signing in and out, the session cookie as root with CSRF, /overview."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from sblite.app import create_app
from sblite.dashboard.sessions import Sessions
from tests.conftest import Api, make_config
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_PK, DEV_ROOT_TOKEN

JSON = {"Content-Type": "application/json"}


async def sign_in(api: Api, body: dict | None = None, **headers: str) -> tuple[int, dict | str, SimpleCookie]:
    """POST /_/session; (status, answer, the Set-Cookie headers parsed)."""
    body = body if body is not None else {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}
    resp = await api.client.post("/_/session", json=body, headers=headers)
    cookies: SimpleCookie = SimpleCookie()
    for header in resp.headers.getall("Set-Cookie", []):
        cookies.load(header)
    answer = await resp.json() if resp.status == 200 else await resp.text()
    return resp.status, answer, cookies


async def test_the_page_and_its_files_are_served_with_a_strict_policy(api: Api) -> None:
    for path in ("/", "/_/"):
        resp = await api.client.get(path)
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert '<script type="module" src="/_/app.js">' in await resp.text()
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")):
        resp = await api.client.get(f"/_/{name}")
        assert (resp.status, resp.content_type) == (200, kind), name
    for bad in ("/_/nope.js", "/_/index.html", "/_/sessions.py", "/_/__init__.py", "/_/..%2Fapp.py", "/_/.js"):
        resp = await api.client.get(bad)
        assert resp.status == 404, bad


async def test_sign_in_sets_a_strict_http_only_cookie_and_answers_the_csrf_token(api: Api) -> None:
    status, answer, cookies = await sign_in(api)
    assert status == 200, answer
    assert answer["pk"] == DEV_PK and answer["email"] == DEV_ADMIN_EMAIL and answer["devMode"] is True
    morsel = cookies["sblite_session"]
    assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP here: a Secure cookie would never come back
    resp = await api.client.get("/_/session")
    assert (await resp.json())["csrf"] == answer["csrf"]


@pytest.mark.parametrize("trusted, secure", [(("127.0.0.1",), True), ((), False), (("10.0.0.0/8",), False)])
async def test_the_cookie_is_secure_when_a_trusted_proxy_says_the_browser_came_over_https(
        aiohttp_client, tmp_path, trusted: tuple[str, ...], secure: bool) -> None:
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, trusted_proxies=trusted))))
    _, _, cookies = await sign_in(api, **{"X-Forwarded-Proto": "https"})
    assert bool(cookies["sblite_session"]["secure"]) is secure


async def test_sign_in_with_the_root_token_or_the_dev_alias(api: Api) -> None:
    status, answer, _ = await sign_in(api, {"token": DEV_ROOT_TOKEN})
    assert status == 200 and answer["via"] == "root"
    resp = await api.client.get("/overview", headers={"SB-PUBLIC-KEY": DEV_PK})
    real = (await resp.json())["rootToken"]
    api.client.session.cookie_jar.clear()
    status, answer, _ = await sign_in(api, {"token": real})
    assert status == 200 and answer["email"] == DEV_ADMIN_EMAIL


@pytest.mark.parametrize("body, status, message", [
    ({"email": DEV_ADMIN_EMAIL, "password": "wrong-password"}, 401, "invalid email/password"),
    ({"email": "nobody@example.com", "password": DEV_ADMIN_PASSWORD}, 401, "invalid email/password"),
    ({"token": "a|b|c"}, 401, "invalid root token"),
    ({"token": "not a root token"}, 401, "invalid root token"),
    ({"token": ""}, 400, "token must be a non-empty string"),
    ({"token": 5}, 400, "token must be a non-empty string"),
    ({"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD, "pk": "no-such-pk"}, 400, "no app has this public key"),
    ({"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD, "pk": 7}, 400, "pk must be a string"),
    (["not", "an", "object"], 400, "expected a JSON object"),
])
async def test_a_failed_sign_in_is_a_readable_4xx_and_sets_no_cookie(api: Api, body, status: int,
                                                                     message: str) -> None:
    got, answer, cookies = await sign_in(api, body)
    assert (got, "sblite_session" in cookies) == (status, False)
    assert message in answer


async def test_sign_in_needs_a_json_content_type(api: Api) -> None:
    resp = await api.client.post("/_/session", data=f'{{"token": "{DEV_ROOT_TOKEN}"}}',
                                 headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and "Set-Cookie" not in resp.headers


async def test_a_user_who_is_not_the_admin_cannot_sign_in(api: Api) -> None:
    await api.register("member@example.com", "member-pw")
    status, answer, cookies = await sign_in(api, {"email": "member@example.com", "password": "member-pw"})
    assert status == 403 and "admin" in answer and "sblite_session" not in cookies


async def test_sign_in_is_throttled_like_login(api: Api) -> None:
    bad = {"email": DEV_ADMIN_EMAIL, "password": "wrong-password"}
    for _ in range(5):  # auth_throttle_account_failures
        assert (await sign_in(api, bad))[0] == 401
    status, answer, _ = await sign_in(api)  # even the right password waits now
    assert status == 429, answer
    resp = await api.client.post("/login", json=bad, headers={"SB-PUBLIC-KEY": DEV_PK})
    assert resp.status == 429  # one set of limits for both doors


async def test_the_cookie_is_root_for_reads_and_csrf_guards_every_change(api: Api) -> None:
    _, answer, _ = await sign_in(api)
    headers = {"SB-PUBLIC-KEY": DEV_PK, **JSON}
    resp = await api.client.get("/fn", headers=headers)
    assert resp.status == 200
    fn = {"name": "hello", "trigger": "web", "code": "function handle() { return 1; }"}
    for csrf in (None, "", "wrong", answer["csrf"][:-1]):
        extra = {} if csrf is None else {"X-CSRF-Token": csrf}
        resp = await api.client.post("/fn/add", json=fn, headers={**headers, **extra})
        assert resp.status == 403, csrf
        assert "X-CSRF-Token" in await resp.text()
    assert await (await api.client.get("/fn", headers=headers)).json() == []
    resp = await api.client.post("/fn/add", json=fn, headers={**headers, "X-CSRF-Token": answer["csrf"]})
    assert resp.status == 200, await resp.text()


async def test_a_bearer_request_never_reads_the_cookie(api: Api) -> None:
    await sign_in(api)
    fn = {"name": "hello", "trigger": "web", "code": "function handle() { return 1; }"}
    status, _ = await api.root("POST", "/fn/add", json=fn)  # cookie sent too, no CSRF token: not needed
    assert status == 200
    status, text = await api.call("POST", "/fn/add", token="a|b|c", json={**fn, "name": "other"})
    assert status == 400 and "invalid root token" in text  # a bad Bearer is not rescued by the cookie


async def test_without_a_session_the_cookie_gives_nothing(api: Api) -> None:
    api.client.session.cookie_jar.update_cookies({"sblite_session": "made-up"})
    resp = await api.client.get("/fn", headers={"SB-PUBLIC-KEY": DEV_PK})
    assert resp.status == 401 and "sign in again" in await resp.text()
    assert (await api.client.get("/_/session")).status == 401


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(api: Api) -> None:
    _, answer, _ = await sign_in(api)
    cookie = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/"))["sblite_session"].value
    resp = await api.client.delete("/_/session")
    assert resp.status == 403
    resp = await api.client.delete("/_/session", headers={"X-CSRF-Token": answer["csrf"]})
    assert resp.status == 200
    assert (await api.client.get("/_/session")).status == 401
    api.client.session.cookie_jar.update_cookies({"sblite_session": cookie})  # a copy kept elsewhere
    resp = await api.client.get("/fn", headers={"SB-PUBLIC-KEY": DEV_PK})
    assert resp.status == 401


async def test_a_password_change_ends_the_admins_sessions(api: Api) -> None:
    await sign_in(api)
    status, code = await api.root("GET", f"/password/resetcode?e={DEV_ADMIN_EMAIL}")
    assert status == 200
    status, _ = await api.call("POST", "/password/reset",
                               json={"email": DEV_ADMIN_EMAIL, "code": code, "password": "a-new-password"})
    assert status == 200
    assert (await api.client.get("/_/session")).status == 401


async def test_overview_counts_what_the_app_has(api: Api) -> None:
    status, before = await api.root("GET", "/overview")
    assert status == 200
    assert before["pk"] == DEV_PK and before["devMode"] is True and before["rootToken"].count("|") == 2
    assert before["counts"] == {"users": 1, "collections": 0, "documents": 0, "functions": 0, "tasks": 0,
                                "connections": 0}
    token = await api.register()
    for col, n in (("notes", 3), ("pets", 1)):
        for i in range(n):
            assert (await api.call("POST", f"/db/{col}", token=token, json={"i": i}))[0] == 201
    status, doc = await api.call("POST", "/db/pets", token=token, json={"i": 9})
    assert (await api.call("DELETE", f"/db/pets/{doc['id']}", token=token))[0] == 200
    fn = {"name": "hello", "trigger": "web", "code": "function handle() { return 1; }"}
    assert (await api.root("POST", "/fn/add", json=fn))[0] == 200
    assert (await api.root("POST", "/tasks", json={"name": "tick", "type": "message", "value": "tick",
                                                   "meta": {"channel": "lobby", "data": "hi"},
                                                   "interval": "@every 1h"}))[0] == 200
    _, after = await api.root("GET", "/overview")
    assert after["counts"] == {"users": 2, "collections": 2, "documents": 4, "functions": 1, "tasks": 1,
                               "connections": 0}


async def test_overview_is_root_only(api: Api) -> None:
    status, text = await api.call("GET", "/overview", token=await api.register())
    assert status == 400 and "invalid root token" in text
    assert (await api.call("GET", "/overview"))[0] == 401


def test_sessions_expire_and_are_bounded() -> None:
    now = [0.0]
    sessions = Sessions(10, max_sessions=2, clock=lambda: now[0])
    first = sessions.open(pk="pk", kind="root", credential="t", email="e")
    second = sessions.open(pk="pk", kind="root", credential="t", email="e")
    assert first.id != second.id and first.csrf != second.csrf and sessions.get(first.id) == first
    sessions.open(pk="pk", kind="root", credential="t", email="e")
    assert sessions.get(first.id) is None and len(sessions) == 2  # the oldest went
    now[0] = 11
    assert sessions.get(second.id) is None


async def test_live_channels_lists_the_channels_with_members_and_their_rule(api: Api, clients) -> None:
    assert (await api.root("PUT", "/channels/room-*", {"auth": False, "history": 5}))[0] == 200
    token = await api.register("member@example.com")
    first, second = await clients(api, "ws", token), await clients(api, "sse", token)
    for client in (first, second):
        assert (await client.join("lobby"))["type"] == "ok"
    assert (await second.join("room-1"))["type"] == "ok"
    status, found = await api.root("GET", "/realtime/channels")
    assert status == 200
    assert found == [
        {"channel": "lobby", "members": 2, "rule": {"name": "*", "auth": True, "publish": "members", "history": 0}},
        {"channel": "room-1", "members": 1,
         "rule": {"name": "room-*", "auth": False, "publish": "members", "history": 5}},
    ]
    await second.send("leave", "room-1")
    await second.next("ok")
    assert [c["channel"] for c in (await api.root("GET", "/realtime/channels"))[1]] == ["lobby"]
    refused = await api.call("GET", "/realtime/channels", token=token)
    assert refused == await api.call("GET", "/channels", token=token) and refused[0] == 400  # root only, like /channels


async def test_root_lists_adds_changes_the_role_of_and_removes_the_app_users(api: Api) -> None:
    await api.register("first@example.com")
    status, created = await api.root("POST", "/users", {"email": "Added@Example.com", "password": "secret-pw",
                                                         "role": 0})
    assert status == 200 and created["email"] == "added@example.com" and created["role"] == 0
    assert set(created) == {"id", "accountId", "email", "role", "created"}  # never a token or a hash
    assert (await api.call("POST", "/login", json={"email": "added@example.com", "password": "secret-pw"}))[0] == 200

    status, page = await api.root("GET", "/users?page=1&size=2")
    assert status == 200 and page["total"] == 3 and len(page["results"]) == 2
    assert page["results"][0]["email"] == DEV_ADMIN_EMAIL  # oldest first
    _, rest = await api.root("GET", "/users?page=2&size=2")
    assert [u["email"] for u in rest["results"]] == ["added@example.com"]
    assert "token" not in str(page) and "hash" not in str(page)

    status, changed = await api.root("PUT", f"/users/{created['id']}", {"role": 50})
    assert status == 200 and changed["role"] == 50
    admin_id = page["results"][0]["id"]
    for method, path, body in (("PUT", f"/users/{created['id']}", {"role": 101}),
                               ("PUT", f"/users/{created['id']}", {"role": "50"}),
                               ("PUT", f"/users/{admin_id}", {"role": 0}),
                               ("DELETE", f"/users/{admin_id}", None),
                               ("POST", "/users", {"email": "first@example.com", "password": "secret-pw"}),
                               ("POST", "/users", {"email": "x@example.com", "password": "secret-pw", "role": 7.5}),
                               ("POST", "/users", [])):
        status, text = await api.root(method, path, body)
        assert status == 400, (method, path, body, text)
    assert (await api.root("GET", "/users?size=10"))[1]["total"] == 3  # the refused add left nothing behind
    assert (await api.root("DELETE", "/users/nope"))[0] == 404

    assert (await api.root("DELETE", f"/users/{created['id']}")) == (200, True)
    assert (await api.call("POST", "/login", json={"email": "added@example.com", "password": "secret-pw"}))[0] == 401
    assert (await api.root("GET", "/users"))[1]["total"] == 2
    token = await api.register("member@example.com")
    assert (await api.call("GET", "/users", token=token))[0] == 400  # root only
