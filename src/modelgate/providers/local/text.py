"""Token bytes -> text deltas: UTF-8 safe across token boundaries, stop sequences held back.

A token's piece may end in the middle of a multi-byte character: an incremental UTF-8 decoder
keeps the partial bytes until the character completes. When the request has stop sequences, the
longest tail of the text that could still grow into a stop sequence is held back, so no emitted
delta ever contains (a part of) a stop sequence that later completes.
"""

from __future__ import annotations

import codecs


class TextAssembler:
    __slots__ = ("_decoder", "_pending", "_stops")

    def __init__(self, stops: tuple[str, ...] = ()) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, data: bytes) -> tuple[str, bool]:
        """The text that is safe to emit now, and whether a stop sequence was reached."""
        text = self._decoder.decode(data)
        if not self._stops:
            return text, False
        text = self._pending + text
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._pending = ""
            return text[:cut], True
        hold = _held_tail(text, self._stops)
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold], False

    def flush(self) -> str:
        """Everything still held (the generation ended without completing a stop sequence)."""
        text = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return text


def _held_tail(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of some stop sequence."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best
