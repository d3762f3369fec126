"""The embedded speech synthesiser: eSpeak NG (``type: espeak``), a real formant synthesiser from the
Debian / Ubuntu package ``espeak-ng`` (its voices and phoneme data ship in ``espeak-ng-data``;
nothing is downloaded at run time). It serves ``type: speech`` models on CPU, WAV only.

The text goes to ``espeak-ng --stdout`` on stdin (never on the command line); the voice is the
route's ``model`` (an eSpeak voice such as ``en-us``), or ``options.voices[<OpenAI voice>]`` when the
route maps voice names; ``speed`` 1.0 is 175 words per minute. The WAV header eSpeak writes to a pipe
carries placeholder sizes: they are set to the real ones. A synthesiser that is not installed is a
503 (``ready()`` is false); one that fails or runs past ``options.timeout`` (30 s) is a 502/504.
"""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncIterator
from typing import Any

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import (
    InvalidRequestError,
    ProviderNotConfiguredError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from modelgate.providers.base import (
    AdapterDefaults,
    Chunk,
    Completion,
    ProviderCall,
    ProviderContext,
    SpeechCall,
)

WORDS_PER_MINUTE = 175
PIECE = 64 * 1024


def fix_wav_sizes(wav: bytes) -> bytes:
    """A RIFF/WAVE file with its RIFF size and its data chunk's size set to what it holds."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return wav
    out = bytearray(wav)
    struct.pack_into("<I", out, 4, len(out) - 8)
    pos = 12
    while pos + 8 <= len(out):
        chunk, length = bytes(out[pos : pos + 4]), struct.unpack_from("<I", out, pos + 4)[0]
        if chunk == b"data":
            struct.pack_into("<I", out, pos + 4, len(out) - pos - 8)
            break
        pos += 8 + length + (length & 1)
    return bytes(out)


class EspeakProvider(AdapterDefaults):
    supports_tools = False
    supports_json_schema = False
    supports_streaming = False
    supports_vision = False
    supports_embeddings = False
    forwards_unknown_fields = False
    drain_on_disconnect = True
    dialects: frozenset[str] = frozenset()

    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        self.name = name
        self._binary = shutil.which(str(config.options.get("binary", "espeak-ng")))
        timeout = config.options.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"provider {name}: options.timeout must be a number of seconds > 0")
        self._timeout = float(timeout)

    def ready(self) -> bool:
        return self._binary is not None

    async def aclose(self) -> None:
        return None

    async def complete(self, call: ProviderCall) -> Completion:
        raise InvalidRequestError(f"{call.model.id}: the espeak provider only speaks (/v1/audio/speech)")

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        raise InvalidRequestError(f"{call.model.id}: the espeak provider only speaks (/v1/audio/speech)")
        yield  # pragma: no cover

    def _voice(self, call: SpeechCall) -> str:
        voices: Any = call.extra.get("voices")
        voice = voices.get(call.voice) if isinstance(voices, dict) else None
        return str(voice or call.upstream_model)

    async def speech(self, call: SpeechCall) -> AsyncIterator[bytes]:
        if self._binary is None:
            raise ProviderNotConfiguredError(f"provider {self.name}: espeak-ng is not installed")
        if call.response_format != "wav":
            raise InvalidRequestError(
                "response_format: the embedded synthesiser makes wav only", param="response_format"
            )
        speed = call.options.get("speed", 1.0)
        wpm = max(80, min(450, round(WORDS_PER_MINUTE * float(speed))))
        proc = await asyncio.create_subprocess_exec(
            self._binary,
            "-v",
            self._voice(call),
            "-s",
            str(wpm),
            "--stdout",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(call.input.encode()), self._timeout)
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"espeak-ng ran past {self._timeout:g} s", provider=self.name
            ) from None
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0 or not out.startswith(b"RIFF"):
            raise UpstreamProtocolError(f"espeak-ng failed (exit {proc.returncode})", provider=self.name)
        wav = fix_wav_sizes(out)
        for start in range(0, len(wav), PIECE):
            yield wav[start : start + PIECE]


def create(name: str, config: ProviderConfig, context: ProviderContext) -> EspeakProvider:
    return EspeakProvider(name, config, context)
