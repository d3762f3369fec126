"""A fake of the Amazon Bedrock runtime: Converse and InvokeModel, whole and streamed.

- ``POST /model/{modelId}/converse`` | ``converse-stream`` | ``invoke`` | ``invoke-with-response-stream``.
- Every request's SigV4 signature is **recomputed here** from the request as received (its raw
  path, query, the signed headers, the SHA-256 of the body) with the fake's own secret, and compared;
  the credential scope must name this region and the ``bedrock`` service, ``X-Amz-Date`` must be
  within five minutes, and with temporary credentials ``X-Amz-Security-Token`` must match and be
  signed. A failure is the 403 ``InvalidSignatureException`` / ``UnrecognizedClientException``
  Bedrock answers.
- A Converse body holding ``toolUse`` / ``toolResult`` blocks must have a ``toolConfig`` (400
  ``ValidationException`` otherwise, as Bedrock answers).
- An InvokeModel body must carry ``anthropic_version: bedrock-2023-05-31`` and neither ``model``
  nor ``stream`` (400 ``ValidationException``, "extraneous key ... is not permitted").
- Streams are AWS event-stream frames (``encode_frame``: prelude, headers, payload, both CRC32s).
  Scripted as ``SSEReply``s: each ``SSE(data, event=name)`` becomes one ``event`` frame with
  ``:event-type`` ``name`` (on InvokeModel streams, a ``chunk`` frame whose payload is
  ``{"bytes": base64(data)}``); ``event="exception:<name>"`` an exception frame.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import struct
import time
import zlib
from calendar import timegm
from typing import Any
from urllib.parse import quote, unquote

import orjson
from aiohttp import web

from tests.fakes import SSE, Reply, ScriptedServer, SSEReply
from tests.fakes.server import _encode

_PATH = re.compile(
    r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)$"
)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;-]+), ?Signature=(?P<sig>[0-9a-f]{64})$"
)
_EXCEPTIONS = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def encode_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message (string headers only, as Bedrock sends)."""
    raw_headers = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(name: str, data: Any) -> bytes:
    return encode_frame(
        {":event-type": name, ":content-type": "application/json", ":message-type": "event"}, _encode(data)
    )


def exception_frame(name: str, message: str) -> bytes:
    return encode_frame(
        {":exception-type": name, ":content-type": "application/json", ":message-type": "exception"},
        orjson.dumps({"message": message}),
    )


def bedrock_error(status: int) -> Reply:
    name = _EXCEPTIONS.get(status, "InternalServerException")
    return Reply(
        status=status,
        body={"message": f"{name}: upstream said {status}"},
        headers={"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
    )


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": name})


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class BedrockFake(ScriptedServer):
    def __init__(
        self,
        *,
        access_key: str = "AKIDFAKEBEDROCK",
        secret_key: str = "fake/secret+key",
        session_token: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        super().__init__()
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token
        self.region = region
        self.verified = 0  # signatures checked and accepted

    @property
    def base_url(self) -> str:
        return self.url

    def model_and_op(self, index: int = -1) -> tuple[str, str]:
        m = _PATH.match(self.requests[index].path)
        assert m is not None
        return unquote(m["model"]), m["op"]

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        m = _PATH.match(request.path)
        if request.method != "POST" or m is None:
            return _error(404, "UnknownOperationException", f"{request.path} not found")
        refused = self._verify(request, await request.read())
        if refused is not None:
            return refused
        self.verified += 1
        if m["op"].startswith("converse"):
            body = orjson.loads(await request.read())
            blocks = [b for msg in body.get("messages", []) for b in msg.get("content", [])]
            if any("toolUse" in b or "toolResult" in b for b in blocks) and "toolConfig" not in body:
                return _error(
                    400,
                    "ValidationException",
                    "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
                )
        if m["op"].startswith("invoke"):
            body = orjson.loads(await request.read())
            extraneous = [k for k in ("model", "stream") if k in body]
            if body.get("anthropic_version") != "bedrock-2023-05-31":
                return _error(400, "ValidationException", "anthropic_version: bedrock-2023-05-31 required")
            if extraneous:
                return _error(
                    400, "ValidationException", f"extraneous key [{extraneous[0]}] is not permitted"
                )
        return None

    def _verify(self, request: web.Request, body: bytes) -> web.Response | None:
        auth = _AUTH.match(request.headers.get("Authorization", ""))
        if auth is None:
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if auth["key"] != self.access_key:
            return _error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            stamp = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return _error(403, "InvalidSignatureException", "bad X-Amz-Date")
        if abs(time.time() - stamp) > 300 or auth["date"] != amz_date[:8]:
            return _error(403, "InvalidSignatureException", "Signature expired")
        if auth["region"] != self.region or auth["service"] != "bedrock":
            return _error(
                403, "InvalidSignatureException", "Credential should be scoped to a valid region/service"
            )
        signed = auth["signed"].split(";")
        required = {"host", "x-amz-date"} | ({"x-amz-security-token"} if self.session_token else set())
        if not required <= set(signed):
            return _error(403, "InvalidSignatureException", "required headers are not signed")
        if self.session_token and request.headers.get("X-Amz-Security-Token") != self.session_token:
            return _error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        raw_path, _, raw_query = request.raw_path.partition("?")
        uri = "/".join(quote(segment, safe="~") for segment in raw_path.split("/"))
        query = "&".join(
            sorted(
                f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}"
                for k, _, v in (p.partition("=") for p in raw_query.split("&") if p)
            )
        )
        headers = "".join(f"{h}:{' '.join(request.headers.get(h, '').split())}\n" for h in signed)
        creq = f"POST\n{uri}\n{query}\n{headers}\n{auth['signed']}\n{hashlib.sha256(body).hexdigest()}"
        scope = f"{auth['date']}/{self.region}/bedrock/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        key = _hmac(
            _hmac(_hmac(_hmac(f"AWS4{self.secret_key}".encode(), auth["date"]), self.region), "bedrock"),
            "aws4_request",
        )
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, auth["sig"]):
            return _error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    async def _sse(self, request: web.Request, reply: SSEReply) -> web.StreamResponse:
        """Scripted streams in event-stream framing instead of SSE."""
        invoke = request.path.endswith("/invoke-with-response-stream")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        resp.content_type = "application/vnd.amazon.eventstream"
        await resp.prepare(request)
        for n, ev in enumerate(reply.events):
            if reply.reset_after is not None and n >= reply.reset_after:
                break
            if ev.delay:
                await asyncio.sleep(ev.delay)
            await resp.write(self._frame(ev, invoke))
        if reply.reset_after is not None:
            if request.transport is not None:
                request.transport.close()
            return resp
        if reply.tail:
            await resp.write(reply.tail)
        await resp.write_eof()
        return resp

    @staticmethod
    def _frame(ev: SSE, invoke: bool) -> bytes:
        name = ev.event or ""
        if name.startswith("exception:"):
            data = ev.data if isinstance(ev.data, dict) else {}
            return exception_frame(name.split(":", 1)[1], str(data.get("message", "failed")))
        if invoke:
            return event_frame("chunk", {"bytes": base64.b64encode(_encode(ev.data)).decode()})
        return event_frame(name, ev.data)


def converse_text(
    text: str = "Hello there", *, input_tokens: int = 9, output_tokens: int = 2
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 120},
    }


def converse_stream(words: tuple[str, ...] = ("Hello", " there"), **kw: Any) -> SSEReply:
    events = [SSE({"role": "assistant"}, event="messageStart")]
    events += [SSE({"contentBlockIndex": 0, "delta": {"text": w}}, event="contentBlockDelta") for w in words]
    events += [
        SSE({"contentBlockIndex": 0}, event="contentBlockStop"),
        SSE({"stopReason": "end_turn"}, event="messageStop"),
        SSE(
            {"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}, "metrics": {"latencyMs": 90}},
            event="metadata",
        ),
    ]
    return SSEReply(events, **kw)


def anthropic_chunks(events: list[dict[str, Any]], **kw: Any) -> SSEReply:
    """Recorded Anthropic stream events (``{"event", "data"}``) as InvokeModel stream chunks."""
    return SSEReply([SSE(e["data"], event=e["event"]) for e in events], **kw)
