"""Self-service edges over plain HTTP: no SMTP (the forgot page says to ask the operator), a mailed
reset link from the console and a resent verification link (read from aiosmtpd), two-factor codes
used once, turning two-factor sign-in off (the password), new recovery codes."""

from __future__ import annotations

import time

import pytest

from modelgate.accounts import totp
from tests.conftest import LiveServer
from tests.fakes.smtp import link_in
from tests.web.helpers import client, csrf, log_in, logged_in, make_account
from tests.web.selfservice import MailServer, mail_web

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
__all__ = ["mail_web"]


def test_without_smtp_the_operator_hands_out_links(web_server: LiveServer) -> None:
    with client(web_server) as c:
        page = c.get("/app/forgot")
        assert 'id="no-mail"' in page.text and "operator" in page.text
        token = c.cookies["mg_csrf"]  # the page has no form: nothing to send it with
        r = c.post("/app/forgot", data={"email": "a@example.com", "csrf_token": token})
        assert r.status_code == 400
    uid = make_account(web_server, "u@example.com")
    make_account(web_server, "op@example.com", operator=True)
    with logged_in(web_server, "op@example.com") as op:
        page = op.get(f"/admin/accounts/{uid}")
        assert 'id="mail-reset-link"' not in page.text
        r = op.post(f"/admin/accounts/{uid}/reset-link", data={"csrf_token": csrf(page)})
        assert r.status_code == 200 and "/app/reset/" in r.text
        first = r.text.split('id="reset-link" class="secret" value="')[1].split('"')[0]
        r = op.post(f"/admin/accounts/{uid}/reset-link", data={"csrf_token": csrf(page)})
        assert "account.reset_link" in op.get("/admin/audit").text
    with client(web_server) as c:
        assert c.get(first.removeprefix(web_server.url)).status_code == 404  # a newer link replaced it


def test_mailed_links_from_the_console_and_the_account_page(mail_web: MailServer) -> None:
    server = mail_web.server
    uid = make_account(server, "u@example.com")
    make_account(server, "op@example.com", operator=True)
    with logged_in(server, "op@example.com") as op:
        page = op.get(f"/admin/accounts/{uid}")
        r = op.post(f"/admin/accounts/{uid}/reset-link", data={"csrf_token": csrf(page), "send": "1"})
        assert r.status_code == 303 and r.headers["location"].endswith("done=reset-mailed")
    link = link_in(mail_web.mailbox.wait_for("u@example.com", "Reset your password"), "/app/reset/")
    with client(server) as c:
        assert c.get(link.removeprefix(server.url)).status_code == 200
    with logged_in(server, "u@example.com") as u:
        page = u.get("/app/account")
        assert 'id="email-state">not confirmed' in page.text
        r = u.post("/app/account/verify", data={"csrf_token": csrf(page)})
        assert r.status_code == 303
        verify = link_in(mail_web.mailbox.wait_for("u@example.com", "Confirm your email"), "/app/verify/")
        path = verify.removeprefix(server.url)
        r = u.post(path, data={"csrf_token": csrf(u.get(path))})  # signed in: the session's token
        assert r.status_code == 200 and 'id="email-verified"' in r.text
        assert 'id="email-state">confirmed' in u.get("/app/account").text
    with logged_in(server, "op@example.com") as op:
        assert 'id="account-email-state">confirmed' in op.get(f"/admin/accounts/{uid}").text


def test_two_factor_codes_work_once_and_turning_it_off_asks_the_password(web_server: LiveServer) -> None:
    make_account(web_server, "t@example.com")
    with logged_in(web_server, "t@example.com") as c:
        page = c.get("/app/account/two-factor")
        secret = page.text.split('id="totp-secret" class="secret">')[1].split("<")[0].replace(" ", "")
        code = totp.totp(secret)
        r = c.post("/app/account/two-factor/enable", data={"code": code, "csrf_token": csrf(page)})
        assert r.status_code == 200 and 'id="recovery-codes"' in r.text
        first_codes = r.text.count("<li><code>")
        r = c.post("/app/account/two-factor/recovery-codes", data={"csrf_token": csrf(page)})
        assert r.text.count("<li><code>") == first_codes == 10
        assert "10 recovery codes left" in c.get("/app/account/two-factor").text
        r = c.post("/app/account/two-factor/disable", data={"password": "wrong", "csrf_token": csrf(page)})
        assert r.status_code == 400 and "not your password" in r.text
    with client(web_server) as c:
        assert log_in(c, "t@example.com", "a good password").headers["location"].startswith("/app/login/code")
        token = csrf(c.get("/app/login/code"))
        r = c.post("/app/login/code", data={"code": code, "csrf_token": token})  # used at enrolment
        assert r.status_code == 400
        later = totp.totp(secret, time.time() + totp.STEP)
        assert c.post("/app/login/code", data={"code": later, "csrf_token": token}).status_code == 303
    with client(web_server) as c:
        log_in(c, "t@example.com", "a good password")
        token = csrf(c.get("/app/login/code"))
        r = c.post("/app/login/code", data={"code": later, "csrf_token": token})  # once only
        assert r.status_code == 400
        assert c.get("/app/keys").status_code == 303  # no session
        c.cookies.delete("mg_2fa")
        assert c.get("/app/login/code").status_code == 303  # no password step: back to log-in
