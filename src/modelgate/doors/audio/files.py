"""What an uploaded audio file is, read from its own bytes (never from what the client declares).

``sniff`` names the container from its magic bytes (the formats OpenAI takes: flac, mp3, mp4/m4a,
ogg, wav, webm); anything else is a 400. ``wav_seconds`` reads a WAV file's duration from its
``fmt `` and ``data`` chunks (data bytes / byte rate): the exact figure billing uses for WAV.
"""

from __future__ import annotations

import struct

from modelgate.errors import InvalidRequestError

FORMATS = "flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm"


def sniff(data: bytes) -> str:
    head = data[:16]
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    raise InvalidRequestError(
        f"file: not an audio file of a format this endpoint takes ({FORMATS})",
        param="file",
        code="invalid_file",
    )


def wav_seconds(data: bytes) -> float:
    """The duration of a WAV file; a 400 when its header does not hold one."""

    def bad(why: str) -> InvalidRequestError:
        return InvalidRequestError(f"file: an invalid WAV file ({why})", param="file", code="invalid_file")

    pos, byte_rate, size = 12, 0, None
    while pos + 8 <= len(data):
        chunk_id, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk_id == b"fmt ":
            if length < 16 or body + 16 > len(data):
                raise bad("a short fmt chunk")
            byte_rate = struct.unpack_from("<I", data, body + 8)[0]
        elif chunk_id == b"data":
            size = min(length, len(data) - body)  # a header may claim more than was sent
            break
        pos = body + length + (length & 1)
    if not byte_rate:
        raise bad("no fmt chunk with a byte rate")
    if size is None:
        raise bad("no data chunk")
    return float(size) / int(byte_rate)
