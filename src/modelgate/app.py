"""The application factory. ``build_app(settings)`` wires everything; nothing lives at module level.

A request's path: ``doors/asgi.py`` (body limit, the door for the path) → ``doors/<dialect>/door.py``
(parse, render) → ``gateway/core.py`` (admit, hold, route, settle, log) → ``gateway/router.py``
(chain, retries, breaker) → ``providers/<type>.py`` (the upstream protocol).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import Response

from modelgate.accounts.keys import KeyAuthenticator
from modelgate.api.routes import service_routers
from modelgate.cache import build_cache
from modelgate.catalog.loader import load_catalog_files
from modelgate.catalog.registry import Catalog
from modelgate.doors import default_doors
from modelgate.doors.asgi import Edge
from modelgate.doors.responses import routes as responses_api
from modelgate.gateway.catalog_overlay import CatalogOverlay
from modelgate.gateway.core import MeteredCore
from modelgate.gateway.holds import HoldPolicy
from modelgate.gateway.router import Router
from modelgate.httpkit import head
from modelgate.httpkit.contract import openapi_document
from modelgate.httpkit.deps import AppState
from modelgate.httpkit.errors import install_error_handlers
from modelgate.identity import scim as scim_api
from modelgate.limits import build_limiter, limits_resolver, share_invalidations
from modelgate.mail.alerts import send_alerts
from modelgate.mail.sender import Mailer
from modelgate.mail.spend_alerts import SpendAlerts
from modelgate.observability.metrics import Metrics
from modelgate.observability.model_metrics import ModelMetrics
from modelgate.observability.tracing import build_tracer
from modelgate.providers.base import ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry, build_providers, check_types
from modelgate.settings import Settings, sqlite_path
from modelgate.store.db import Database
from modelgate.store.holds_owners import FileOwners, new_owner_id
from modelgate.store.keys import last_used_through
from modelgate.store.lease_keeper import LeaseKeeper
from modelgate.store.leases import LeaseBook
from modelgate.store.ledger import Ledger, LedgerBase
from modelgate.store.ledger_pg import PGLedger
from modelgate.store.ledger_sqlite import SQLiteLedger
from modelgate.store.log_sink import PGWriterLogSink, RequestLogSink, WriterLogSink
from modelgate.store.outage import is_unreachable
from modelgate.store.outage_journal import Journal
from modelgate.store.pg_writer import PGWriter
from modelgate.store.responses import ResponseStore
from modelgate.store.sqlite_writer import SQLiteWriter
from modelgate.web import install as install_web

log = logging.getLogger("modelgate")

EXPOSED_HEADERS = [
    "x-inference-id",
    "x-client-request-id",
    "x-aimlapi-credits-used",
    "x-aimlapi-usd-spent",
    "x-modelgate-provider",
    "x-modelgate-dropped",
    "x-modelgate-dropped-tools",
    "x-modelgate-cache",
    "x-should-retry",
    "Retry-After",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
]


def load_catalog(settings: Settings, registry: ProviderTypeRegistry) -> Catalog:
    providers, model_list = load_catalog_files(settings.config)
    catalog = Catalog(providers=providers, models=model_list)
    check_types(catalog, registry, str(settings.config or "built-in catalogue"))
    return catalog


class GatewayApp(FastAPI):
    """FastAPI behind ``doors/asgi.py``'s ``Edge``: every request passes the edge first (one body
    limit for all), and door requests are answered there without FastAPI's routing."""

    edge: Edge | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if head.is_head(scope):  # HEAD wherever GET is served (httpkit/head.py)
            scope, send = head.as_get(scope, send)
        if self.edge is not None:  # the edge calls FastAPI.__call__ itself for non-door requests
            await self.edge(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _billing_backend(
    db: Database, settings: Settings
) -> tuple[LedgerBase, RequestLogSink, list[Callable[[], Awaitable[None]]]]:
    """The ledger, the log sink and what closes them (in order, after both are flushed).
    SQLite file: one group-commit connection on the event loop for holds, settles and log rows.
    PostgreSQL: the same idea, one connection and one statement per batch (``store/pg_writer.py``).
    In-memory SQLite: short SQLAlchemy transactions and a batching log writer."""
    path = sqlite_path(db.url)
    if db.is_sqlite and path is not None:
        writer = SQLiteWriter(path, timeout=settings.database_timeout)
        writer.start()
        owners = FileOwners(path.with_name(path.name + "-owners"), new_owner_id())
        owners.start()

        async def close_owners() -> None:
            owners.close()

        return SQLiteLedger(writer, owners), WriterLogSink(writer), [writer.aclose, close_owners]
    if not db.is_sqlite:
        pg = PGWriter(
            db.url.replace("+asyncpg", "", 1),
            owner=new_owner_id(),
            synchronous_commit=settings.ledger_synchronous_commit,
            timeout=settings.database_timeout,
        )
        await pg.start()
        leases = _lease_keeper(pg, db, settings)
        if leases is None:
            return PGLedger(pg, db.engine), PGWriterLogSink(pg), [pg.aclose]
        await leases.start()  # before the start-up sweep: a previous process's journal is applied
        return PGLedger(pg, db.engine, leases), PGWriterLogSink(pg), [leases.aclose, pg.aclose]
    logsink = RequestLogSink(
        db.engine, interval=settings.log_flush_interval, batch_size=settings.log_batch_size
    )
    return Ledger(db.engine), logsink, []


def _lease_keeper(pg: PGWriter, db: Database, settings: Settings) -> LeaseKeeper | None:
    """Leases and the outage journal (docs/deploy.md "Riding out a database outage"), when on."""
    if settings.lease_seconds <= 0:
        return None
    folder = settings.outage_journal
    if folder is None:
        digest = hashlib.sha256(db.url.encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / "modelgate-journal" / digest
    book = LeaseBook(owner=pg.owner, horizon=settings.lease_seconds, fraction=settings.lease_fraction)
    return LeaseKeeper(pg, db.engine, book, Journal(folder))


def _share_form_limits(app: FastAPI, limiter: Any, *, prefix: str) -> None:
    """With Redis, the log-in and sign-up limits count across every worker and instance."""
    web = getattr(app.state, "web", None)
    client = getattr(limiter, "client", None)
    if web is None or client is None:
        return
    from modelgate.web.ratelimit import RedisWindows

    shared = RedisWindows(client, prefix=prefix, timeout=float(getattr(limiter, "timeout", 0.5)))
    web.login_limiter.store = shared
    web.signup_limiter.store = shared


def build_app(
    settings: Settings | None = None,
    *,
    registry: ProviderTypeRegistry | None = None,
    freeze_gc: bool = False,
) -> FastAPI:
    """The gateway as an ASGI app. ``freeze_gc`` (server processes only): once started, move every
    object alive (modules, catalogue, app) out of the garbage collector's sight, so that its
    periodic full collections stop walking hundreds of thousands of long-lived objects (a pause of
    milliseconds in the middle of requests)."""
    settings = settings or Settings()
    registry = registry or ProviderTypeRegistry.with_defaults()
    catalog = load_catalog(settings, registry)  # fail fast, before the server binds

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url, timeout=settings.database_timeout)
        await db.upgrade()  # Alembic migrations to head
        context = ProviderContext()
        providers = build_providers(catalog, registry, context)
        ledger, logsink, closers = await _billing_backend(db, settings)
        hold_timeout = timedelta(seconds=settings.hold_timeout)
        await ledger.release_stale(older_than=hold_timeout)
        logsink.start()
        leases = ledger.leases if isinstance(ledger, PGLedger) else None
        keys = KeyAuthenticator(
            db.engine,
            ttl=settings.key_cache_ttl,
            timeout=settings.database_timeout,
            stale_on_outage=leases is not None,
        )
        if isinstance(logsink, WriterLogSink):  # a SQLite file: no write transaction besides the writer's
            keys.write_last_used = last_used_through(logsink.writer)
        metrics = Metrics()
        metrics.watch_queue_depth(providers)
        metrics.log_rows_set_aside.fn = lambda: {(): float(logsink.set_aside())}
        if leases is not None:
            metrics.leased_credits.fn = lambda: {(): float(leases.book.held())}
            metrics.outage_journal_entries.fn = lambda: {(): float(leases.journal.unapplied)}
        limiter = build_limiter(
            settings.redis_url, prefix=settings.redis_prefix, timeout=settings.redis_timeout
        )
        await share_invalidations(keys, limiter)  # with Redis: a disabled key is refused everywhere
        _share_form_limits(app, limiter, prefix=settings.redis_prefix)
        cache, cache_table = build_cache(
            settings,
            db=db,
            writer=logsink.writer if isinstance(logsink, WriterLogSink) else None,
            limiter=limiter,
            catalog=catalog,
            providers=providers,
            metrics=metrics,
        )
        tracer = build_tracer(
            {name: p.type for name, p in catalog.providers.items()}, content=settings.trace_content
        )
        router = Router(catalog, providers)
        router.on_upstream_error = lambda name, exc: metrics.upstream_error(
            name, getattr(exc, "upstream_status", None) or exc.code or exc.status_code
        )
        core = MeteredCore(
            catalog=catalog,
            providers=providers,
            router=router,
            ledger=ledger,
            logsink=logsink,
            limiter=limiter,
            limits_for=limits_resolver(
                rpm=settings.rate_limit_rpm, tpm=settings.rate_limit_tpm, overrides=settings.rate_limits
            ),
            metrics=metrics,
            limiter_policy=settings.redis_failure_policy,
            write_wait=settings.database_timeout,
            hold_policy=HoldPolicy(output_floor=settings.hold_output_tokens),
            cache=cache,
            tracer=tracer,
        )
        live = ModelMetrics(
            known_models=[m.id for m in catalog.models],
            window_seconds=settings.model_metrics_window,
            redis_url=settings.redis_url,
            prefix=settings.redis_prefix,
            redis_timeout=settings.redis_timeout,
        )
        live.start()
        core.recorder.model_metrics = live
        app.state.mg = AppState(settings=settings, db=db, catalog=catalog, core=core, keys=keys)
        stored = ResponseStore(
            db.engine,
            retention_days=settings.responses_retention_days,
            writer=logsink.writer if isinstance(logsink, WriterLogSink | PGWriterLogSink) else None,
            timeout=settings.database_timeout,
        )
        app.state.mg.extras.update(metrics=metrics, limiter=limiter, model_metrics=live, responses=stored)
        flusher = asyncio.create_task(_periodic(keys.flush_last_used, 5.0))
        sweeper = asyncio.create_task(
            _periodic(lambda: ledger.release_stale(older_than=hold_timeout), settings.hold_sweep_interval)
        )
        purger = asyncio.create_task(_periodic(stored.purge_expired, 3600.0))  # retention of /v1/responses
        overlay = CatalogOverlay(catalog, providers, registry, context, core.spawn)
        overlay.on_change = lambda changed: live.know(m.id for m in changed.models)
        await overlay.refresh(db.engine)  # the console's catalogue entries (gateway/catalog_overlay.py)
        app.state.mg.extras["catalog_overlay"] = overlay
        cataloguer = asyncio.create_task(
            _periodic(lambda: overlay.refresh(db.engine), settings.catalog_poll_interval)
        )
        mailer = Mailer(settings)
        app.state.mg.extras["mailer"] = mailer
        alerter = asyncio.create_task(
            _periodic(lambda: send_alerts(db.engine, mailer), settings.alert_interval)
        )
        spend_alerts = SpendAlerts(db.engine, settings, mailer)  # raised and delivered off the request path
        app.state.mg.extras["spend_alerts"] = spend_alerts
        alert_sender = asyncio.create_task(_periodic(spend_alerts.tick, settings.spend_alert_interval))
        cache_purger = asyncio.create_task(_periodic(cache_table.purge, 600.0))  # expired cache entries
        # Body logging (gateway/bodies.py): the console's switch, polled like the catalogue version;
        # bodies past the retention period are swept on every instance (one idempotent DELETE).
        core.bodies.max_bytes = settings.body_max_bytes
        await core.bodies.refresh(db.engine, settings)
        body_poller = asyncio.create_task(
            _periodic(lambda: core.bodies.refresh(db.engine, settings), settings.catalog_poll_interval)
        )
        body_sweeper = asyncio.create_task(_periodic(lambda: core.bodies.sweep(db.engine), 600.0))
        if settings.warm_up:
            for provider in providers.values():
                core.spawn(provider.start())
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            tasks = (flusher, sweeper, purger, alerter, alert_sender, cache_purger, cataloguer)
            for task in (*tasks, body_poller, body_sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await core.drain_background()
            await ledger.drain()
            await keys.flush_last_used()
            await spend_alerts.aclose()
            await mailer.aclose()
            await logsink.aclose()
            for close in closers:
                await close()
            with contextlib.suppress(Exception):
                await limiter.aclose()
            await live.aclose()
            for provider in providers.values():
                with contextlib.suppress(Exception):
                    await provider.aclose()
            await cache_table.aclose()
            if tracer is not None:
                await asyncio.to_thread(tracer.shutdown)  # the spans still queued are exported
            await db.aclose()

    app = GatewayApp(title="modelgate", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    doors = default_doors()
    app.edge = Edge(
        super(GatewayApp, app).__call__,
        lambda: app.state.mg,
        doors,
        max_body=settings.max_body_bytes,
        cors_origins=settings.cors_origins,
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    install_error_handlers(app)
    for service_router in service_routers():
        app.include_router(service_router)
    app.include_router(responses_api.router)
    install_web(app)
    scim_api.install(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.openapi = lambda: openapi_document(app, doors)  # type: ignore[method-assign]

    return app


async def _periodic(fn: Any, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await fn()
        except Exception as exc:
            if is_unreachable(exc):  # an outage, said in one line (it is tried again next time)
                log.warning("periodic task skipped: the database is unreachable (%s)", type(exc).__name__)
            else:
                log.exception("periodic task failed")


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``modelgate serve --workers N``)."""
    return build_app(Settings(), freeze_gc=True)
