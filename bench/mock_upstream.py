"""A fast mock OpenAI upstream for benchmarks: raw asyncio protocol + httptools parser on uvloop.

Answers ``POST */chat/completions`` at once with a fixed completion (JSON), or, when the body asks
for ``"stream": true``, with ``--chunks`` SSE chunks (plus a usage chunk and ``[DONE]``), sleeping
``--chunk-delay-ms`` between chunks so inter-chunk overhead can be measured. ``POST */embeddings``
answers one fixed ``--embed-dims``-long vector per input (JSON floats); ``POST */messages`` a fixed
Anthropic message, or its events (paced like the chat chunks) when the body asks for a stream.
``POST */images/generations`` answers one fixed image URL, ``POST */audio/speech`` 4 KiB of
``audio/mpeg`` bytes, ``POST */audio/transcriptions`` a fixed ``verbose_json`` transcript (2 s).
Anything else: 404.

    python bench/mock_upstream.py --port 9100 [--chunks 8] [--chunk-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

import httptools

JSON_BODY = (
    b'{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"mock-model",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the mock upstream."},'
    b'"finish_reason":"stop","logprobs":null}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":6,"total_tokens":18}}'
)
JSON_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(JSON_BODY)).encode()
    + b"\r\n\r\n"
)
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
MESSAGE_BODY = (
    b'{"id":"msg_mock","type":"message","role":"assistant","model":"mock-claude",'
    b'"content":[{"type":"text","text":"Hello from the mock upstream."}],"stop_reason":"end_turn",'
    b'"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,'
    b'"cache_read_input_tokens":0,"output_tokens":6}}'
)
MESSAGE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(MESSAGE_BODY)).encode()
    + b"\r\n\r\n"
)
RESPONSE_BODY = (  # OpenAI Responses (non-streaming)
    b'{"id":"resp_mock","object":"response","created_at":1700000000,"status":"completed","error":null,'
    b'"incomplete_details":null,"instructions":null,"model":"mock-model","output":[{"id":"msg_mock",'
    b'"type":"message","status":"completed","role":"assistant","content":[{"type":"output_text",'
    b'"text":"Hello from the mock upstream.","annotations":[],"logprobs":[]}]}],"parallel_tool_calls":true,'
    b'"metadata":{},"temperature":1.0,"top_p":1.0,"tool_choice":"auto","tools":[],"usage":{"input_tokens":12,'
    b'"input_tokens_details":{"cached_tokens":0},"output_tokens":6,"output_tokens_details":'
    b'{"reasoning_tokens":0},"total_tokens":18}}'
)
RESPONSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(RESPONSE_BODY)).encode()
    + b"\r\n\r\n"
)


def _json_reply(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nContent-Length: "
    return head + str(len(body)).encode() + b"\r\n\r\n" + body


MEDIA_REPLIES = {  # the media doors' upstream calls: small canned answers
    b"/images/generations": _json_reply(
        b'{"created":1700000000,"data":[{"url":"https://images.mock.invalid/1.png"}]}'
    ),
    b"/audio/speech": _json_reply(b"\xff\xfb\x90\x00" * 1024, b"audio/mpeg"),
    b"/audio/transcriptions": _json_reply(
        b'{"task":"transcribe","language":"english","duration":2.0,'
        b'"text":"Hello from the mock upstream.","segments":[]}'
    ),
}
_CHUNK = (
    b'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":"mock-model",'
    b'"choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}\n\n'
)
_LAST = (
    b'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":"mock-model",'
    b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,"model":"mock-model",'
    b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}\n\n'
    b"data: [DONE]\n\n"
)


_EMBED_CACHE: dict[int, bytes] = {}


def embeddings_reply(body: bytes, dims: int) -> bytes:
    """One vector per input of the request (cached per input count)."""
    raw = json.loads(body).get("input")
    n = len(raw) if isinstance(raw, list) and raw and not isinstance(raw[0], int) else 1
    if n not in _EMBED_CACHE:
        vector = ",".join(f"{(i % 97) / 97 - 0.5:.6f}" for i in range(dims))
        items = ",".join(f'{{"object":"embedding","index":{i},"embedding":[{vector}]}}' for i in range(n))
        payload = (
            f'{{"object":"list","data":[{items}],"model":"mock-embed",'
            f'"usage":{{"prompt_tokens":{8 * n},"total_tokens":{8 * n}}}}}'
        ).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        _EMBED_CACHE[n] = head + str(len(payload)).encode() + b"\r\n\r\n" + payload
    return _EMBED_CACHE[n]


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class MockProtocol(asyncio.Protocol):
    chunks = 8
    delay = 0.0
    embed_dims = 1536

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        url, body = self.url, b"".join(self.body)
        self.url, self.body = b"", []
        if url.endswith(b"/embeddings"):
            self.transport.write(embeddings_reply(body, self.embed_dims))
            return
        if url.endswith(b"/messages"):  # Anthropic Messages
            if _asks_stream(body):
                self._task = asyncio.ensure_future(self._anthropic_stream())
            else:
                self.transport.write(MESSAGE_HEAD + MESSAGE_BODY)
            return
        if url.endswith(b"/responses"):  # OpenAI Responses (non-streaming)
            self.transport.write(RESPONSE_HEAD + RESPONSE_BODY)
            return
        if not url.endswith(b"/chat/completions"):
            media = next((r for suffix, r in MEDIA_REPLIES.items() if url.endswith(suffix)), NOT_FOUND)
            self.transport.write(media)
            return
        if _asks_stream(body):
            if self.delay:
                self._task = asyncio.ensure_future(self._slow_stream())
            else:
                parts = [SSE_HEAD] + [_chunked(_CHUNK)] * self.chunks + [_chunked(_LAST), b"0\r\n\r\n"]
                self.transport.write(b"".join(parts))
            return
        self.transport.write(JSON_HEAD + JSON_BODY)

    async def _slow_stream(self) -> None:
        t = self.transport
        assert t is not None
        t.write(SSE_HEAD + _chunked(_CHUNK))
        for _ in range(self.chunks - 1):
            await asyncio.sleep(self.delay)
            if t.is_closing():
                return
            t.write(_chunked(_CHUNK))
        await asyncio.sleep(self.delay)
        if not t.is_closing():
            t.write(_chunked(_LAST) + b"0\r\n\r\n")

    async def _anthropic_stream(self) -> None:
        """Anthropic Messages events, the text deltas paced ``delay`` apart (at once when 0)."""
        t = self.transport
        assert t is not None
        t.write(SSE_HEAD + _chunked(_A_START + _A_DELTA))
        for _ in range(self.chunks - 1):
            if self.delay:
                await asyncio.sleep(self.delay)
            if t.is_closing():
                return
            t.write(_chunked(_A_DELTA))
        if self.delay:
            await asyncio.sleep(self.delay)
        if not t.is_closing():
            t.write(_chunked(_a_end(self.chunks)) + b"0\r\n\r\n")


def _asks_stream(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


_A_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_mock","type":"message",'
    b'"role":"assistant","model":"mock-claude","content":[],"stop_reason":null,"stop_sequence":null,'
    b'"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,'
    b'"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
_A_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"tok "}}\n\n'
)


def _a_end(chunks: int) -> bytes:
    return (
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        b'"stop_sequence":null},"usage":{"output_tokens":%d}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n' % chunks
    )


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MockProtocol, host, port, backlog=2048, reuse_address=True)
    print(f"mock upstream listening on http://{host}:{port} (pid {os.getpid()})", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--chunk-delay-ms", type=float, default=0.0)
    ap.add_argument("--embed-dims", type=int, default=1536)
    args = ap.parse_args()
    MockProtocol.embed_dims = args.embed_dims
    MockProtocol.chunks = max(1, args.chunks)
    MockProtocol.delay = args.chunk_delay_ms / 1000.0
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
