"""A real HTTP webhook receiver for the spend-alert tests: a threaded server on 127.0.0.1 that keeps
every request (headers, body), answers each with the next scripted status (then 200), and can hang
(hold a request unanswered until released)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self, statuses: list[int] | None = None, *, hang: bool = False) -> None:
        self.statuses = list(statuses or [])
        self.received: list[Received] = []
        self.hang = hang
        self.release = threading.Event()  # lets a hanging receiver answer
        self.answered = threading.Event()  # set once a hanging request has been answered
        self._lock = threading.Lock()
        self.url = ""

    def next_status(self) -> int:
        with self._lock:
            return self.statuses.pop(0) if self.statuses else 200

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        """Wait (a condition, not a duration) until ``count`` requests have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"the receiver got {len(self.received)} requests, not {count}")


@contextmanager
def webhook_receiver(statuses: list[int] | None = None, *, hang: bool = False) -> Iterator[Receiver]:
    receiver = Receiver(statuses, hang=hang)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with receiver._lock:
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
            if receiver.hang:
                receiver.release.wait(120)
            status = receiver.next_status()
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            if receiver.hang:
                receiver.answered.set()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/spend"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)
