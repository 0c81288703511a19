"""Outgoing mail, pure: the fields a caller gives checked and normalised, then built into a message.

A mail is the JSON object `{from, fromName, to, toName, subject, textBody, htmlBody, replyTo}`
(StaticBackend's sendMail fields). Every header value is refused if it holds a line break or
another control character, so nothing a caller sends can add a header (header injection);
addresses have exactly one `@`; sizes are bounded. `build` makes the `EmailMessage` that SMTP
sends: text and HTML as alternatives, names in From and To.
"""

from __future__ import annotations

import email.utils
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from sblite.errors import BadRequest

MAX_ADDRESS = 254
MAX_NAME = 200
MAX_SUBJECT = 500
MAX_BODY = 512 * 1024  # characters of each body
ADDRESS_FIELDS = ("from", "to", "replyTo")
TEXT_FIELDS = ("fromName", "toName", "subject", "textBody", "htmlBody")
FIELDS = (*ADDRESS_FIELDS, *TEXT_FIELDS)
_FORBIDDEN_IN_ADDRESS = set('<>()[]\\,;:" ')


def parse_mail(fields: Any, default_from: str, *, body_fills: bool = False) -> dict[str, str]:
    """The mail `fields` describe, checked; BadRequest naming the first bad field.

    `body_fills`: a `body` field fills both bodies (`/sudo/sendmail`).
    """
    if not isinstance(fields, dict):
        raise BadRequest("a mail is an object {from, fromName, to, toName, subject, htmlBody, textBody, replyTo}")
    fields = dict(fields)
    if body_fills and "body" in fields:
        body = fields.pop("body")
        for name in ("htmlBody", "textBody"):
            if not fields.get(name):
                fields[name] = body
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown mail field (known: {', '.join(FIELDS)})")
    mail = {name: _string(fields.get(name), name) for name in FIELDS}
    mail["from"] = mail["from"] or default_from
    for name in ADDRESS_FIELDS:
        if mail[name] or name != "replyTo":
            mail[name] = check_address(mail[name], name)
    for name, limit in (("fromName", MAX_NAME), ("toName", MAX_NAME), ("subject", MAX_SUBJECT)):
        _check_header_text(mail[name], name, limit)
    if not mail["subject"]:
        raise BadRequest("subject: a mail needs a subject")
    if not mail["textBody"] and not mail["htmlBody"]:
        raise BadRequest("textBody: a mail needs a textBody or an htmlBody")
    for name in ("textBody", "htmlBody"):
        if len(mail[name]) > MAX_BODY:
            raise BadRequest(f"{name}: at most {MAX_BODY} characters")
        if "\x00" in mail[name]:
            raise BadRequest(f"{name}: must not contain NUL characters")
    return mail


def check_address(value: Any, field: str) -> str:
    """A plain address `local@domain` (trimmed); BadRequest naming `field` otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field}: an email address is required")
    address = value.strip()
    if len(address) > MAX_ADDRESS:
        raise BadRequest(f"{field}: at most {MAX_ADDRESS} characters")
    if _has_control(address) or _FORBIDDEN_IN_ADDRESS & set(address):
        raise BadRequest(f"{field}: an address must not contain spaces, line breaks or any of <>()[]\\,;:\"")
    local, at, domain = address.partition("@")
    if not at or not local or not domain or "@" in domain or "." not in domain.strip("."):
        raise BadRequest(f"{field}: not an email address (one @, a dotted domain)")
    return address


def build(mail: dict[str, str], *, message_id_domain: str | None = None) -> EmailMessage:
    """The message SMTP sends for a checked mail (from `parse_mail`)."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _address(mail["fromName"], mail["from"])
    message["To"] = _address(mail["toName"], mail["to"])
    if mail.get("replyTo"):
        message["Reply-To"] = _address("", mail["replyTo"])
    message["Subject"] = mail["subject"]
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=message_id_domain or mail["from"].partition("@")[2])
    if mail["textBody"]:
        message.set_content(mail["textBody"])
        if mail["htmlBody"]:
            message.add_alternative(mail["htmlBody"], subtype="html")
    else:
        message.set_content(mail["htmlBody"], subtype="html")
    return message


def _address(name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as exc:  # parse_mail let through something the header model refuses
        raise BadRequest(f"not an address the mail headers can carry: {address} ({exc})") from None


def _string(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{field}: must be a string")
    return value


def _check_header_text(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise BadRequest(f"{field}: at most {limit} characters")
    if _has_control(value):
        raise BadRequest(f"{field}: must not contain line breaks or other control characters")


def _has_control(text: str) -> bool:
    """Whether `text` holds a C0/C1 control character or a Unicode line or paragraph separator."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u2028\u2029\u0085" for c in text)
