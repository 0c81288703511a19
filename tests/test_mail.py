"""Mail: checked fields (header injection refused), delivery to a real SMTP server (aiosmtpd on loopback),
retries then parking, replay, the outbox kept without SMTP, and sendMail from a real function."""

from __future__ import annotations

from typing import Any

import pytest

from sblite.app import create_app
from sblite.errors import BadRequest
from sblite.mail import build, parse_mail
from tests.conftest import Api, make_config
from tests.function_helpers import add_function, eventually
from tests.smtp_server import Received, SmtpServer, self_signed
from tests.support import free_port

GOOD = {"from": "shop@example.com", "fromName": "The Shop", "to": "ann@example.org", "toName": "Ann Lee",
        "subject": "Your order", "textBody": "plain words", "htmlBody": "<p>rich words</p>",
        "replyTo": "help@example.com"}


async def mail_api(aiohttp_client: Any, tmp_path: Any, **settings: Any) -> Api:
    """An Api over an app with the given settings (SMTP ones, usually)."""
    return Api(await aiohttp_client(create_app(make_config(tmp_path, **settings))))


def smtp_settings(server: SmtpServer, **more: Any) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_security": "none", **more}


async def outbox(api: Api, query: str = "") -> dict:
    status, body = await api.root("GET", f"/mail/outbox{query}")
    assert status == 200, body
    return body


async def arrived(smtp: SmtpServer, count: int = 1, what: str = "the mail") -> list[Received]:
    """The messages the server received, once there are `count`."""
    async def probe() -> list[Received] | None:
        got = smtp.messages()
        return got if len(got) >= count else None
    return await eventually(probe, what=what)


async def mail_with(api: Api, mail_id: str, status: str) -> dict:
    async def probe() -> dict | None:
        _, mail = await api.root("GET", f"/mail/outbox/{mail_id}")
        return mail if mail["status"] == status else None
    return await eventually(probe, what=f"mail {mail_id} to be {status}")


# --- the fields, pure

# (what, a change to GOOD, the field the error names)
BAD_FIELDS = [
    ("not an object", None, "a mail is an object"),
    ("no to", {"to": None}, "to:"),
    ("to with two @", {"to": "a@b@example.org"}, "to:"),
    ("to without a domain dot", {"to": "ann@localhost"}, "to:"),
    ("to with a line break", {"to": "ann@example.org\r\nBcc: all@example.org"}, "to:"),
    ("to with a comma (two recipients)", {"to": "ann@example.org,bob@example.org"}, "to:"),
    ("to with a name inside", {"to": "Ann <ann@example.org>"}, "to:"),
    ("from with a line break", {"from": "shop@example.com\nX-Evil: 1"}, "from:"),
    ("replyTo with a line break", {"replyTo": "help@example.com\r\nBcc: all@example.org"}, "replyTo:"),
    ("subject with a line break", {"subject": "Hi\r\nBcc: all@example.org"}, "subject:"),
    ("subject with a lone LF", {"subject": "Hi\nBcc: all@example.org"}, "subject:"),
    ("subject with a unicode line separator", {"subject": "Hi\u2028Bcc: x"}, "subject:"),
    ("fromName with a line break", {"fromName": "Shop\r\nBcc: all@example.org"}, "fromName:"),
    ("toName with a CR", {"toName": "Ann\rBcc: all@example.org"}, "toName:"),
    ("no subject", {"subject": ""}, "subject:"),
    ("subject too long", {"subject": "s" * 501}, "subject:"),
    ("name too long", {"fromName": "n" * 201}, "fromName:"),
    ("no body at all", {"textBody": "", "htmlBody": None}, "textBody:"),
    ("body too long", {"htmlBody": "x" * (512 * 1024 + 1)}, "htmlBody:"),
    ("a number for the subject", {"subject": 5}, "subject:"),
    ("an unknown field", {"cc": "bob@example.org"}, "cc:"),
]


@pytest.mark.parametrize(("what", "change", "named"), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_fields_are_refused_naming_the_field(what: str, change: dict | None, named: str) -> None:
    fields = None if change is None else {**GOOD, **change}
    with pytest.raises(BadRequest) as caught:
        parse_mail(fields, "default@example.com")
    assert caught.value.message.startswith(named), caught.value.message


def test_built_message_has_names_reply_to_and_both_bodies() -> None:
    message = build(parse_mail(GOOD, "default@example.com"))
    assert message["From"] == "The Shop <shop@example.com>"
    assert message["To"] == "Ann Lee <ann@example.org>"
    assert message["Reply-To"] == "help@example.com"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]


def test_default_sender_and_non_ascii_names() -> None:
    mail = parse_mail({**GOOD, "from": "", "fromName": "Zoë — Café", "replyTo": None}, "default@example.com")
    message = build(mail)
    assert mail["from"] == "default@example.com" and "Reply-To" not in message
    assert "\n" not in message["From"].strip() and message["From"].addresses[0].display_name == "Zoë — Café"


# --- delivery through the app


async def test_sendmail_is_delivered_with_names_reply_to_and_both_bodies(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await mail_api(aiohttp_client, tmp_path, **smtp_settings(smtp))
        status, body = await api.root("POST", "/sudo/sendmail", json=GOOD)
        assert (status, body) == (200, True)
        got = (await arrived(smtp, what="the mail to arrive"))[0]
    assert got.sender == "shop@example.com" and got.recipients == ["ann@example.org"]
    assert got.message["From"] == "The Shop <shop@example.com>"
    assert got.message["To"] == "Ann Lee <ann@example.org>"
    assert got.message["Reply-To"] == "help@example.com"
    assert got.message["Subject"] == "Your order"
    assert got.body("plain").strip() == "plain words" and got.body("html").strip() == "<p>rich words</p>"
    listed = (await outbox(api, "?status=sent"))["results"]
    assert [(m["status"], m["origin"], m["attempts"], m["to"]) for m in listed] == [
        ("sent", "sudo", 1, "ann@example.org")]
    assert listed[0]["sent"]


async def test_only_the_newest_sent_mails_are_kept(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await mail_api(aiohttp_client, tmp_path, mail_keep_sent=2, **smtp_settings(smtp))
        for n in range(4):
            assert await api.root("POST", "/sudo/sendmail", json={**GOOD, "subject": f"sent {n}"}) == (200, True)
            await arrived(smtp, count=n + 1, what=f"mail {n}")

        async def newest_two() -> dict | None:
            page = await outbox(api, "?status=sent")
            return page if [m["subject"] for m in page["results"]] == ["sent 3", "sent 2"] else None
        assert (await eventually(newest_two, what="the two newest sent mails alone"))["total"] == 2


async def test_sendmail_body_fills_both_bodies(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await mail_api(aiohttp_client, tmp_path, **smtp_settings(smtp))
        mail = {"to": "ann@example.org", "subject": "One body", "body": "<b>hello</b>"}
        assert await api.root("POST", "/sudo/sendmail", json=mail) == (200, True)
        got = (await arrived(smtp, what="the mail"))[0]
    assert got.sender == "no-reply@sblite.local"  # mail_from
    assert got.body("plain").strip() == "<b>hello</b>" and got.body("html").strip() == "<b>hello</b>"


@pytest.mark.parametrize(("body", "named"), [
    ({**GOOD, "subject": "a\r\nBcc: x@example.org"}, "subject:"),
    ({**GOOD, "to": "nobody"}, "to:"),
    ({**GOOD, "replyTo": 3}, "replyTo:"),
    ([1, 2], "a mail is an object"),
])
async def test_sendmail_bad_input_is_400_naming_the_field_and_stores_nothing(api, body, named) -> None:
    status, text = await api.root("POST", "/sudo/sendmail", json=body)
    assert status == 400 and text.startswith(named), text
    assert (await outbox(api))["total"] == 0


async def test_sendmail_needs_root(api) -> None:
    user = await api.register()
    status, _ = await api.call("POST", "/sudo/sendmail", user, json=GOOD)
    assert status in (400, 401)
    assert (await api.call("GET", "/mail/outbox"))[0] == 401


async def test_starttls_with_login(aiohttp_client, tmp_path) -> None:
    made = self_signed(tmp_path)
    if made is None:
        pytest.skip("no openssl command to make a certificate with")
    tls, cert = made
    with SmtpServer(tls=tls, login=("mailer", "s3cret")) as smtp:
        api = await mail_api(aiohttp_client, tmp_path, **smtp_settings(
            smtp, smtp_security="starttls", smtp_ca_file=str(cert), smtp_user="mailer", smtp_password="s3cret"))
        assert await api.root("POST", "/sudo/sendmail", json=GOOD) == (200, True)
        got = (await arrived(smtp, what="the mail over STARTTLS"))[0]
    assert got.message["Subject"] == "Your order"


async def test_a_refusing_server_is_retried_then_parked_and_replay_delivers(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        smtp.recorder.refuse = True
        api = await mail_api(aiohttp_client, tmp_path, **smtp_settings(smtp, mail_max_attempts=2))
        await api.root("POST", "/sudo/sendmail", json=GOOD)
        mail_id = (await outbox(api))["results"][0]["id"]
        parked = await mail_with(api, mail_id, "parked")
        assert parked["attempts"] == 2 and parked["lastError"].startswith("550")
        assert smtp.messages() == []
        assert (await outbox(api, "?status=parked"))["total"] == 1
        smtp.recorder.refuse = False
        status, replayed = await api.root("POST", f"/mail/outbox/{mail_id}/replay")
        assert status == 200 and replayed["status"] == "queued"
        sent = await mail_with(api, mail_id, "sent")
        assert sent["attempts"] == 1 and len(smtp.messages()) == 1
        # Only parked (or kept) mail replays.
        assert (await api.root("POST", f"/mail/outbox/{mail_id}/replay"))[0] == 404


async def test_a_closed_port_is_retried_then_parked(aiohttp_client, tmp_path) -> None:
    api = await mail_api(aiohttp_client, tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(),  # nothing listens
                         smtp_security="none", mail_max_attempts=2)
    await api.root("POST", "/sudo/sendmail", json=GOOD)
    mail_id = (await outbox(api))["results"][0]["id"]
    parked = await mail_with(api, mail_id, "parked")
    assert parked["attempts"] == 2 and "Connection" in parked["lastError"], parked


async def test_without_smtp_mail_is_kept_and_listed(api) -> None:
    for n in range(3):
        status, _ = await api.root("POST", "/sudo/sendmail", json={**GOOD, "subject": f"kept {n}"})
        assert status == 200
    page = await outbox(api, "?status=kept&size=2")
    assert (page["total"], page["size"], len(page["results"])) == (3, 2, 2)
    assert [m["subject"] for m in page["results"]] == ["kept 2", "kept 1"]  # newest first
    ids = [m["id"] for m in page["results"]]
    second = await outbox(api, "?status=kept&size=2&page=2")
    assert [m["subject"] for m in second["results"]] == ["kept 0"]
    status, one = await api.root("GET", f"/mail/outbox/{ids[0]}")
    assert status == 200 and one["textBody"] == "plain words" and one["status"] == "kept"
    assert (await outbox(api, "?status=sent"))["total"] == 0
    assert (await api.root("GET", "/mail/outbox?status=lost"))[0] == 400
    assert (await api.root("GET", "/mail/outbox/nope"))[0] == 404
    status, text = await api.root("POST", f"/mail/outbox/{ids[0]}/replay")
    assert status == 400 and "smtp_host" in text


SEND_MAIL_FUNCTION = """
function handle(body, query, headers) {
  const res = sendMail({from: "fn@example.com", fromName: "Fn", to: body.to, toName: "Bo", subject: "From a function",
                        textBody: "text from js", htmlBody: "<i>html from js</i>", replyTo: "reply@example.com"});
  return res;
}
"""


async def test_send_mail_from_a_function_is_delivered(aiohttp_client, tmp_path) -> None:
    with SmtpServer() as smtp:
        api = await mail_api(aiohttp_client, tmp_path, **smtp_settings(smtp))
        await add_function(api, "mailer", SEND_MAIL_FUNCTION)
        token = await api.register()
        status, result = await api.call("POST", "/fn/exec/mailer", token, json={"to": "bo@example.org"})
        assert status == 200 and result["ok"] is True, result
        got = (await arrived(smtp, what="the function's mail"))[0]
        mail = await mail_with(api, result["content"], "sent")  # content: the outbox id
        assert mail["origin"].startswith("function:")
        status, bad = await api.call("POST", "/fn/exec/mailer", token, json={"to": "bo@example.org\r\nBcc: x@y.z"})
        assert status == 200 and bad["ok"] is False and bad["content"].startswith("to:"), bad
    assert got.message["From"] == "Fn <fn@example.com>" and got.message["To"] == "Bo <bo@example.org>"
    assert got.message["Reply-To"] == "reply@example.com"
    assert got.body("plain").strip() == "text from js" and got.body("html").strip() == "<i>html from js</i>"
