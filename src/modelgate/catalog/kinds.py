"""The kinds of model the catalogue knows (``ModelSpec.type``), as data: what each is listed as,
the endpoint that serves it, what a route must be able to do for it, what it takes in and gives out,
and how it is priced. Everything that differs by kind outside its door (the public model list's
``type``, ``/models/metrics`` and the docs pages' endpoint, the catalogue's defaults, the docs
page's price line, the docs-json request schema, the playground's modes) reads this table. A new
kind of endpoint adds: a row here, a door module (its ``openapi()`` is also its docs-json schema, its
``note`` its API-reference line), a wire module, a price unit (``catalog/prices.py``), a sample recipe
(``web/sample_recipes.py``), and the provider Protocol of its adapters with the capability that
admission checks routes for (``providers/base.py``, ``gateway/admission.py`` ``_FLAGS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Kind:
    listed_as: str  # the model list's endpoint type (the AI/ML API's names)
    endpoint: str  # the path of the endpoint that serves it
    capabilities: tuple[str, ...] = ("streaming",)  # the default capabilities (routes must have them)
    inputs: tuple[str, ...] = ("text",)
    outputs: tuple[str, ...] = ("text",)
    # tokens: input and output token prices; input_tokens: input only; units: its own units only
    priced: Literal["tokens", "input_tokens", "units"] = "tokens"
    playground: Literal["chat", "image", "speech", ""] = ""  # the playground mode that shows it
    modalities: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", {"input": list(self.inputs), "output": list(self.outputs)})


KINDS: dict[str, Kind] = {
    "chat": Kind("openai/chat-completions", "/v1/chat/completions", playground="chat"),
    "embedding": Kind(
        "openai/embeddings", "/v1/embeddings", ("embeddings",), outputs=("embedding",), priced="input_tokens"
    ),
    "image": Kind(
        "openai/image-generations",
        "/v1/images/generations",
        ("images",),
        outputs=("image",),
        priced="units",
        playground="image",
    ),
    "speech": Kind(
        "openai/audio-speech",
        "/v1/audio/speech",
        ("speech",),
        outputs=("audio",),
        priced="units",
        playground="speech",
    ),
    "transcription": Kind(
        "openai/audio-transcriptions",
        "/v1/audio/transcriptions",
        ("transcription",),
        inputs=("audio",),
        priced="units",
    ),
}
