"""The mailer against a real SMTP server (aiosmtpd): the message, credentials, failures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from modelgate.mail import messages
from modelgate.mail.messages import send_invitation
from modelgate.mail.sender import Mail, Mailer
from modelgate.settings import Settings
from tests.fakes.smtp import body, self_signed, smtp_server


def _settings(port: int, **kw: object) -> Settings:
    values: dict[str, object] = {"smtp_security": "none", "mail_from": "Gate <gate@example.com>", **kw}
    return Settings(smtp_host="127.0.0.1", smtp_port=port, **values)  # type: ignore[arg-type]


async def test_a_mail_arrives_with_its_headers() -> None:
    with smtp_server() as (box, port):
        mailer = Mailer(_settings(port))
        assert await mailer.send(Mail("ann@example.com", "Hello", "Line one\nLine two\n"))
        msg = box.wait_for("ann@example.com", "Hello")
    assert msg["From"] == "Gate <gate@example.com>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert body(msg) == "Line one\nLine two\n"
    assert box.envelopes[0] == ("gate@example.com", ["ann@example.com"])


async def test_starttls_and_credentials(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(username="mailer", password="s3cret", tls=(cert, key)) as (box, port):

        def mailer(**kw: object) -> Mailer:
            return Mailer(_settings(port, smtp_security="starttls", smtp_ca_file=cert, **kw))

        good = mailer(smtp_username="mailer", smtp_password=SecretStr("s3cret"))
        assert await good.send(Mail("bob@example.com", "Authed", "x"))
        bad = mailer(smtp_username="mailer", smtp_password=SecretStr("wrong"))
        assert not await bad.send(Mail("bob@example.com", "Refused", "x"))
        assert not await mailer().send(Mail("bob@example.com", "Anonymous", "x"))
        # Without STARTTLS the server refuses; with an untrusted certificate the client refuses.
        plain = Mailer(_settings(port, smtp_username="mailer", smtp_password=SecretStr("s3cret")))
        assert not await plain.send(Mail("bob@example.com", "Plain", "x"))
        untrusted = Mailer(
            _settings(
                port, smtp_security="starttls", smtp_username="mailer", smtp_password=SecretStr("s3cret")
            )
        )
        assert not await untrusted.send(Mail("bob@example.com", "Untrusted", "x"))
        assert [m["Subject"] for m in box.to("bob@example.com")] == ["Authed"]
    assert "s3cret" not in caplog.text and "wrong" not in caplog.text


async def test_unconfigured_or_unreachable_sends_nothing() -> None:
    assert not Mailer(Settings()).configured
    assert not await Mailer(Settings()).send(Mail("a@example.com", "x", "y"))
    with smtp_server() as (_, port):
        pass  # the port is free again: nobody listens
    assert not await Mailer(_settings(port, smtp_timeout=2)).send(Mail("a@example.com", "x", "y"))


async def test_background_mails_are_waited_for_on_close() -> None:
    with smtp_server() as (box, port):
        mailer = Mailer(_settings(port))
        for i in range(3):
            mailer.submit(Mail("c@example.com", f"n{i}", "x"))
        await mailer.aclose()
        assert sorted(m["Subject"] for m in box.to("c@example.com")) == ["n0", "n1", "n2"]


def test_the_mails_say_exact_amounts_and_whole_links() -> None:
    low = messages.low_balance(
        to="a@example.com",
        base_url="https://gw.example/",
        balance_credits=1_110_000,
        threshold_credits=2_000_000,
    )
    assert "$0.555" in low.text and "$1.00" in low.text and "https://gw.example/app/billing" in low.text
    reset = messages.password_reset(
        to="a@example.com", base_url="https://gw.example", token="T0K", ttl=timedelta(hours=1)
    )
    assert "https://gw.example/app/reset/T0K" in reset.text and "1 hour" in reset.text


async def test_the_invitation_hook_mails_the_invitee() -> None:
    with smtp_server() as (box, port):
        mailer = Mailer(Settings(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"))
        sent = await send_invitation(
            mailer,
            to="new@example.com",
            inviter="ann@example.com",
            organisation="Acme",
            accept_url="https://gw/x",
        )
        assert sent
        msg = box.wait_for("new@example.com", "ann@example.com invited you to Acme")
        assert "https://gw/x" in body(msg)
    assert not await send_invitation(
        Mailer(Settings()), to="a@example.com", inviter="b", organisation="c", accept_url="d"
    )
