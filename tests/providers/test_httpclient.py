"""The lean upstream HTTP client against a raw TCP server that writes scripted bytes.

Each scripted answer is a list of steps (bytes to write, a float to sleep, ``CLOSE``), so framing
(Content-Length, chunked, end-of-connection), keep-alive reuse, resets and stalls are exercised
exactly as a real server would produce them.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from modelgate.catalog.models import ProviderConfig
from modelgate.providers.http import HTTPUpstream
from modelgate.providers.httpclient import (
    ConnectError,
    ConnectionClosed,
    HTTPClient,
    ReadTimeout,
)

CLOSE = object()
Step = bytes | float | object


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@dataclass
class RawServer:
    script: deque[list[Step]] = field(default_factory=deque)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                self.requests.append(head + await reader.readexactly(length))
                for step in self.script.popleft():
                    if step is CLOSE:
                        writer.close()
                        return
                    if isinstance(step, float):
                        await asyncio.sleep(step)
                    else:
                        assert isinstance(step, bytes)
                        writer.write(step)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def server() -> AsyncIterator[RawServer]:
    srv = RawServer()
    await srv.start()
    yield srv
    await srv.stop()


def client_for(srv: RawServer, *, read: float = 2.0, total: float = 5.0, path: str = "") -> HTTPClient:
    return HTTPClient(
        f"http://127.0.0.1:{srv.port}{path}",
        headers={"Authorization": "Bearer k", "User-Agent": "t"},
        connect_timeout=1.0,
        read_timeout=read,
        total_timeout=total,
    )


async def test_content_length_body_and_request_shape(server: RawServer) -> None:
    json_type = "Content-Type: application/json; charset=utf-8"
    server.script.append([ok(b'{"a":1}', json_type, "X-A: 1", "x-a: 2")])
    client = client_for(server, path="/v1")
    resp = await client.post("/chat/completions", b'{"q":true}', {"X-Extra": "yes"})
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["x-a"] == "1, 2"
    assert await resp.read() == b'{"a":1}'
    resp.release()
    req = server.requests[0]
    assert req.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in req
    assert b"Authorization: Bearer k\r\n" in req and b"X-Extra: yes\r\n" in req
    assert b"Content-Length: 10\r\n" in req and req.endswith(b'\r\n\r\n{"q":true}')
    await client.aclose()


async def test_keep_alive_reuses_one_connection(server: RawServer) -> None:
    for i in range(5):
        server.script.append([ok(str(i).encode())])
    client = client_for(server)
    for i in range(5):
        resp = await client.post("/x", b"{}")
        assert await resp.read() == str(i).encode()
        resp.release()
    assert server.connections == 1
    await client.aclose()


async def test_chunked_stream_lines_arrive_as_sent(server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.script.append(
        [head, chunk(b"data: one\r\n\r\n"), 0.05, chunk(b"data: t"), chunk(b"wo\r\n\r\nend\n"), b"0\r\n\r\n"]
    )
    server.script.append([ok(b"again")])
    client = client_for(server)
    resp = await client.post("/s", b"{}")
    lines = [line async for line in resp.lines()]
    assert lines == [b"data: one", b"", b"data: two", b"", b"end"]
    resp.release()
    resp = await client.post("/x", b"{}")  # the chunked answer ended cleanly: connection reused
    assert await resp.read() == b"again"
    assert server.connections == 1
    await client.aclose()


async def test_body_delimited_by_close(server: RawServer) -> None:
    server.script.append([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", CLOSE])
    server.script.append([ok(b"next")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"all of it"
    resp.release()
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"next"
    assert server.connections == 2
    await client.aclose()


async def test_connection_closed_by_server_while_idle_is_not_reused(server: RawServer) -> None:
    server.script.append([ok(b"first"), 0.05, CLOSE])  # answers, then closes the idle connection
    server.script.append([ok(b"second")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"first"
    resp.release()
    await asyncio.sleep(0.2)
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"second"
    assert server.connections == 2
    await client.aclose()


async def test_reset_before_the_answer_is_not_resent(server: RawServer) -> None:
    server.script.append([ok(b"first")])
    server.script.append([CLOSE])  # the kept-alive connection is reset on the second request
    server.script.append([ok(b"never")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    await resp.read()
    resp.release()
    with pytest.raises(ConnectionClosed):
        await client.post("/x", b"{}")
    assert len(server.requests) == 2  # a POST is never sent twice by the client
    await client.aclose()


async def test_reset_mid_body(server: RawServer) -> None:
    server.script.append([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", CLOSE])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    with pytest.raises(ConnectionClosed):
        await resp.read()
    resp.release()
    await client.aclose()


async def test_head_timeout(server: RawServer) -> None:
    server.script.append([1.0, ok(b"late")])
    client = client_for(server, read=0.1)
    with pytest.raises(ReadTimeout):
        await client.post("/x", b"{}")
    await client.aclose()


async def test_gap_between_body_reads_times_out(server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.script.append([head, chunk(b"ab\n"), 1.0, b"0\r\n\r\n"])
    client = client_for(server, read=0.2)
    resp = await client.post("/x", b"{}")
    got = []
    with pytest.raises(ReadTimeout):
        async for line in resp.lines():
            got.append(line)
    assert got == [b"ab"]
    resp.release()
    await client.aclose()


async def test_total_timeout_bounds_a_trickling_body(server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.script.append([head, *([chunk(b"x\n"), 0.1] * 20), b"0\r\n\r\n"])
    client = client_for(server, read=1.0, total=0.5)
    resp = await client.post("/x", b"{}")
    with pytest.raises(ReadTimeout):
        await resp.read()
    resp.release()
    await client.aclose()


async def test_connect_refused() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = HTTPClient(
        f"http://127.0.0.1:{port}", headers={}, connect_timeout=1.0, read_timeout=1.0, total_timeout=1.0
    )
    with pytest.raises(ConnectError):
        await client.post("/x", b"{}")
    await client.aclose()


async def test_malformed_response(server: RawServer) -> None:
    server.script.append([b"SMTP ready\r\n\r\n"])
    client = client_for(server)
    with pytest.raises(ConnectionClosed, match="malformed"):
        await client.post("/x", b"{}")
    await client.aclose()


async def test_a_second_unasked_answer_poisons_the_connection(server: RawServer) -> None:
    server.script.append([ok(b"one") + ok(b"two")])
    server.script.append([ok(b"fresh")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"one"
    resp.release()  # not pooled: the extra answer made it untrustworthy
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"fresh"
    assert server.connections == 2
    await client.aclose()


async def test_gzip_body_is_decoded(server: RawServer) -> None:
    packed = gzip.compress(b'{"zipped":true}')
    server.script.append([ok(packed, "Content-Encoding: gzip")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b'{"zipped":true}'
    resp.release()
    await client.aclose()


async def test_interim_100_continue_is_skipped(server: RawServer) -> None:
    server.script.append([b"HTTP/1.1 100 Continue\r\n\r\n", ok(b"real")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    assert resp.status == 200
    assert await resp.read() == b"real"
    resp.release()
    await client.aclose()


async def test_abandoned_stream_is_not_pooled(server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server.script.append([head, chunk(b"ab\n"), 0.5, b"0\r\n\r\n"])
    server.script.append([ok(b"fresh")])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    async for _line in resp.lines():
        break
    resp.release()  # not read to the end: the connection must be dropped, not reused
    resp = await client.post("/x", b"{}")
    assert await resp.read() == b"fresh"
    assert server.connections == 2
    await client.aclose()


async def test_large_body_with_slow_reader(server: RawServer) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB: beyond the buffer's high-water mark
    server.script.append([ok(body)])
    client = client_for(server)
    resp = await client.post("/x", b"{}")
    await asyncio.sleep(0.1)  # let the server fill the buffer: reading pauses, nothing is lost
    assert await resp.read() == body
    resp.release()
    await client.aclose()


def test_header_injection_refused() -> None:
    client = HTTPClient(
        "http://127.0.0.1:9", headers={}, connect_timeout=1.0, read_timeout=1.0, total_timeout=1.0
    )
    with pytest.raises(ValueError):
        client._request_head("/x", 0, {"X-A": "1\r\nX-Injected: 2"})
    with pytest.raises(ValueError):
        client._request_head("/x\nGET /", 0, None)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_checks_the_certificate_and_keeps_the_connection(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    srv = RawServer()
    await srv.start(tls=server_tls)
    srv.script.extend([[ok(b"secure")], [ok(b"again")]])
    url = f"https://127.0.0.1:{srv.port}/v1"
    untrusting = HTTPClient(url, headers={}, connect_timeout=2, read_timeout=2, total_timeout=5)
    with pytest.raises(ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await untrusting.post("/x", b"{}")  # the system's CAs do not know a self-signed certificate
    await untrusting.aclose()
    trusting = HTTPClient(
        url,
        headers={},
        connect_timeout=2,
        read_timeout=2,
        total_timeout=5,
        ssl_context=ssl.create_default_context(cafile=cert),
    )
    for expected in (b"secure", b"again"):
        resp = await trusting.post("/x", b"{}")
        assert await resp.read() == expected
        resp.release()
    assert srv.connections == 1  # one kept-alive TLS connection (the refused handshake never got in)
    await trusting.aclose()
    await srv.stop()


async def test_provider_option_tls_ca_file(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    srv = RawServer()
    await srv.start(tls=server_tls)
    srv.script.append([ok(b'{"private": "ca"}')])
    config = ProviderConfig(
        type="openai", base_url=f"https://127.0.0.1:{srv.port}/v1", options={"tls_ca_file": cert}
    )
    upstream = HTTPUpstream("internal", config, default_headers={})
    assert await upstream.post_json("/chat/completions", {"q": 1}) == {"private": "ca"}
    await upstream.aclose()
    await srv.stop()
    missing = config.model_copy(update={"options": {"tls_ca_file": "/nonexistent.pem"}})
    with pytest.raises(ValueError, match="tls_ca_file"):
        HTTPUpstream("internal", missing, default_headers={})
