"""Account associations: a user in several accounts, login with accountId, promote."""

from __future__ import annotations

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config

WRONG = "invalid email, password or account\n"


async def _me(api: Api, token: str) -> dict:
    status, me = await api.call("GET", "/me", token)
    assert status == 200, me
    return me


async def _two_accounts(api: Api) -> tuple[str, str, dict]:
    """A user who has its own account and joined another one: (owner token, user token, user's own me)."""
    owner = await api.register("owner@example.com", "owner-pw")
    user = await api.register("joiner@example.com", "joiner-pw")
    status, added = await api.call("POST", "/account/users", owner,
                                   json={"email": "Joiner@example.com", "password": "joiner-pw"})
    assert status == 200, added
    return owner, user, await _me(api, user)


async def login(api: Api, email: str, password: str, account_id: object = None) -> tuple[int, object]:
    body = {"email": email, "password": password}
    if account_id is not None:
        body["accountId"] = account_id
    return await api.call("POST", "/login", json=body)


async def test_a_fresh_user_has_one_association_without_a_token(api):
    token = await api.register("solo@example.com")
    me = await _me(api, token)
    status, found = await api.call("GET", "/account/associations", token)
    assert status == 200
    assert found == [{"id": me["userId"], "userId": me["userId"], "accountId": me["accountId"],
                      "email": "solo@example.com", "role": 50, "token": ""}]


async def test_an_existing_user_joins_with_its_password_and_logs_in_to_either_account(api):
    owner, user, own = await _two_accounts(api)
    owner_account = (await _me(api, owner))["accountId"]
    status, found = await api.call("GET", "/account/associations", user)
    assert [(a["accountId"], a["role"], a["token"]) for a in found] == [(own["accountId"], 50, ""),
                                                                       (owner_account, 0, "")]
    status, token = await login(api, "joiner@example.com", "joiner-pw", owner_account)
    assert status == 200
    joined = await _me(api, token)
    assert (joined["accountId"], joined["role"], joined["userId"]) == (owner_account, 0, own["userId"])
    status, token = await login(api, "joiner@example.com", "joiner-pw")
    assert (await _me(api, token))["accountId"] == own["accountId"]
    status, token = await login(api, "joiner@example.com", "joiner-pw", own["accountId"])
    assert (await _me(api, token))["accountId"] == own["accountId"]
    status, users = await api.call("GET", "/account/users", owner)
    assert [(u["email"], u["accountId"], u["role"]) for u in users] == [
        ("owner@example.com", owner_account, 50), ("joiner@example.com", owner_account, 0)]
    assert all("token" not in u for u in users)


async def test_documents_follow_the_account_a_session_acts_in(api):
    owner, _user, _own = await _two_accounts(api)
    status, token = await login(api, "joiner@example.com", "joiner-pw", (await _me(api, owner))["accountId"])
    status, doc = await api.call("POST", "/db/notes", token, json={"text": "for the team"})
    assert status == 201
    status, listed = await api.call("GET", "/db/notes", owner)
    assert [d["id"] for d in listed["results"]] == [doc["id"]]  # account-read (740): the owner sees it
    own_token = (await login(api, "joiner@example.com", "joiner-pw"))[1]
    status, listed = await api.call("GET", "/db/notes", own_token)
    assert listed["results"] in (None, [])


@pytest.mark.parametrize("password, account, why", [
    ("joiner-pw", "no-such-account", "an account that does not exist"),
    ("joiner-pw", "OTHER", "an account the user is no member of"),
    ("wrong-pw", "OWNER", "a wrong password with a right account"),
    ("wrong-pw", "no-such-account", "both wrong"),
])
async def test_login_with_a_wrong_account_or_password_says_the_same(api, password, account, why):
    owner, _user, _own = await _two_accounts(api)
    other = await api.register("other@example.com")
    accounts = {"OWNER": (await _me(api, owner))["accountId"], "OTHER": (await _me(api, other))["accountId"]}
    status, text = await login(api, "joiner@example.com", password, accounts.get(account, account))
    assert (status, text) == (401, WRONG), why


@pytest.mark.parametrize("account_id, status, message", [
    (5, 400, "accountId must be a string"),
    (["a"], 400, "accountId must be a string"),
    ("", 200, None),  # as if none were given: the user's own account
])
async def test_login_account_id_types(api, account_id, status, message):
    await api.register("typed@example.com", "typed-pw")
    got, text = await api.call("POST", "/login", json={"email": "typed@example.com", "password": "typed-pw",
                                                       "accountId": account_id})
    assert got == status and (message is None or message in text)


async def test_joining_needs_the_users_password_and_happens_once(api):
    owner = await api.register("boss2@example.com")
    await api.register("wanted@example.com", "wanted-pw")
    status, text = await api.call("POST", "/account/users", owner,
                                  json={"email": "wanted@example.com", "password": "guessed-pw"})
    assert (status, text) == (400, "email already in use\n")
    status, text = await login(api, "wanted@example.com", "wanted-pw", (await _me(api, owner))["accountId"])
    assert (status, text) == (401, WRONG)  # nothing was joined
    assert (await api.call("POST", "/account/users", owner,
                           json={"email": "wanted@example.com", "password": "wanted-pw"}))[0] == 200
    status, text = await api.call("POST", "/account/users", owner,
                                  json={"email": "wanted@example.com", "password": "wanted-pw"})
    assert status == 400 and "member of this account already" in text
    own_session = (await login(api, "wanted@example.com", "wanted-pw"))[1]
    status, text = await api.call("POST", "/account/users", own_session,
                                  json={"email": "wanted@example.com", "password": "wanted-pw"})
    assert status == 400 and "member of this account already" in text  # its own account


async def test_guessing_a_password_through_account_users_is_limited(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, auth_throttle_account_failures=2)))
    api = Api(client)
    owner = await api.register("guesser@example.com")
    await api.register("target@example.com", "target-pw")
    answers = [(await api.call("POST", "/account/users", owner,
                               json={"email": "target@example.com", "password": f"guess-{n}"}))[0] for n in range(3)]
    assert answers == [400, 400, 429]
    status, _ = await api.call("POST", "/account/users", owner,
                               json={"email": "target@example.com", "password": "target-pw"})
    assert status == 429  # even the right one, until the window passes


async def test_removing_a_joined_member_ends_its_sessions_there_only(api):
    owner, user, own = await _two_accounts(api)
    status, joined_token = await login(api, "joiner@example.com", "joiner-pw", (await _me(api, owner))["accountId"])
    status, text = await api.call("DELETE", f"/account/users/{(await _me(api, owner))['userId']}", joined_token)
    assert status == 401 and "permission level" in text  # role 0 there cannot remove the admin
    assert await api.call("DELETE", f"/account/users/{own['userId']}", owner) == (200, True)
    status, text = await api.call("GET", "/me", joined_token)
    assert status == 400 and "no longer a member" in text
    assert (await _me(api, user))["accountId"] == own["accountId"]  # its own account and user stay
    status, found = await api.call("GET", "/account/associations", user)
    assert len(found) == 1
    status, _ = await api.call("DELETE", f"/account/users/{own['userId']}", owner)
    assert status == 404


async def test_a_password_reset_ends_sessions_in_every_account(api):
    owner, _user, _own = await _two_accounts(api)
    status, joined_token = await login(api, "joiner@example.com", "joiner-pw", (await _me(api, owner))["accountId"])
    status, code = await api.root("GET", "/password/resetcode?e=joiner@example.com")
    assert (await api.call("POST", "/password/reset",
                           json={"email": "joiner@example.com", "code": code, "password": "new-pw-1"}))[0] == 200
    status, text = await api.call("GET", "/me", joined_token)
    assert status == 400 and "invalid authentication token" in text


async def test_deleting_a_user_removes_its_memberships(api):
    owner, user, own = await _two_accounts(api)
    assert await api.call("DELETE", f"/account/users/{own['userId']}", user) == (200, True)  # deletes itself
    assert (await api.call("GET", "/account/users", owner))[1][0]["email"] == "owner@example.com"
    assert len((await api.call("GET", "/account/users", owner))[1]) == 1


async def test_promote_gives_a_member_an_account_of_its_own_once(api):
    owner = await api.register("lead@example.com")
    status, member = await api.call("POST", "/account/users", owner,
                                    json={"email": "member@example.com", "password": "member-pw"})
    status, token = await login(api, "member@example.com", "member-pw")
    status, promoted = await api.call("POST", "/account/promote", token)
    assert status == 200 and isinstance(promoted, str)
    me = await _me(api, promoted)
    assert me["role"] == 50 and me["accountId"] not in (member["accountId"],) and me["userId"] == member["id"]
    status, found = await api.call("GET", "/account/associations", token)
    assert [(a["accountId"], a["role"]) for a in found] == [(member["accountId"], 0), (me["accountId"], 50)]
    status, text = await api.call("POST", "/account/promote", token)
    assert status == 400 and "administer an account already" in text
    status, again = await login(api, "member@example.com", "member-pw", me["accountId"])
    assert (await _me(api, again))["role"] == 50
    status, sudo = await api.root("GET", f"/sudogettoken/{me['accountId']}")
    assert status == 200 and (await _me(api, sudo))["accountId"] == me["accountId"]


async def test_an_account_admin_cannot_promote(api):
    token = await api.register("already@example.com")
    status, text = await api.call("POST", "/account/promote", token)
    assert status == 400 and "administer an account already" in text
    status, found = await api.call("GET", "/account/associations", token)
    assert len(found) == 1


@pytest.mark.parametrize("method, path", [("GET", "/account/associations"), ("POST", "/account/promote")])
@pytest.mark.parametrize("token, status, message", [
    (None, 401, "missing authorization"),
    ("forged.token", 400, "error validating auth key"),
])
async def test_association_routes_need_a_session(api, method, path, token, status, message):
    got, text = await api.call(method, path, token)
    assert got == status and message in text


@pytest.mark.parametrize("method, path", [
    ("GET", "/oauth/login?provider=google&reqid=R123456&sbpk=dev_memory_pk"),
    ("GET", "/oauth/get-user?reqid=R123456"),
    ("POST", "/oauth/callback/google"),
    ("GET", "/oauth/"),
])
async def test_social_login_is_501_with_a_clear_message(api, method, path):
    resp = await api.client.request(method, path, headers={"Origin": "https://site.example"})
    assert resp.status == 501 and resp.headers["Access-Control-Allow-Origin"] == "https://site.example"
    assert "social login (/oauth/*) is not supported by sblite yet" in await resp.text()
    assert resp.content_type == "text/plain"


@pytest.mark.parametrize("method, path, reason", [
    ("POST", "/extra/sms", "Twilio"),
    ("POST", "/stripe", "no billing"),
    ("GET", "/account/portal", "no billing"),
    ("GET", "/account/auth", "hosted sign-up"),
    ("POST", "/account/add-db", "/account/init"),
])
async def test_hosted_service_routes_are_501_with_their_reason(api, method, path, reason):
    resp = await api.client.request(method, path, headers={"Origin": "https://site.example"})
    assert resp.status == 501 and reason in await resp.text()


async def test_root_sets_a_role_in_one_account_with_setrole_account_id(api):
    owner, user, own = await _two_accounts(api)
    owner_account = (await _me(api, owner))["accountId"]
    status, admin = await login(api, "admin@dev.com", "devpw1234")
    assert await api.call("POST", "/setrole", admin, json={"email": "joiner@example.com", "role": 30,
                                                           "accountId": owner_account}) == (200, True)
    status, there = await login(api, "joiner@example.com", "joiner-pw", owner_account)
    assert (await _me(api, there))["role"] == 30
    assert (await _me(api, user))["role"] == 50  # its own account's role is its own
    status, text = await api.call("POST", "/setrole", admin, json={"email": "owner@example.com", "role": 30,
                                                                   "accountId": own["accountId"]})
    assert status == 404 and "no member of this account" in text
    status, text = await api.call("POST", "/setrole", admin, json={"email": "joiner@example.com", "role": 30,
                                                                   "accountId": 5})
    assert status == 400 and "accountId must be a string" in text


async def test_setrole_in_a_joined_account_reaches_the_sessions_already_acting_there(api):
    owner, _user, _own = await _two_accounts(api)
    owner_account = (await _me(api, owner))["accountId"]
    _status, there = await login(api, "joiner@example.com", "joiner-pw", owner_account)
    assert (await _me(api, there))["role"] == 0
    _status, admin = await login(api, "admin@dev.com", "devpw1234")
    assert await api.call("POST", "/setrole", admin, json={"email": "joiner@example.com", "role": 30,
                                                           "accountId": owner_account}) == (200, True)
    assert (await _me(api, there))["role"] == 30
