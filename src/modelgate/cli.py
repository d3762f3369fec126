"""``modelgate`` command line: serve, admin, catalog, db."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from modelgate.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "config", None):
        os.environ["MODELGATE_CONFIG"] = str(args.config)
    if getattr(args, "database_url", None):
        os.environ["MODELGATE_DATABASE_URL"] = args.database_url
    return Settings()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from modelgate.accounts.bootstrap import prepare_database
    from modelgate.app import load_catalog
    from modelgate.catalog.loader import CatalogError
    from modelgate.drain import DrainingServer
    from modelgate.httpserver import uvicorn_options
    from modelgate.providers.registry import ProviderTypeRegistry
    from modelgate.store.signin_links import LINK_PATH

    settings = _settings(args)
    try:
        load_catalog(settings, ProviderTypeRegistry.with_defaults())  # checked before anything binds
    except (CatalogError, ValueError) as exc:
        print(f"modelgate: configuration error: {exc}", file=sys.stderr)
        return 2
    first = asyncio.run(prepare_database(settings))
    url = f"http://{args.host}:{args.port}"
    if first:
        key = first.key
        print(
            "\n  modelgate created an admin account (admin@localhost) on this new database.\n"
            f"  Its API key, shown only this once:\n\n      {key}\n\n"
            f"  Try it:  curl {url}/v1/chat/completions -H 'Authorization: Bearer {key}' \\\n"
            "             -H 'Content-Type: application/json' \\\n"
            '             -d \'{"model": "smollm2", "messages": [{"role": "user", "content": "Hi!"}]}\'\n\n'
            "  Sign in to the operator console once with this link (valid 24 hours), then set a password:\n\n"
            f"      {url}{LINK_PATH}{first.signin_token}\n",
            flush=True,
        )
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "log_level": settings.log_level,
        "access_log": False,
        "loop": "auto",
        "ws": "none",  # no WebSocket endpoints: do not load a WebSocket library per worker
        # uvicorn's own wait for in-flight requests (several workers); one worker drains (drain.py)
        "timeout_graceful_shutdown": settings.drain_timeout,
        **uvicorn_options(settings),  # slow or idle clients, connections per worker
    }
    if args.workers > 1:  # uvicorn's supervisor runs its own server in each worker
        uvicorn.run("modelgate.app:create_app_from_env", **options)
        return 0
    config = uvicorn.Config("modelgate.app:create_app_from_env", **options)
    DrainingServer(
        config,
        drain_timeout=settings.drain_timeout,
        shutdown_timeout=settings.shutdown_timeout,
        drain_notice=settings.drain_notice,
    ).run()
    return 0


async def _create_key(args: argparse.Namespace, settings: Settings) -> str:
    from modelgate.accounts.service import create_key, get_or_create_account, top_up
    from modelgate.store.db import upgraded

    async with upgraded(settings) as db, db.engine.begin() as conn:
        account_id = await get_or_create_account(conn, email=args.email)
        if args.credits_usd:
            await top_up(conn, account_id=account_id, usd=args.credits_usd, description="admin top-up")
        new = await create_key(conn, account_id=account_id, name=args.name, management=args.management)
    return new.key


def cmd_create_key(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(asyncio.run(_create_key(args, settings)))
    return 0


async def _top_up(args: argparse.Namespace, settings: Settings) -> int:
    from modelgate.accounts.service import top_up
    from modelgate.store.accounts import account_id_by_email
    from modelgate.store.db import upgraded

    async with upgraded(settings) as db, db.engine.begin() as conn:
        account_id = await account_id_by_email(conn, email=args.email)
        if account_id is None:
            print(f"modelgate: no account with email {args.email}", file=sys.stderr)
            return 1
        credits = await top_up(conn, account_id=account_id, usd=args.usd, description="admin top-up")
    print(credits)
    return 0


def cmd_top_up(args: argparse.Namespace) -> int:
    return asyncio.run(_top_up(args, _settings(args)))


async def _account_action(args: argparse.Namespace, action: str, password: str = "") -> int:
    """The account-changing admin commands, each audited as done by the command line."""
    from modelgate.accounts.service import set_password
    from modelgate.store.accounts import account_id_by_email
    from modelgate.store.audit import audit
    from modelgate.store.db import upgraded
    from modelgate.store.operators import CLI, set_operator
    from modelgate.store.signin_links import LINK_PATH, create_signin_link

    settings = _settings(args)
    async with upgraded(settings) as db, db.engine.begin() as conn:
        account_id = await account_id_by_email(conn, email=args.email)
        if account_id is None:
            print(f"modelgate: no account with email {args.email}", file=sys.stderr)
            return 1
        if action == "set-password":
            await set_password(conn, account_id=account_id, password=password)
            await audit(conn, actor=CLI, action="account.set_password", account_id=account_id)
            print(f"Password set for {args.email.strip().lower()}.")
        elif action == "make-operator":
            await set_operator(conn, account_id=account_id, operator=not args.revoke, actor=CLI)
            state = "no longer an operator" if args.revoke else "an operator (console: /admin)"
            print(f"{args.email.strip().lower()} is now {state}.")
        else:
            token = await create_signin_link(conn, account_id=account_id)
            await audit(conn, actor=CLI, action="account.sign_in_link", account_id=account_id)
            base = (args.base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
            print(f"{base}{LINK_PATH}{token}")
    return 0


def _read_new_password() -> str | None:
    """From the terminal without echo (asked twice), or the first line of piped stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            print("modelgate: the two passwords differ", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_set_password(args: argparse.Namespace) -> int:
    from modelgate.accounts.passwords import MIN_PASSWORD

    password = _read_new_password()
    if password is None:
        return 1
    if not MIN_PASSWORD <= len(password) <= 1024 or "\x00" in password:
        print(f"modelgate: a password has {MIN_PASSWORD} to 1024 characters", file=sys.stderr)
        return 1
    return asyncio.run(_account_action(args, "set-password", password))


def cmd_make_operator(args: argparse.Namespace) -> int:
    return asyncio.run(_account_action(args, "make-operator"))


def cmd_sign_in_link(args: argparse.Namespace) -> int:
    return asyncio.run(_account_action(args, "sign-in-link"))


async def _create_org(args: argparse.Namespace) -> int:
    from modelgate.accounts.team_orgs import OrgNameError, create_team_org
    from modelgate.store.accounts import account_id_by_email
    from modelgate.store.db import upgraded
    from modelgate.store.operators import CLI

    async with upgraded(_settings(args)) as db, db.engine.begin() as conn:
        owner = await account_id_by_email(conn, email=args.owner) if "@" in args.owner else None
        if owner is None:
            print(f"modelgate: no account with email {args.owner}", file=sys.stderr)
            return 1
        try:
            org_id = await create_team_org(
                conn, name=args.name, owner_id=owner, actor=CLI, postpaid=args.postpaid
            )
        except OrgNameError as exc:
            print(f"modelgate: {exc}", file=sys.stderr)
            return 1
    print(org_id)
    return 0


def cmd_create_org(args: argparse.Namespace) -> int:
    return asyncio.run(_create_org(args))


def cmd_scim_token(args: argparse.Namespace) -> int:
    from modelgate.identity.admin import NoSuchOrganisation, issue_scim_token

    try:
        print(asyncio.run(issue_scim_token(_settings(args), organisation=args.org)))
    except NoSuchOrganisation as exc:
        print(f"modelgate: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_sso_only(args: argparse.Namespace) -> int:
    from modelgate.identity.admin import NoSuchOrganisation, set_sso_only

    try:
        asyncio.run(set_sso_only(_settings(args), organisation=args.org, sso_only=not args.off))
    except NoSuchOrganisation as exc:
        print(f"modelgate: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from modelgate.store.db import upgraded

    async def run() -> None:
        async with upgraded(_settings(args)):
            pass

    asyncio.run(run())
    print("database is up to date")
    return 0


def cmd_catalog_prices(args: argparse.Namespace) -> int:
    """Without --from: the catalogue's price table. With --from: the diff against a LiteLLM price
    map, applied to the operator's catalogue file on confirmation (docs/pricing.md)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from modelgate.catalog.loader import CatalogError, load_catalog_files
    from modelgate.catalog.refresh import apply, load_price_map, plan, price_table

    config = args.config or os.environ.get("MODELGATE_CONFIG")
    try:
        # A catalogue file not written yet is created by --from (the built-in catalogue alone).
        providers, models = load_catalog_files(config if config and Path(config).exists() else None)
    except CatalogError as exc:
        print(f"modelgate: configuration error: {exc}", file=sys.stderr)
        return 2
    if not args.source:
        print(price_table(models))
        return 0
    path = Path(args.source)
    try:
        price_map = load_price_map(path)
    except (OSError, ValueError) as exc:
        print(f"modelgate: cannot read the price map: {exc}", file=sys.stderr)
        return 2
    as_of = args.as_of or datetime.now(UTC).date().isoformat()
    diff, new = plan(models, providers, price_map, source=f"LiteLLM price map {path.name}", as_of=as_of)
    print(diff.report())
    if not new:
        return 0
    target = Path(config or "modelgate.yaml")
    if not args.yes:
        try:
            answer = input(f"Write these prices into {target}? [y/N] ").strip().lower()
        except EOFError:  # no terminal to ask: nothing is written without --yes
            answer = ""
        if answer not in ("y", "yes"):
            print("nothing written")
            return 1
    apply(target, models, new)
    print(f"wrote {len(new)} price sheet(s) to {target}; restart modelgate (or point MODELGATE_CONFIG at it)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgate", description="Self-hostable LLM API gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=os.environ.get("MODELGATE_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("MODELGATE_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("MODELGATE_WORKERS", "1")))
    serve.add_argument("--config", help="catalogue YAML merged over the built-in one (MODELGATE_CONFIG)")
    serve.add_argument("--database-url", help="database URL (MODELGATE_DATABASE_URL)")
    serve.set_defaults(func=cmd_serve)

    admin = sub.add_parser("admin", help="administration").add_subparsers(dest="admin_command", required=True)
    ck = admin.add_parser(
        "create-key", help="create an account if missing, add credits, print only the new key"
    )
    ck.add_argument("--email", required=True)
    ck.add_argument("--credits-usd", type=float, default=0.0)
    ck.add_argument("--name")
    ck.add_argument("--management", action="store_true", help="a management key (manages keys only)")
    ck.add_argument("--database-url")
    ck.set_defaults(func=cmd_create_key)

    tu = admin.add_parser("top-up", help="add credits to an account")
    tu.add_argument("--email", required=True)
    tu.add_argument("--usd", type=float, required=True)
    tu.add_argument("--database-url")
    tu.set_defaults(func=cmd_top_up)

    sp = admin.add_parser(
        "set-password", help="set an account's web password (read from stdin, never echoed)"
    )
    sp.add_argument("--email", required=True)
    sp.add_argument("--database-url")
    sp.set_defaults(func=cmd_set_password)

    mo = admin.add_parser("make-operator", help="let an account use the operator console (/admin)")
    mo.add_argument("--email", required=True)
    mo.add_argument("--revoke", action="store_true", help="take the operator role away instead")
    mo.add_argument("--database-url")
    mo.set_defaults(func=cmd_make_operator)

    sl = admin.add_parser("sign-in-link", help="print a one-time web sign-in link (valid 24 hours)")
    sl.add_argument("--email", required=True)
    sl.add_argument("--base-url", help="this server's address as users reach it (default: host:port)")
    sl.add_argument("--database-url")
    sl.set_defaults(func=cmd_sign_in_link)

    co = admin.add_parser("create-org", help="create a team organisation owned by an account; print its id")
    co.add_argument("name", help="its name (unique among team organisations, ignoring case)")
    co.add_argument("--owner", required=True, help="the owner's email (an existing account)")
    co.add_argument("--postpaid", action="store_true", help="no balance limit (default: prepaid, $0)")
    co.add_argument("--database-url")
    co.set_defaults(func=cmd_create_org)

    st = admin.add_parser(
        "scim-token", help="print a new SCIM token of a team organisation (docs/identity.md)"
    )
    st.add_argument("--org", required=True, help="the organisation's name")
    st.add_argument("--database-url")
    st.set_defaults(func=cmd_scim_token)

    so = admin.add_parser(
        "sso-only", help="refuse passwords of an organisation's members (operators excepted)"
    )
    so.add_argument("--org", required=True, help="the organisation's name")
    so.add_argument("--off", action="store_true", help="allow their passwords again")
    so.add_argument("--database-url")
    so.set_defaults(func=cmd_sso_only)

    cat = sub.add_parser("catalog", help="the model catalogue").add_subparsers(
        dest="catalog_command", required=True
    )
    cp = cat.add_parser("prices", help="show the price table, or refresh prices from a LiteLLM price map")
    cp.add_argument(
        "--from", dest="source", help="a LiteLLM model_prices_and_context_window.json to diff against"
    )
    cp.add_argument("--config", help="the operator's catalogue file to write into (MODELGATE_CONFIG)")
    cp.add_argument("--as-of", help="the date the price map was taken (default: today, UTC)")
    cp.add_argument("--yes", action="store_true", help="apply without asking")
    cp.set_defaults(func=cmd_catalog_prices)

    dbp = sub.add_parser("db", help="database").add_subparsers(dest="db_command", required=True)
    up = dbp.add_parser("upgrade", help="create or migrate the schema")
    up.add_argument("--database-url")
    up.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        # An unreachable database (or one refusing the connection): one line, not a traceback.
        from modelgate.store.outage import redacted, start_failure

        cause = start_failure(exc)
        if cause is None:
            raise
        url = redacted(os.environ.get("MODELGATE_DATABASE_URL") or Settings().database_url)
        print(f"modelgate: cannot use the database {url}: {cause}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
