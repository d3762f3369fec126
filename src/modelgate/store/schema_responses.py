"""The tables of stored Responses API answers and their items, and of the response cache
(docs/cache.md); part of ``store/schema.py``'s metadata (``store/responses.py`` and
``store/response_cache.py`` read and write them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from modelgate.store.schema import Base, utcnow


class CachedResponse(Base):
    """One cached answer (docs/cache.md), in its tenant's namespace, until ``expires_at`` (epoch
    seconds). A semantic entry also has the hash of everything but its last user turn (``prefix``),
    that turn's numbers and negations (``guard``) and its embedding (``vector``: float32, unit
    length; the turn's text itself is not kept)."""

    __tablename__ = "response_cache"

    namespace: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    door: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str | None] = mapped_column(String(64), default=None)
    guard: Mapped[str | None] = mapped_column(String(200), default=None)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_response_cache_prefix", "namespace", "prefix"),
        Index("ix_response_cache_expires", "expires_at"),
    )


class StoredResponse(Base):
    """A Responses API answer kept for ``previous_response_id``, retrieval and deletion (``store``
    true), per account, until ``expires_at`` (the operator's retention setting)."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    key_id: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    native: Mapped[bool] = mapped_column(Boolean, default=False)  # passed through to a Responses upstream
    previous_response_id: Mapped[str | None] = mapped_column(String(128), default=None)
    thread_id: Mapped[str] = mapped_column(String(128))  # the first response of its chain
    body: Mapped[str] = mapped_column(Text)  # the response object as the client received it (JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_responses_account_thread", "account_id", "thread_id"),
        Index("ix_responses_expires", "expires_at"),
    )


class StoredResponseItem(Base):
    """The input and output items of a stored response, in order (``item_reference`` resolves
    them by id within the account)."""

    __tablename__ = "response_items"

    response_id: Mapped[str] = mapped_column(ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # input | output
    item_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[int] = mapped_column(Integer)
    data: Mapped[str] = mapped_column(Text)  # the item (JSON), as given or produced

    __table_args__ = (Index("ix_response_items_account_item", "account_id", "item_id"),)
