"""Every route's declared policy holds on the wire: CORS only where declared, root and user checks."""

from __future__ import annotations

import re

import pytest

from sblite.http.policy import ROUTE_POLICIES, Access, Policy
from tests.conftest import Api
from tests.function_helpers import add_function, info

ORIGIN = "https://app.example"
SAMPLES = {"col": "tasks", "id": "some-id", "name": "f", "user_id": "some-user", "account_id": "some-account"}

SAMPLES["form"] = "contact"  # POST /postform/{form}
SAMPLES["path"] = "login"  # /oauth/{path}
SAMPLES.update(app="some-app", account="some-account", file="some-file")  # GET /localfs/{app}/{account}/{file}


def _routes(api: Api) -> list[tuple[str, str, Policy]]:
    """(method, concrete path, policy) for every route of the app, preflight routes apart."""
    policies = api.client.app[ROUTE_POLICIES]
    found = []
    for route in api.client.app.router.routes():
        if route.method == "OPTIONS":
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], route.resource.canonical)
        found.append(("GET" if route.method == "*" else route.method, path, policies[route]))
    return found


async def test_every_route_declares_a_policy_and_root_routes_have_no_cors(api):
    routes = list(api.client.app.router.routes())
    assert routes and all(route in api.client.app[ROUTE_POLICIES] for route in routes)
    assert all(not policy.cors for _, _, policy in _routes(api) if policy.access is Access.ROOT)


async def test_cors_headers_follow_the_declared_policy_on_every_route(api):
    problems = []
    for method, path, policy in _routes(api):
        resp = await api.client.request(method, path, headers={**api.headers(), "Origin": ORIGIN})
        echoed = resp.headers.get("Access-Control-Allow-Origin")
        if (echoed == ORIGIN) != policy.cors:
            problems.append((method, path, "cors", resp.status, echoed))
        if resp.headers.get("X-Content-Type-Options") != "nosniff":
            problems.append((method, path, "nosniff", resp.status))
        resp.close()
        preflight = await api.client.options(path, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type,sb-public-key"})
        allowed = preflight.headers.get("Access-Control-Allow-Origin") == ORIGIN
        if allowed != policy.cors or (policy.cors and preflight.status != 200):
            problems.append((method, path, "preflight", preflight.status))
        preflight.close()
    assert problems == []


async def test_root_routes_refuse_no_token_and_user_tokens_and_change_nothing(api):
    await add_function(api, "f", "function handle() { return 'kept'; }")
    user = await api.register()
    problems = []
    for method, path, policy in _routes(api):
        if policy.access is not Access.ROOT:
            continue
        status, text = await api.call(method, path, None, json={"name": "f", "code": "x"})
        if status != 401:
            problems.append((method, path, "no token", status, text))
        status, text = await api.call(method, path, user, json={"name": "f", "code": "x"})
        if status not in (400, 401) or "root" not in text:
            problems.append((method, path, "user token", status, text))
    assert problems == []
    fn = await info(api, "f")
    assert (fn["version"], fn["code"]) == (1, "function handle() { return 'kept'; }")


async def test_user_routes_refuse_a_caller_without_a_token(api):
    problems = []
    for method, path, policy in _routes(api):
        if policy.access is Access.USER:
            status, text = await api.call(method, path, None, json={})
            if status != 401:
                problems.append((method, path, status, text))
    assert problems == []


@pytest.mark.parametrize("method, path", [
    ("GET", "/fn/jobs"), ("POST", "/fn/jobs/some-id/replay"), ("GET", "/sudogettoken/x"),
    ("GET", "/metrics"), ("GET", "/fn/runs"),
])
async def test_root_only_routes_never_echo_an_origin(api, method, path):
    resp = await api.client.request(method, path, headers={**api.headers(), "Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in resp.headers
    preflight = await api.client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": method})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.mark.parametrize("path", ["/login", "/register", "/db/tasks", "/query/tasks", "/fn/exec/f", "/sse/msg"])
async def test_client_routes_answer_preflights_with_the_origin(api, path):
    resp = await api.client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "authorization"})
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert resp.headers["Access-Control-Allow-Headers"] == "authorization"
