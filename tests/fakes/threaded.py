"""An event loop in a background thread, for fakes that serve live servers in blocking tests."""

from __future__ import annotations

import asyncio
import threading
from typing import Any


class BackgroundLoop:
    """An event loop in a daemon thread, for fakes that must outlive a blocking test call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
