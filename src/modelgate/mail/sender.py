"""SMTP delivery with the standard library's ``smtplib`` in a worker thread.

``Mailer.submit`` sends in the background: a page that causes a mail (sign-up, "forgot password")
answers at once and takes the same time whether or not a mail goes out (nothing tells whether an
email is registered). A failed delivery is logged (never the password) and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from modelgate.settings import Settings

log = logging.getLogger("modelgate.mail")


@dataclass(frozen=True, slots=True)
class Mail:
    to: str
    subject: str
    text: str


@dataclass
class Mailer:
    settings: Settings
    _pending: set[asyncio.Task[bool]] = field(default_factory=set)

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def message(self, mail: Mail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.settings.mail_from
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="modelgate")
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(mail.text)
        return msg

    def _deliver(self, msg: EmailMessage) -> None:
        s = self.settings
        host = s.smtp_host or ""
        context = ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)
        smtp: smtplib.SMTP
        if s.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(host, s.smtp_port, timeout=s.smtp_timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, s.smtp_port, timeout=s.smtp_timeout)
        with smtp:
            if s.smtp_security == "starttls":
                smtp.starttls(context=context)
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
            smtp.send_message(msg)

    async def send(self, mail: Mail) -> bool:
        """Deliver now; False (logged) when SMTP is not configured or delivery failed."""
        if not self.configured:
            return False
        try:
            await asyncio.to_thread(self._deliver, self.message(mail))
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            log.warning("mail to %s not sent: %s", mail.to, type(exc).__name__)
            return False
        return True

    def submit(self, mail: Mail) -> None:
        """Deliver in the background (see the module docstring)."""
        if not self.configured:
            return
        task = asyncio.get_running_loop().create_task(self.send(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def aclose(self) -> None:
        """Wait (at most the SMTP timeout) for mails still being sent."""
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*self._pending, return_exceptions=True), self.settings.smtp_timeout
                )
