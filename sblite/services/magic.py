"""Magic-link sign-in: a one-time code mailed as a link, exchanged for a session token.

Unlike StaticBackend (a fixed code in dev mode, and a wrong code that still signs in), a code is
random (`secrets`), stored only as a salted hash, one live code per email, valid for `ttl`
seconds, void after `max_attempts` wrong tries, and used up by the right one. Asking for a link
for an unknown email answers the same as for a known one and sends nothing (no account
enumeration). Requests are limited per email and per client address, so the route cannot be
used to flood someone's mailbox.
"""

from __future__ import annotations

import html
import re
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from sblite.errors import BadRequest, TooManyRequests, Unauthorized
from sblite.mail import parse_mail
from sblite.model import App
from sblite.services.accounts import AccountService
from sblite.services.users import normalize_email
from sblite.services.mail import MailService
from sblite.store.mail import MailStore
from sblite.throttle import AttemptLimiter, address_key

CODE_DIGITS = 8
MAX_LINK = 2000
ORIGIN = "magic-link"
DEFAULT_SUBJECT = "Your sign-in link"
_HTML_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")


class MagicLinks:
    """Sends sign-in links and checks their codes."""

    def __init__(self, accounts: AccountService, store: MailStore, mail: MailService, *, ttl: float = 900,
                 max_attempts: int = 5, sends_per_email: int = 3, sends_per_address: int = 10,
                 window_seconds: float = 900, clock: Callable[[], float] = time.time,
                 limiter_clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = accounts
        self._store = store
        self._mail = mail
        self._ttl = ttl
        self._max_attempts = max_attempts
        self._clock = clock
        self._per_email = AttemptLimiter(sends_per_email, window_seconds, clock=limiter_clock)
        self._per_address = AttemptLimiter(sends_per_address, window_seconds, clock=limiter_clock)

    async def request(self, app: App, body: Any, remote: str | None) -> None:
        """Mail a sign-in link to `body.email` if it is a user of `app` (answers the same if not)."""
        if not isinstance(body, dict):
            raise BadRequest("invalid body: expected a JSON object {fromEmail, fromName, email, subject, body, link}")
        email = _field(normalize_email, body.get("email"), "email")
        link = check_link(body.get("link"))
        template = body.get("body")
        if not isinstance(template, str) or not template.strip():
            raise BadRequest("body: the mail's text, with [link] where the link goes, is required")
        self._admit((app.id, email), address_key(remote))
        if not await self._accounts.email_exists(app, email):
            return
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        now = self._clock()
        url = link + ("&" if urlsplit(link).query else "?") + urlencode({"code": code, "email": email})
        mail = {"from": body.get("fromEmail") or None, "fromName": body.get("fromName"), "to": email,
                "subject": body.get("subject") or DEFAULT_SUBJECT, **_bodies(template, url)}
        # Checked (and the code stored) before it is queued: a mail refused as bad leaves no live code.
        parse_mail(mail, self._mail.default_from)
        await self._store.set_code(app.id, email, secrets.token_hex(8), code, now + self._ttl, now)
        await self._mail.send(app.id, mail, ORIGIN)

    async def complete(self, app: App, email: Any, code: Any) -> str:
        """A session token for the right, live code of `email`; 401 for anything else."""
        if not isinstance(email, str) or not isinstance(code, str) or not code.strip():
            raise BadRequest("email and code are required")
        email = email.strip().lower()
        outcome = await self._store.use_code(app.id, email, code.strip(), self._clock(), self._max_attempts)
        if outcome == "ok":
            token = await self._accounts.session_for_email(app, email)
            if token is not None:
                return token
        if outcome == "expired":
            raise Unauthorized("this sign-in code has expired: ask for a new link")
        raise Unauthorized("invalid sign-in code")

    def _admit(self, email_key: tuple[str, str], address: str) -> None:
        for limiter, who in ((self._per_email, "for this email"), (self._per_address, "from this address")):
            key = email_key if limiter is self._per_email else address
            retry = limiter.check(key)
            if retry is not None:
                raise TooManyRequests(f"too many sign-in links asked {who}: try again in {retry} seconds", retry)
        self._per_email.fail(email_key)
        self._per_address.fail(address)


def check_link(link: Any) -> str:
    """The link a code is appended to: an absolute http(s) URL; BadRequest otherwise."""
    if not isinstance(link, str) or not link:
        raise BadRequest("link: the URL the code is appended to is required")
    if len(link) > MAX_LINK or any(ord(c) < 0x21 or ord(c) == 0x7F for c in link):
        raise BadRequest(f"link: a URL of at most {MAX_LINK} characters without spaces or control characters")
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise BadRequest("link: must be an http:// or https:// URL without a #fragment")
    return link


def _bodies(template: str, url: str) -> dict[str, str]:
    """The mail's bodies: the template with [link] replaced (appended when it has none); HTML if it has tags."""
    if "[link]" not in template:
        template = template.rstrip() + "\n\n[link]\n"
    if not _HTML_TAG.search(template):
        return {"textBody": template.replace("[link]", url)}
    # An HTML template: the link goes in escaped; the text body is the template without its tags.
    text = html.unescape(_HTML_TAG.sub("", template.replace("[link]", "")))
    return {"htmlBody": template.replace("[link]", html.escape(url)), "textBody": f"{text.strip()}\n\n{url}\n"}


def _field(check: Callable[[Any], str], value: Any, name: str) -> str:
    try:
        return check(value)
    except BadRequest as exc:
        raise BadRequest(f"{name}: {exc.message}") from None
