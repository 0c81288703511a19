"""Outgoing mail through a durable queue: stored before `send` answers, delivered over SMTP, never lost.

`send` checks a mail (sblite.mail), stores it in the outbox and answers its id once the row is
committed. One consumer task takes due queued mail and hands each to smtplib in an executor
thread (the event loop never waits on SMTP). A delivered mail is marked sent; a failed attempt is
retried with the function queue's backoff and parked after `max_attempts` (replayable): the rules
are `sblite.functions.queue_policy`'s. Mail still queued when the server stops is sent when it
starts again. With no SMTP server configured, mail is kept in the outbox (status `kept`), logged,
and shown by the dashboard instead of being sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sblite import ids
from sblite.errors import BadRequest, NotFound
from sblite.functions import queue_policy as policy
from sblite.mail import build, parse_mail
from sblite.model import Identity
from sblite.store import DatabaseClosed
from sblite.store.mail import STATUSES, MailStore, OutboxMail
from sblite.timeutil import now_text

log = logging.getLogger(__name__)
BATCH = 4  # mails delivered at once
READ_RETRY_SECONDS = 1.0
MAX_PAGE = 100
MAX_ERROR = 500


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how mail is handed over."""

    host: str
    port: int = 587
    user: str = ""
    password: str = ""
    security: str = "starttls"  # starttls | tls | none
    ca_file: str = ""
    timeout: float = 30.0


# deliver(settings, message): hands one message to the SMTP server; raises on failure.
Deliver = Callable[[SmtpSettings, EmailMessage], None]


def smtp_deliver(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message over SMTP (blocking: run it in a thread)."""
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.user:
            client.login(settings.user, settings.password)
        client.send_message(message)


def describe_failure(exc: BaseException) -> str:
    """A short, readable reason for a failed attempt."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reason = next(iter(exc.recipients.values()))
        text = f"recipient refused: {code} {reason.decode(errors='replace')}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        text = f"{exc.smtp_code} {error.decode(errors='replace') if isinstance(error, bytes) else error}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text[:MAX_ERROR]


class MailService:
    """The outbox and its delivery (implements the functions' `Mailing`)."""

    def __init__(self, store: MailStore, smtp: SmtpSettings | None, *, default_from: str, max_attempts: int,
                 keep_sent: int = 1000, deliver: Deliver = smtp_deliver,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._smtp = smtp
        self.default_from = default_from
        self._max_attempts = max_attempts
        self._keep_sent = keep_sent
        self._deliver = deliver
        self._clock = clock
        self._wake = asyncio.Event()
        self._consumer: asyncio.Task[None] | None = None

    @property
    def delivering(self) -> bool:
        """Whether mail goes out (an SMTP server is configured) or is kept in the outbox."""
        return self._smtp is not None

    def start(self) -> None:
        """Start delivering, beginning with the mail a previous process left queued."""
        if self._smtp is None:
            log.warning("smtp_host is not set: mail is NOT delivered; it is kept in the outbox (dashboard: Mail)")
        elif self._consumer is None:
            self._consumer = asyncio.ensure_future(self._consume())

    async def close(self) -> None:
        """Stop delivering (queued mail stays queued for the next start)."""
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
            self._consumer = None

    async def send(self, app_id: str, mail: dict[str, Any], origin: str, *, body_fills: bool = False) -> str:
        """Check and store one mail; its outbox id once it is durable. BadRequest names a bad field."""
        message = parse_mail(mail, self.default_from, body_fills=body_fills)
        record = OutboxMail(id=ids.new_id(), app_id=app_id, message=message, origin=origin,
                            status="queued" if self._smtp else "kept", attempts=0, next_at=self._clock(),
                            last_error=None, created=now_text())
        await self._store.insert(record)
        if self._smtp is None:
            log.info("mail kept in the outbox (no smtp_host): %s to %s, %r", record.id, message["to"],
                     message["subject"])
        self._wake.set()
        return record.id

    # --- the outbox, for root

    async def outbox(self, root: Identity, status: str | None, page: int, size: int) -> dict[str, Any]:
        """One page of the app's mail, newest first, optionally of one status; `delivering`: SMTP is set."""
        if status and status not in STATUSES:
            raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
        size = min(max(size, 1), MAX_PAGE)
        mails, total = await self._store.page(root.app_id, status or None, size, (page - 1) * size)
        return {"page": page, "size": size, "total": total, "delivering": self.delivering,
                "results": [m.public() for m in mails]}

    async def get(self, root: Identity, mail_id: str) -> dict[str, Any]:
        """One mail of the app."""
        mail = await self._store.get(root.app_id, mail_id)
        if mail is None:
            raise NotFound("mail not found")
        return mail.public()

    async def replay(self, root: Identity, mail_id: str) -> dict[str, Any]:
        """Queue a parked mail (or a kept one, once SMTP is configured) again from its first attempt."""
        if self._smtp is None:
            raise BadRequest("no SMTP server is configured (smtp_host): mail is kept, not sent")
        mail = await self._store.requeue(root.app_id, mail_id, self._clock(), ("parked", "kept"))
        if mail is None:
            raise NotFound("no parked or kept mail with this id")
        self._wake.set()
        return mail.public()

    # --- delivery

    async def _consume(self) -> None:
        while True:
            self._wake.clear()
            try:
                due = await self._store.due(self._clock(), BATCH)
                if due:
                    await asyncio.gather(*(self._attempt(mail) for mail in due))
                    continue
                next_at = await self._store.next_due()
            except DatabaseClosed:
                return
            except Exception:
                log.exception("mail queue: reading or updating the outbox failed; trying again shortly")
                next_at = self._clock() + READ_RETRY_SECONDS
            wait = policy.wait_seconds(next_at, self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _attempt(self, mail: OutboxMail) -> None:
        assert self._smtp is not None
        loop = asyncio.get_running_loop()
        try:
            message = build(mail.message)
            await loop.run_in_executor(None, self._deliver, self._smtp, message)
        except Exception as exc:
            retry = policy.after_failure(mail.attempts, self._clock(), self._max_attempts)
            error = describe_failure(exc)
            await self._store.reschedule(mail.id, retry.attempts, retry.next_at, error, retry.park)
            level = logging.WARNING if retry.park else logging.INFO
            log.log(level, "mail %s to %s: attempt %d failed (%s)%s", mail.id, mail.message.get("to"),
                    retry.attempts, error, ": parked" if retry.park else "")
            return
        await self._store.mark_sent(mail.id, mail.attempts + 1, now_text(), self._keep_sent)
