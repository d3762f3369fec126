"""Round trips to PostgreSQL, counted on the wire: a TCP proxy between the gateway and the server
that reads the client's half of the protocol and counts, per statement, every point where the
client waits for the server (a ``Sync`` after extended-protocol messages, or a simple ``Query``).

Deterministic whatever the machine's load, and independent of the client library: what asyncpg's
prepared statements, SQLAlchemy's pool pings and transactions really send. Used by
``bench/hotpath.py --pg-trips`` (round trips per request by statement). The proxy answers a
client's TLS request with "no", so the counted link is plain text (the server must accept that).

    trips = Trips("127.0.0.1", 5432); port = trips.start()   # in a thread of its own
    ... point the gateway at 127.0.0.1:port ...
    trips.snapshot() -> {statement label: round trips}
"""

from __future__ import annotations

import asyncio
import re
import struct
import threading
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

_SPECIAL = {80877103, 80877104, 80877102}  # SSLRequest, GSSENCRequest, CancelRequest


def label(sql: str) -> str:
    """A short name for a statement: its first words, whitespace folded."""
    text = re.sub(r"\s+", " ", sql).strip()
    return text[:72] + ("..." if len(text) > 72 else "")


class _Conn:
    """One client connection's parser state."""

    def __init__(self, counts: Counter[str], lock: threading.Lock) -> None:
        self.counts = counts
        self.lock = lock
        self.buf = b""
        self.started = False
        self.statements: dict[bytes, str] = {}  # prepared statement name -> SQL
        self.pending: str | None = None  # the statement since the last Sync

    def feed(self, data: bytes) -> None:
        self.buf += data
        while True:
            if not self.started:  # the startup message (forwarded before this is called)
                if len(self.buf) < 8:
                    return
                (length,) = struct.unpack("!I", self.buf[:4])
                if len(self.buf) < length:
                    return
                self.buf = self.buf[length:]
                self.started = True
                continue
            if len(self.buf) < 5:
                return
            kind = self.buf[:1]
            (length,) = struct.unpack("!I", self.buf[1:5])
            if len(self.buf) < 1 + length:
                return
            body, self.buf = self.buf[5 : 1 + length], self.buf[1 + length :]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind == b"P":  # Parse: name, query
            name, rest = body.split(b"\x00", 1)
            sql = rest.split(b"\x00", 1)[0].decode("utf-8", "replace")
            self.statements[name] = sql
            self.pending = self.pending or sql
        elif kind == b"B":  # Bind: portal, statement
            statement = body.split(b"\x00", 2)[1]
            self.pending = self.pending or self.statements.get(statement, "?")
        elif kind == b"S":  # Sync: the client waits for ReadyForQuery
            self._count(self.pending or "(sync)")
            self.pending = None
        elif kind == b"Q":  # a simple query: one round trip
            self._count(body.split(b"\x00", 1)[0].decode("utf-8", "replace"))

    def _count(self, sql: str) -> None:
        with self.lock:
            self.counts[label(sql)] += 1


class Trips:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.listen_port = 0

    def start(self) -> int:
        threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True).start()
        if not self._ready.wait(10):
            raise RuntimeError("the round-trip proxy did not start")
        return self.listen_port

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def url(self, db_url: str) -> str:
        """``db_url`` through this proxy."""
        parts = urlsplit(db_url)
        netloc = parts.netloc.rsplit("@", 1)
        user = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunsplit((parts.scheme, f"{user}127.0.0.1:{self.listen_port}", parts.path, parts.query, ""))

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.listen_port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        conn = _Conn(self.counts, self._lock)

        async def client_to_server() -> None:
            while True:  # TLS or GSS requested first: answered "no" here, never forwarded
                head = await reader.readexactly(8)
                (length, code) = struct.unpack("!II", head)
                if code not in _SPECIAL or length != 8:
                    rest = await reader.readexactly(length - 8)
                    conn.feed(head + rest)
                    up_writer.write(head + rest)
                    break
                writer.write(b"N")
            while data := await reader.read(65536):
                conn.feed(data)
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        try:
            await asyncio.gather(client_to_server(), server_to_client())
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            up_writer.close()
