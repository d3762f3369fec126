"""The embedded speech recogniser: CMU PocketSphinx 5 (the ``pocketsphinx`` PyPI package) with the
US-English model that ships inside its wheel (a semi-continuous acoustic model, the CMU
pronouncing dictionary and a trigram language model, under ``pocketsphinx/model/en-us``). Nothing
is downloaded at run time.

It runs inside the recognition worker process (``worker.py``), never in the gateway's:

    command thread                        recognition thread (owns the Decoder)
    submit(job) ─▶ queue of jobs ──────▶  one job at a time: WAV → 16 kHz mono PCM (``pcm16k``),
                                          decoded as one utterance with batch cepstral mean
         ┌──────── deliver(job, ...) ◀──  normalisation; its words and their times

Each file is decoded on its own: the same file gives the same words whatever came before it (the
default live normalisation carries one file's channel estimate into the next, and changes words).
A cancelled job still waiting is skipped; one being decoded runs to its end (at most the model's
``max_seconds`` of audio, about a quarter of that in time).

Only WAV (PCM 8/16/24/32-bit integer or 32-bit float, any rate, any channel count) is read:
channels are averaged and the samples resampled to the model's 16 kHz (a windowed-sinc low-pass
first when the rate goes down). Anything else is a 400.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelgate.errors import GatewayError, InvalidRequestError, ProviderNotConfiguredError, RateLimitError
from modelgate.providers.local.packaged import find_packaged

log = logging.getLogger("modelgate.providers.local")

MODEL_ID = "pocketsphinx-en-us"
RATE = 16_000  # the acoustic model's sample rate
FRAMES_PER_SECOND = 100  # PocketSphinx's frame rate (10 ms)
PAUSE_FRAMES = 50  # a silence this long (0.5 s) starts a new segment
SEGMENT_WORDS = 40  # and so does a segment this long
_ALTERNATE = re.compile(r"\(\d+\)$")  # "was(2)": the dictionary's second pronunciation


def default_model_dir() -> Path:
    """``pocketsphinx/model`` inside the installed wheel (found without importing the package)."""
    return find_packaged(
        "pocketsphinx",
        lambda folder: (
            folder / "model" if (folder / "model" / "en-us" / "en-us" / "mdef").is_file() else None
        ),
        what="local transcription",
        dist="pocketsphinx",
        option="options.asr_model_dir",
        missing="no en-us model",
    )


@dataclass(frozen=True, slots=True)
class RecognizeOptions:
    model_dir: Path | None = None  # a folder laid out as pocketsphinx/model (en-us/en-us, .dict, .lm.bin)
    max_queue: int = 16  # files waiting for the decoder before 429


@dataclass(slots=True)
class Job:
    rid: int
    wav: bytes
    cancelled: bool = False


# text, duration (s), segments [(start, end, text)], words [(word, start, end)]
Result = tuple[str, float, list[tuple[float, float, str]], list[tuple[str, float, float]]]
Deliver = Callable[[Job, Result | None, GatewayError | None], None]


def _bad(why: str) -> InvalidRequestError:
    return InvalidRequestError(f"file: {why}", param="file", code="invalid_file")


_ENCODINGS = {(1, 8): "u1", (1, 16): "<i2", (1, 24): "", (1, 32): "<i4", (3, 32): "<f4"}


def _samples(raw: bytes, tag: int, bits: int) -> Any:
    """The samples of a WAV data chunk as floats in [-1, 1] (numpy), channels interleaved."""
    import numpy as np

    if bits == 24:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        return ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float64) / 2**23
    dtype = np.dtype(_ENCODINGS[(tag, bits)])
    x = np.frombuffer(raw[: len(raw) - len(raw) % dtype.itemsize], dtype=dtype).astype(np.float64)
    if bits == 8:
        return (x - 128) / 128
    return x if tag == 3 else x / 2 ** (bits - 1)


def pcm16k(data: bytes) -> tuple[Any, float]:
    """A WAV file as 16 kHz mono int16 samples (numpy), and its duration in seconds."""
    import numpy as np

    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _bad("the embedded recogniser reads WAV (PCM) files only")
    pos, fmt, raw = 12, None, None
    while pos + 8 <= len(data):
        chunk, length = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt " and length >= 16 and body + 16 <= len(data):
            fmt = struct.unpack_from("<HHIIHH", data, body)
            if fmt[0] == 0xFFFE and length >= 40 and body + 26 <= len(data):  # WAVE_FORMAT_EXTENSIBLE
                fmt = (struct.unpack_from("<H", data, body + 24)[0], *fmt[1:])
        elif chunk == b"data":
            raw = data[body : body + length]  # a header may claim more than was sent
            break
        pos = body + length + (length & 1)
    if fmt is None or raw is None:
        raise _bad("an invalid WAV file (no fmt or no data chunk)")
    tag, channels, rate, _, _, bits = fmt
    if (tag, bits) not in _ENCODINGS or not 1 <= channels <= 16 or not 1000 <= rate <= 384_000:
        raise _bad(f"unsupported WAV encoding (format {tag}, {bits} bits, {channels} channels, {rate} Hz)")
    x = _samples(raw, tag, bits)
    x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    seconds = len(x) / rate
    if rate != RATE:
        if rate > RATE:  # low-pass below the new Nyquist frequency before dropping samples
            taps = np.arange(63) - 31
            h = np.sinc(2 * 0.45 * RATE / rate * taps) * np.hamming(63)
            x = np.convolve(x, h / h.sum(), mode="same")
        n = round(len(x) * RATE / rate)
        x = np.interp(np.arange(n) * (rate / RATE), np.arange(len(x)), x)
    pcm = np.clip(np.nan_to_num(x) * 32767, -32768, 32767).astype("<i2")
    return pcm, seconds


def _segments(words: list[tuple[str, float, float]], pauses: list[float]) -> list[tuple[float, float, str]]:
    """Words grouped into segments at pauses of 0.5 s or more (and at most SEGMENT_WORDS each)."""
    out: list[tuple[float, float, str]] = []
    group: list[tuple[str, float, float]] = []
    for word in words:
        if group and (len(group) >= SEGMENT_WORDS or any(group[-1][2] <= p < word[1] for p in pauses)):
            out.append((group[0][1], group[-1][2], " ".join(w for w, _, _ in group)))
            group = []
        group.append(word)
    if group:
        out.append((group[0][1], group[-1][2], " ".join(w for w, _, _ in group)))
    return out


class Recognizer:
    def __init__(self, opts: RecognizeOptions, deliver: Deliver) -> None:
        self.opts = opts
        self._deliver = deliver
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._decoder: Any = None
        self.files = 0  # statistics: files decoded, seconds of audio heard
        self.seconds = 0.0

    def start(self) -> None:
        """Load the model (raises ProviderNotConfiguredError when it cannot) and start the thread."""
        folder = self.opts.model_dir or default_model_dir()
        try:
            from pocketsphinx import Decoder

            self._decoder = Decoder(
                hmm=str(folder / "en-us" / "en-us"),
                dict=str(folder / "en-us" / "cmudict-en-us.dict"),
                lm=str(folder / "en-us" / "en-us.lm.bin"),
                samprate=RATE,
                cmn="batch",  # each file normalised on its own (live CMN carries over between files)
                loglevel="FATAL",
            )
        except ImportError as exc:
            raise ProviderNotConfiguredError(
                f"local transcription: pocketsphinx is not installed ({exc})"
            ) from exc
        except (RuntimeError, ValueError) as exc:
            raise ProviderNotConfiguredError(f"local transcription: cannot load {folder}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="modelgate-recognize", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise ProviderNotConfiguredError("the local recogniser is shut down")
            if len(self._jobs) >= self.opts.max_queue:
                raise RateLimitError("the local recogniser is busy; retry shortly", retry_after=1.0)
            self._jobs.append(job)
            self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    jobs, self._jobs = list(self._jobs), deque()
                    for job in jobs:
                        self._deliver(
                            job, None, ProviderNotConfiguredError("the local recogniser is shut down")
                        )
                    return
                job = self._jobs.popleft()
            if job.cancelled:
                continue
            try:
                result = self._recognize(job)
            except GatewayError as exc:
                self._deliver(job, None, exc)
                continue
            if result is not None:
                self._deliver(job, result, None)

    def _recognize(self, job: Job) -> Result | None:
        samples, seconds = pcm16k(job.wav)
        job.wav = b""
        if job.cancelled:
            return None
        decoder = self._decoder
        decoder.start_utt()  # the whole file at once: batch CMN, so no file hears through another
        try:
            decoder.process_raw(samples.tobytes(), False, True)
        finally:
            decoder.end_utt()
        words: list[tuple[str, float, float]] = []
        pauses: list[float] = []
        for seg in decoder.seg():
            start, end = seg.start_frame / FRAMES_PER_SECOND, (seg.end_frame + 1) / FRAMES_PER_SECOND
            word = _ALTERNATE.sub("", seg.word)
            if word.startswith(("<", "[")):  # <s>, </s>, <sil>, [NOISE]: no words
                if seg.end_frame - seg.start_frame + 1 >= PAUSE_FRAMES:
                    pauses.append(start)
                continue
            words.append((word, round(start, 2), round(min(end, seconds), 2)))
        self.files += 1
        self.seconds += seconds
        text = " ".join(w for w, _, _ in words)
        return text, seconds, _segments(words, pauses), words
