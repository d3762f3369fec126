"""Identity tests reuse the two-instance set-up of tests/scale (PostgreSQL + Redis, threads)."""

from tests.scale.conftest import cluster, redis_prefix

__all__ = ["cluster", "redis_prefix"]
