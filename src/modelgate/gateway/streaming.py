"""Reading an upstream stream independently of the client that receives it.

``UpstreamPump`` reads the provider's event iterator in its own task into a queue. A client that
leaves mid-stream therefore never cancels a read half-way (which would lose bytes already received
and the final usage), and after it left the pump either keeps draining the upstream for its usage
(network providers) or is cancelled at once (the local model, whose live counts are exact).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from modelgate.errors import GatewayError, UpstreamProtocolError
from modelgate.gateway.metered import Event
from modelgate.providers.base import Usage

_END = object()
WAIT = Event(None, output=False)  # ``UpstreamPump.take``: nothing read yet (compared by identity)


class UpstreamPump:
    __slots__ = (
        "_items",
        "_task",
        "_upstream",
        "_waiter",
        "abandoned",
        "ended",
        "finish",
        "produced",
        "since",
        "usage",
    )

    def __init__(self, first: Event | None, upstream: AsyncIterator[Event], *, provider: str) -> None:
        self._upstream = upstream
        # A queue of one reader: a deque and the reader's future (an asyncio.Queue costs ~8 Python
        # calls per event in its bookkeeping for many getters and putters).
        self._items: deque[object] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.usage: Usage | None = None
        self.finish: str | None = None
        # Events with output read from the upstream (the client may have seen fewer): what an
        # upstream that never reports usage is charged for.
        self.produced = 0
        # Of those, the ones read after the last event that carried usage: output the upstream's
        # last report does not count yet (what a stream cut after that report is estimated for).
        self.since = 0
        self.ended = False  # the upstream ended its stream itself (``usage`` is then its last word)
        self.abandoned = False
        if first is None:
            self.ended = True
            self._put(_END)
            self._task: asyncio.Task[None] | None = None
            return
        self._note(first)
        self._put(first)
        self._task = asyncio.ensure_future(self._run(provider))

    async def _run(self, provider: str) -> None:
        items = self._items
        try:
            async for event in self._upstream:
                # _note and _put inline: two calls per event fewer
                if event.output:
                    self.produced += 1
                    self.since += 1
                if event.usage is not None:
                    self.usage = event.usage
                    self.since = 0
                if event.finish is not None:
                    self.finish = event.finish
                if not self.abandoned:
                    items.append(event)
                    waiter = self._waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
            self.ended = True
            self._put(_END)
        except GatewayError as exc:
            self._put(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug must still end the stream with an error frame
            self._put(
                UpstreamProtocolError(
                    f"upstream {provider} stream failed: {type(exc).__name__}", provider=provider
                )
            )
        finally:
            close = getattr(self._upstream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    def _put(self, item: object) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _note(self, event: Event) -> None:
        if event.output:
            self.produced += 1
            self.since += 1
        if event.usage is not None:
            self.usage = event.usage
            self.since = 0
        if event.finish is not None:
            self.finish = event.finish

    def take(self) -> Event | None:
        """The next event if one is already read (None at the end), else ``WAIT``: call ``next()``.
        Raises the upstream's GatewayError. Lets the reader skip a coroutine per queued event."""
        items = self._items
        if not items:
            return WAIT
        item = items.popleft()
        if item.__class__ is Event:
            return item
        if item is _END:
            return None
        if isinstance(item, GatewayError):
            raise item
        assert isinstance(item, Event)
        return item

    async def next(self) -> Event | None:
        """The next event, None at the end; raises the upstream's GatewayError."""
        items = self._items
        while not items:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        item = items.popleft()
        if item is _END:
            return None
        if isinstance(item, GatewayError):
            raise item
        assert isinstance(item, Event)
        return item

    async def abandon(self, *, drain: bool, drain_seconds: float) -> Usage | None:
        """The client left: keep reading for the usage (``drain``) or stop the upstream now."""
        self.abandoned = True
        if self._task is None:
            return self.usage
        if drain:
            with contextlib.suppress(Exception, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), drain_seconds)
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        return self.usage


async def aclose(it: object) -> None:
    """Close an async iterator that may be a generator (releasing its upstream connection)."""
    close = getattr(it, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
