"""The operator's way in: the first start's one-time sign-in link, and the ``modelgate admin``
commands (set-password from stdin with nothing echoed, make-operator, sign-in-link)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from modelgate import cli
from modelgate.accounts.bootstrap import prepare_database
from modelgate.settings import Settings
from tests.conftest import LiveServer
from tests.test_cli import cli_env
from tests.web.helpers import client, csrf, log_in, make_account

LINK = re.compile(r"(https?://\S+?)(/app/sign-in/[A-Za-z0-9_-]{20,})")


def _use_link(c, path: str):  # type: ignore[no-untyped-def]
    page = c.get(path)
    assert page.status_code == 200 and "Sign in as admin@localhost" in page.text, page.text
    r = c.post(path, data={"csrf_token": csrf(page)})
    return r


def test_first_start_link_signs_the_admin_in_once(database_url: str, web_server: LiveServer) -> None:
    first = asyncio.run(prepare_database(Settings(database_url=database_url, bootstrap=True)))
    assert first is not None and len(first.key) == 32
    path = f"/app/sign-in/{first.signin_token}"
    with client(web_server) as fresh:
        assert fresh.get(path).status_code == 200  # looking at the link does not use it up
    with client(web_server) as c:
        r = _use_link(c, path)
        assert r.status_code == 303 and r.headers["location"] == "/app/account?set_password=1"
        assert c.get("/admin/accounts").status_code == 200  # the admin is an operator
        page = c.get("/app/account?set_password=1")
        assert "Set a password" in page.text and "current_password" not in page.text
        token = csrf(page)
        r = c.post(
            "/app/account/password",
            data={"new_password": "operator pass", "confirm_password": "operator pass", "csrf_token": token},
        )
        assert r.status_code == 303
    with client(web_server) as again:
        assert again.get(path).status_code == 404  # used: no longer valid
        assert again.post(path, data={"csrf_token": csrf(again.get("/app/login"))}).status_code == 404
        assert log_in(again, "admin@localhost", "operator pass").status_code == 303
        assert again.get("/admin/accounts").status_code == 200
    # A second start on the same database creates nothing and prints nothing.
    assert asyncio.run(prepare_database(Settings(database_url=database_url, bootstrap=True))) is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_prints_the_key_and_the_link(database_url: str, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from modelgate.drain import DrainingServer

    # Start nothing: one worker serves through DrainingServer, several through uvicorn.run.
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(DrainingServer, "run", lambda self, *a, **k: None)
    monkeypatch.setenv("MODELGATE_DATABASE_URL", database_url)
    assert cli.main(["serve", "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\b[0-9a-f]{32}\b", out)
    found = LINK.search(out)
    assert found and found.group(1) == "http://127.0.0.1:8123", out


def test_cli_sets_a_password_without_echo_and_makes_an_operator(
    database_url: str, web_server: LiveServer
) -> None:
    make_account(web_server, "dev@example.com", "first password")
    env = cli_env(database_url)

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modelgate.cli", "admin", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    secret = "s3cret from stdin"
    done = run("set-password", "--email", "Dev@Example.com", stdin=secret + "\n")
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout and secret not in done.stderr
    assert "Password set for dev@example.com" in done.stdout
    short = run("set-password", "--email", "dev@example.com", stdin="short\n")
    assert short.returncode == 1 and "8 to 1024" in short.stderr
    missing = run("set-password", "--email", "ghost@example.com", stdin=secret + "\n")
    assert missing.returncode == 1 and "no account" in missing.stderr
    with client(web_server) as c:
        assert log_in(c, "dev@example.com", "first password").status_code == 400
        assert log_in(c, "dev@example.com", secret).status_code == 303
        assert c.get("/admin/accounts").status_code == 404
        promoted = run("make-operator", "--email", "dev@example.com")
        assert promoted.returncode == 0 and "now an operator" in promoted.stdout
        audit = c.get("/admin/audit")
        assert audit.status_code == 200
        assert "account.set_password" in audit.text and "account.make_operator" in audit.text
        assert "command line" in audit.text
    link = run("sign-in-link", "--email", "dev@example.com", "--base-url", "https://gw.example.com/")
    assert link.returncode == 0
    found = LINK.search(link.stdout)
    assert found and found.group(1) == "https://gw.example.com"
    with client(web_server) as c:
        page = c.get(found.group(2))
        assert "Sign in as dev@example.com" in page.text
        r = c.post(found.group(2), data={"csrf_token": csrf(page)})
        assert r.status_code == 303 and r.headers["location"] == "/admin"
    revoked = run("make-operator", "--email", "dev@example.com", "--revoke")
    assert revoked.returncode == 0 and "no longer an operator" in revoked.stdout
