"""Every function run starts from pristine built-ins and host globals (issue 11, item 3).

One user's run changes something shared; the next run of the same function, on the same worker
(the pool has one) and made by another user, must not see the change.
"""

from __future__ import annotations

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.function_helpers import add_function, exec_fn

SECRET = "s3cret-of-the-first-caller"

# The function: a call with a secret makes the change, then every call answers the probe.
# `top` is the function the source's top level runs in (sloppy mode lets it be reached); the
# check when adding evaluates the source as a script, where there is no `arguments`.
SOURCE = """var top = typeof arguments === "object" ? arguments.callee : {};
function handle(body) {
  if (body.secret) { %s }
  return %s;
}"""

# (case, the change made with `body.secret`, the probe (the secret once changed), its pristine value)
CASES = [
    ("Array.prototype", "Array.prototype.leak = body.secret;", "String([].leak)", "undefined"),
    ("Object.prototype", "Object.prototype.leak = body.secret;", "String(({}).leak)", "undefined"),
    ("Object.prototype getter", 'Object.defineProperty(Object.prototype, "leak", {get: function () '
     "{ return body.secret; }});", "String(({}).leak)", "undefined"),
    ("Function.prototype", "Function.prototype.leak = body.secret;", "String((function () {}).leak)",
     "undefined"),
    ("symbol-keyed property", 'Array.prototype[Symbol.for("leak")] = body.secret;',
     'String([][Symbol.for("leak")])', "undefined"),
    ("%IteratorPrototype%", "Object.getPrototypeOf(Object.getPrototypeOf([].values())).leak = body.secret;",
     "String([].values().leak)", "undefined"),
    ("JSON.stringify", "JSON.stringify = function () { return body.secret; };", "JSON.stringify({a: 1})",
     '{"a":1}'),
    ("Math.random", "Math.random = function () { return body.secret; };",
     'typeof Math.random() === "number" ? "a number" : Math.random()', "a number"),
    ("host global log", "log = function () { return body.secret; };", 'String(log("x"))', "undefined"),
    ("host global create", "create = function () { return {ok: body.secret}; };",
     'String(create("isolation", {n: 1}).ok)', "true"),
    ("env redefined",
     'Object.defineProperty(globalThis, "env", {value: {leak: body.secret}, writable: false});',
     "String(env.leak)", "undefined"),
    ("non-configurable new global", 'Object.defineProperty(globalThis, "leak", {value: body.secret});',
     "String(globalThis.leak)", "undefined"),
    ("the top-level function", "top.leak = body.secret;", "String(top.leak)", "undefined"),
]


@pytest.fixture
async def one_worker(aiohttp_client, tmp_path) -> Api:
    """An app whose functions all run on a single worker process."""
    return Api(await aiohttp_client(create_app(make_config(tmp_path, functions_workers=1))))


@pytest.mark.parametrize(("change", "probe", "pristine"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
async def test_a_run_does_not_see_what_an_earlier_run_changed(one_worker, change, probe, pristine):
    api = one_worker
    await add_function(api, "shared", SOURCE % (change, probe))
    first, second = await api.register(), await api.register()

    assert await exec_fn(api, "shared", first, {"secret": SECRET}) == (200, SECRET)
    assert await exec_fn(api, "shared", second, {}) == (200, pristine)
    assert await exec_fn(api, "shared", first, {}) == (200, pristine)
