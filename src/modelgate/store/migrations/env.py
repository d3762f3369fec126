"""Alembic environment: always driven programmatically by ``modelgate.store.migrate``.

The caller passes an open synchronous connection in ``config.attributes["connection"]``; there is
no alembic.ini and no URL handling here.
"""

from __future__ import annotations

from alembic import context

from modelgate.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
