"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``), decoding side.

Each message::

    total length (uint32 BE) | headers length (uint32 BE) | prelude CRC32 (of the 8 bytes before)
    headers: name length (uint8) | name (UTF-8) | value type (uint8) | value
    payload
    message CRC32 (of everything before it)

Header value types: 0 true, 1 false, 2 byte, 3 int16, 4 int32, 5 int64, 6 bytes (uint16 length),
7 string (uint16 length), 8 timestamp (int64 ms), 9 UUID (16 bytes). Bedrock's streams carry
``:message-type`` (``event`` | ``exception`` | ``error``), ``:event-type`` / ``:exception-type``
and ``:content-type`` headers and a JSON payload. A bad CRC, an impossible length or a truncated
header is an ``UpstreamProtocolError``; bytes left over when the body ends mean a cut stream.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from modelgate.errors import UpstreamProtocolError

MAX_MESSAGE = 16 * 1024 * 1024
_PRELUDE = 12

HeaderValue = bool | int | bytes | str


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""


class EventStreamDecoder:
    """Feed body bytes as they arrive; get back the complete messages."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _fail(self, what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"upstream {self.provider} sent a bad event-stream message ({what})", provider=self.provider
        )

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while len(self._buf) >= _PRELUDE:
            total, headers_len, prelude_crc = struct.unpack_from(">III", self._buf, 0)
            if zlib.crc32(bytes(self._buf[:8])) != prelude_crc:
                raise self._fail("prelude checksum mismatch")
            if total < _PRELUDE + 4 or total > MAX_MESSAGE or headers_len > total - _PRELUDE - 4:
                raise self._fail("impossible length")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise self._fail("message checksum mismatch")
            headers = self._headers(frame[_PRELUDE : _PRELUDE + headers_len])
            out.append(Message(headers, frame[_PRELUDE + headers_len : -4]))
        return out

    def _headers(self, raw: bytes) -> dict[str, HeaderValue]:
        headers: dict[str, HeaderValue] = {}
        pos = 0
        try:
            while pos < len(raw):
                name_len = raw[pos]
                name = raw[pos + 1 : pos + 1 + name_len].decode()
                pos += 1 + name_len
                kind = raw[pos]
                pos += 1
                value: HeaderValue
                if kind in (0, 1):
                    value = kind == 0
                elif kind == 2:
                    value = struct.unpack_from(">b", raw, pos)[0]
                    pos += 1
                elif kind == 3:
                    value = struct.unpack_from(">h", raw, pos)[0]
                    pos += 2
                elif kind == 4:
                    value = struct.unpack_from(">i", raw, pos)[0]
                    pos += 4
                elif kind in (5, 8):
                    value = struct.unpack_from(">q", raw, pos)[0]
                    pos += 8
                elif kind in (6, 7):
                    (length,) = struct.unpack_from(">H", raw, pos)
                    data = raw[pos + 2 : pos + 2 + length]
                    if len(data) != length:
                        raise self._fail("truncated header")
                    value = data.decode() if kind == 7 else data
                    pos += 2 + length
                elif kind == 9:
                    value = raw[pos : pos + 16]
                    pos += 16
                else:
                    raise self._fail(f"unknown header type {kind}")
                headers[name] = value
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise self._fail("truncated header") from exc
        if pos != len(raw):
            raise self._fail("truncated header")
        return headers
