"""``modelgate admin create-org NAME --owner EMAIL [--postpaid]`` (issue 23): prints the new team
organisation's id, which ``modelgate admin scim-token --org NAME`` then finds; a taken name (in any
case) or an unknown owner is refused with one line and status 1."""

from __future__ import annotations

from tests.test_cli import cli_env, run_cli


def test_create_org_then_scim_token_finds_it(database_url: str) -> None:
    env = cli_env(database_url)
    assert run_cli("admin", "create-key", "--email", "owner@example.com", env=env).returncode == 0
    out = run_cli("admin", "create-org", "Platform Team", "--owner", "Owner@Example.com", env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().isdigit() and out.stdout.count("\n") == 1
    token = run_cli("admin", "scim-token", "--org", "Platform Team", env=env)
    assert token.returncode == 0 and token.stdout.startswith("scim_"), token.stderr
    again = run_cli("admin", "create-org", "platform team", "--owner", "owner@example.com", env=env)
    assert again.returncode == 1 and "exists already" in again.stderr
    ghost = run_cli("admin", "create-org", "Other", "--owner", "ghost@example.com", env=env)
    assert ghost.returncode == 1 and "no account" in ghost.stderr
    paid = run_cli(
        "admin", "create-org", "Billing Later", "--owner", "owner@example.com", "--postpaid", env=env
    )
    assert paid.returncode == 0 and int(paid.stdout) != int(out.stdout)
