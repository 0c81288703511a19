"""A real SMTP server for the mail tests (aiosmtpd on loopback) that keeps what it receives or refuses it."""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port


@dataclass
class Received:
    """One message the server accepted."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    def body(self, subtype: str) -> str:
        """The text/`subtype` part's content."""
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None and part.get_content_type() == f"text/{subtype}", self.message
        return str(part.get_content())


@dataclass
class Recorder:
    """The server's handler: accepts (or, while `refuse` is set, refuses with 550) and keeps messages."""

    refuse: bool = False
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "550 mailbox unavailable"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def messages(self) -> list[Received]:
        """What arrived so far."""
        with self.lock:
            return list(self.received)


class SmtpServer:
    """aiosmtpd in a thread on a loopback port; `with SmtpServer() as smtp:`."""

    def __init__(self, port: int | None = None, tls: ssl.SSLContext | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.recorder = Recorder()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if login is not None:
            kwargs.update(authenticator=_authenticator(login), auth_required=True)
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def messages(self) -> list[Received]:
        """What arrived so far."""
        return self.recorder.messages()


def _authenticator(login: tuple[str, str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == login
        return AuthResult(success=ok)
    return check


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path] | None:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1, and the certificate's
    path (for the client to trust); None when there is no openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert
