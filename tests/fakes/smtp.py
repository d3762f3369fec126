"""A real SMTP server for the mail tests: aiosmtpd (from PyPI, the dev extra) in its own thread,
keeping every message it receives; ``wait_for`` reads the mailbox like a person would."""

from __future__ import annotations

import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import _free_port


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self._lock:
            self.messages.append(msg)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, subject: str, *, timeout: float = 60.0) -> EmailMessage:
        """The newest mail to ``address`` whose subject contains ``subject``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject in str(m["Subject"])]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(
            f"no mail to {address} about {subject!r}; got {[m['Subject'] for m in self.messages]}"
        )


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def link_in(msg: EmailMessage, path: str) -> str:
    found = re.search(r"https?://\S+" + re.escape(path) + r"\S+", body(msg))
    assert found, body(msg)
    return found.group(0)


class _Auth:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username.encode(), password.encode()

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (self.username, self.password)
        return AuthResult(success=ok)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, written to ``folder`` (the certificate is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_server(
    *, username: str | None = None, password: str = "", tls: tuple[Path, Path] | None = None
) -> Iterator[tuple[Mailbox, int]]:
    """A running SMTP server on 127.0.0.1 (a free port). ``tls`` (certificate, key): STARTTLS is
    offered and required; with ``username`` too, AUTH (only after STARTTLS) is required."""
    box = Mailbox()
    kw: dict[str, Any] = {}
    if tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
        kw = {"tls_context": context, "require_starttls": True}
        if username:
            kw.update(authenticator=_Auth(username, password), auth_required=True)
    controller = Controller(box, hostname="127.0.0.1", port=_free_port(), **kw)
    controller.start()
    try:
        yield box, int(controller.port)
    finally:
        controller.stop()
