"""Alembic migrations of the modelgate schema (run by ``modelgate db upgrade`` and on start)."""
