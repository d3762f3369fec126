"""The response cache (docs/cache.md): exact and semantic, per tenant, opt-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelgate.cache.stage import CacheConfig, CacheTable, ResponseCache

if TYPE_CHECKING:
    from modelgate.catalog.registry import Catalog
    from modelgate.settings import Settings
    from modelgate.store.db import Database


def build_cache(
    settings: Settings,
    *,
    db: Database,
    writer: Any,
    limiter: Any,
    catalog: Catalog,
    providers: dict[str, Any],
    metrics: Any,
) -> tuple[ResponseCache, CacheTable]:
    """The cache and its database table (for the purge). ``writer``: the SQLite file's group-commit
    writer, when the database is one."""
    from modelgate.cache.embed import catalog_embedder
    from modelgate.settings import sqlite_path
    from modelgate.store.response_cache import EngineCacheTable, SQLiteCacheTable

    path = sqlite_path(db.url) if db.is_sqlite else None
    table: Any = SQLiteCacheTable(path, writer) if path is not None and writer is not None else None
    table = table or EngineCacheTable(db.engine)
    exact: CacheTable | None = None
    client = getattr(limiter, "client", None)
    if settings.redis_url and client is not None:
        from modelgate.cache.redis_table import RedisCacheTable

        exact = RedisCacheTable(client, prefix=settings.redis_prefix, timeout=settings.redis_timeout)
    config = CacheConfig(
        mode=settings.cache_mode,
        ttl=settings.cache_ttl,
        hit_percent=settings.cache_hit_percent,
        threshold=settings.cache_similarity,
    )
    embedder = catalog_embedder(catalog, providers, settings.cache_embedding_model)
    cache = ResponseCache(table=table, exact=exact, embedder=embedder, config=config, metrics=metrics)
    return cache, table
