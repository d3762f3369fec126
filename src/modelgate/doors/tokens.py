"""A calibrated bound of the tokens in a text, in O(1) after the lengths Python already knows.

BPE tokenizers of current models encode English and code at 3-4.5 characters a token and JSON at
2.7-3.5 (Anthropic's rule of thumb is 3.5 characters a token; its newer tokenizers count up to 35%
more tokens for the same text, i.e. about 2.6). ``2.5`` characters a token bounds those from above
for ASCII text. A character outside ASCII adds half a token per extra UTF-8 byte: a CJK character
(3 bytes) counts 1.4 tokens, an emoji (4 bytes) 1.9, a Cyrillic letter (2 bytes) 0.9. The ratios
are the providers' published ones, not measured here against a vocabulary (no modern vocabulary
ships on PyPI without a download); tests/doors/test_hold_tightness.py checks the bound on a
Claude-Code-shaped session against token counts at 3.5 characters a token.

Counting UTF-8 bytes as tokens, as before, held 2.5-4x the real prompt. A bound that proves too
low (random base64 or hex pasted as text) is covered by the overdraft rule (docs/pricing.md): the
charge is always the real cost, and the overage is bounded to that request.
"""

from __future__ import annotations

from typing import Any

import orjson

# tokens <= ceil(chars * 2 / 5) for ASCII text
_NUM, _DEN = 2, 5


def text_tokens(text: str) -> int:
    n = len(text)
    if text.isascii():
        return -(-n * _NUM // _DEN)
    extra = len(text.encode("utf-8", "surrogatepass")) - n
    return -(-n * _NUM // _DEN) + (extra + 1) // 2


def bytes_tokens(data: bytes) -> int:
    """The same bound for UTF-8 bytes (a JSON dump)."""
    if data.isascii():
        return -(-len(data) * _NUM // _DEN)
    return text_tokens(data.decode("utf-8", "replace"))


def json_tokens(value: Any) -> int:
    return bytes_tokens(orjson.dumps(value))
