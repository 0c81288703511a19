"""Forms: POST /postform/{form} (urlencoded and multipart), GET /form for root, the per-address limit."""

from __future__ import annotations

import aiohttp
import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.support import DEV_PK, DEV_ROOT_TOKEN

URLENCODED = {"SB-PUBLIC-KEY": DEV_PK, "Content-Type": "application/x-www-form-urlencoded"}


async def post(api: Api, form: str, body: bytes | aiohttp.FormData | str,
               headers: dict[str, str] | None = None) -> tuple[int, str]:
    sent = URLENCODED if isinstance(body, (bytes, str)) and headers is None else {"SB-PUBLIC-KEY": DEV_PK}
    resp = await api.client.post(f"/postform/{form}", data=body, headers={**sent, **(headers or {})})
    return resp.status, await resp.text()


async def listed(api: Api, query: str = "") -> list[dict]:
    status, found = await api.root("GET", f"/form{query}")
    assert status == 200, found
    return found


async def test_urlencoded_and_multipart_are_stored_and_listed_newest_first(api):
    assert await post(api, "contact", b"email=a%40b.co&msg=hello+there&tag=x&tag=y&_hp_=") == (200, "true")
    form = aiohttp.FormData()
    form.add_field("email", "c@d.co")
    form.add_field("msg", "caf\u00e9")
    assert await post(api, "signup", form) == (200, "true")
    found = await listed(api)
    assert [f["sb_form"] for f in found] == ["signup", "contact"]
    assert found[0]["email"] == "c@d.co" and found[0]["msg"] == "caf\u00e9"
    contact = found[1]
    assert {k: contact[k] for k in ("email", "msg", "tag")} == {"email": "a@b.co", "msg": "hello there", "tag": "x, y"}
    assert "_hp_" not in contact and contact["id"] and contact["sb_created"].endswith("Z")
    assert [f["sb_form"] for f in await listed(api, "?name=contact")] == ["contact"]


async def test_paging(api):
    for n in range(5):
        assert (await post(api, "many", f"n={n}"))[0] == 200
    assert [f["n"] for f in await listed(api, "?size=2")] == ["4", "3"]
    assert [f["n"] for f in await listed(api, "?size=2&page=3")] == ["0"]
    assert await listed(api, "?size=2&page=4") == []


@pytest.mark.parametrize("form, body, headers, status, message", [
    ("contact", b"email=a%40b.co&_hp_=bot", None, 400, "invalid form field present"),
    ("bad name", b"a=1", None, 400, "invalid form name"),
    ("x" * 101, b"a=1", None, 400, "invalid form name"),
    ("contact", b"", None, 400, "no fields"),
    ("contact", b"id=1", None, 400, "reserved"),
    ("contact", b"sb_form=other", None, 400, "reserved"),
    ("contact", b"=1", None, 400, "field name"),
    ("contact", b"a=%ff", None, 400, "UTF-8"),
    ("contact", "&".join(f"f{n}=1" for n in range(300)), None, 400, "at most 200"),
    ("contact", b'{"a": 1}', {"Content-Type": "application/json"}, 400, "is sent as"),
    ("contact", b"a=" + b"x" * 70_000, None, 413, "larger than 65536"),
    ("contact", b"--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--\r\n",
     {"Content-Type": "multipart/form-data; boundary=b"}, 400, "needs a name"),
    ("contact", b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\r\nv\r\n--b--\r\n",
     {"Content-Type": "multipart/form-data; boundary=b"}, 400, "is a file"),
    ("contact", b"garbage", {"Content-Type": "multipart/form-data"}, 400, "invalid form body"),
    ("contact", b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" + b"x" * 70_000 + b"\r\n--b--\r\n",
     {"Content-Type": "multipart/form-data; boundary=b"}, 413, "larger than"),
])
async def test_bad_submissions_are_refused_and_store_nothing(api, form, body, headers, status, message):
    got, text = await post(api, form, body, headers)
    assert got == status and message in text and text.endswith("\n"), text
    assert await listed(api) == []


async def test_a_chunked_body_past_the_limit_is_413(api):
    async def chunks():
        for _ in range(20):
            yield b"a=" + b"x" * 8192 + b"&"

    got, text = await post(api, "contact", chunks(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert got == 413 and "forms_max_bytes" in text
    assert await listed(api) == []


async def test_posting_needs_a_public_key_and_listing_needs_root(api):
    resp = await api.client.post("/postform/contact", data=b"a=1",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 401
    token = await api.register()
    status, text = await api.call("GET", "/form", token)
    assert status == 400 and "invalid root token" in text
    status, text = await api.call("GET", "/form?name=bad%20name", DEV_ROOT_TOKEN)
    assert status == 400 and "invalid form name" in text
    status, text = await api.call("GET", "/form?size=x", DEV_ROOT_TOKEN)
    assert status == 400 and "whole numbers" in text


async def test_one_address_is_limited_and_counted(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, forms_per_minute=3)))
    api = Api(client)
    answers = [(await post(api, "contact", f"n={n}"))[0] for n in range(4)]
    assert answers == [200, 200, 200, 429]
    resp = await client.post("/postform/contact", data=b"n=9", headers=URLENCODED)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert "too many form submissions" in await resp.text()
    assert len(await listed(api)) == 3
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    metrics = await resp.text()
    assert 'sblite_form_submissions_total{outcome="stored"} 3' in metrics
    assert 'sblite_form_submissions_total{outcome="refused"} 2' in metrics


async def test_cors_lets_a_page_elsewhere_post(api):
    resp = await api.client.options("/postform/contact", headers={"Origin": "https://site.example",
                                                                  "Access-Control-Request-Method": "POST"})
    assert resp.status == 200 and resp.headers["Access-Control-Allow-Origin"] == "https://site.example"
