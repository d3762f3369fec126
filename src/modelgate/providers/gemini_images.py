"""Images through the Gemini API for ``type: image`` models on a ``type: gemini`` provider
(``gemini.py``): Imagen (``:predict``) and Gemini's native image output (``:generateContent`` with
``responseModalities: ["TEXT", "IMAGE"]``, e.g. ``gemini-2.5-flash-image``). A route whose model
starts with ``imagen`` uses ``:predict``; any other ``:generateContent`` (the route's
``options.image_api``, ``predict`` or ``generateContent``, overrides).

Imagen:
The request is ``{"instances": [{"prompt"}], "parameters": {"sampleCount": n, "aspectRatio"}}``; the
aspect ratio is the one of Imagen's five (1:1, 3:4, 4:3, 9:16, 16:9) nearest to the priced size's.
The answer's ``predictions`` must hold 1 to ``n`` images, each ``bytesBase64Encoded`` that decodes
(else ``UpstreamProtocolError``: 502, nothing charged). Imagen answers image bytes only: a request
for URLs, or an edit, is a 400.

Native output: one ``:generateContent`` per image asked for (``n`` requests at once: the model
answers one image per call), the prompt as a text part, an edit's image as an ``inlineData`` part
before it (Gemini edits from the prompt: a mask is a 400), ``imageConfig.aspectRatio`` the nearest of
Gemini's ten ratios. Each answer must hold an ``inlineData`` image part (its text parts, if any, are
the ``revised_prompt``), else ``UpstreamProtocolError``; bytes only, as Imagen.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Mapping
from typing import Any

from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.base import ImageCall, Images
from modelgate.providers.http import HTTPUpstream

RATIOS = {"1:1": 1.0, "3:4": 3 / 4, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}
NATIVE_RATIOS = {
    **RATIOS, "2:3": 2 / 3, "3:2": 3 / 2, "4:5": 4 / 5, "5:4": 5 / 4, "21:9": 21 / 9,
}  # fmt: skip
IMAGE_TYPES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"RIFF", "image/webp"))


def aspect_ratio(size: str, ratios: Mapping[str, float] = RATIOS) -> str:
    try:
        width, height = (int(x) for x in size.split("x", 1))
    except ValueError:
        return "1:1"  # "auto"
    ratio = width / height
    return min(ratios, key=lambda name: abs(ratios[name] - ratio))


def uses_predict(call: ImageCall) -> bool:
    """Imagen's ``:predict`` or Gemini's ``:generateContent`` (see the module's docstring)."""
    api = call.extra.get("image_api")
    if api in ("predict", "generateContent"):
        return bool(api == "predict")
    return call.upstream_model.lower().startswith("imagen")


def _bytes_only(call: ImageCall) -> None:
    if call.options.get("response_format") == "url":
        raise InvalidRequestError(
            f"response_format: {call.model.id} answers image bytes only; ask for b64_json",
            param="response_format",
        )


def request_body(call: ImageCall) -> dict[str, Any]:
    if call.image is not None:
        raise InvalidRequestError(
            f"{call.model.id}: Imagen on the Gemini API does not edit images", param="model"
        )
    _bytes_only(call)
    parameters: dict[str, Any] = {"sampleCount": call.n, "aspectRatio": aspect_ratio(call.size)}
    extra = call.extra.get("parameters")
    parameters.update(extra if isinstance(extra, dict) else {})
    return {"instances": [{"prompt": call.prompt}], "parameters": parameters}


async def generate(http: HTTPUpstream, name: str, path: str, call: ImageCall) -> Images:
    data = await http.post_json(path, request_body(call))
    return parse_predictions(name, data, call.n)


def parse_predictions(name: str, data: Any, n: int) -> Images:
    def bad(what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"upstream {name} answered {what}", provider=name)

    items = data.get("predictions") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise bad("no images (an Imagen answer without predictions is usually a filtered prompt)")
    if len(items) > n:
        raise bad(f"{len(items)} images for sampleCount={n}")
    out: list[dict[str, str]] = []
    for item in items:
        b64 = item.get("bytesBase64Encoded") if isinstance(item, dict) else None
        if not isinstance(b64, str) or not b64:
            raise bad("a prediction without bytesBase64Encoded")
        try:
            base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise bad("a prediction whose bytes are not base64") from None
        out.append({"b64_json": b64})
    kind = items[0].get("mimeType") if isinstance(items[0], dict) else None
    extra = {"output_format": kind.removeprefix("image/")[:10]} if isinstance(kind, str) else {}
    return Images(data=out, created=int(time.time()), extra=extra)


def native_body(call: ImageCall) -> dict[str, Any]:
    _bytes_only(call)
    if call.mask is not None:
        raise InvalidRequestError(
            f"mask: {call.model.id} edits from the prompt alone; leave the mask out", param="mask"
        )
    parts: list[dict[str, Any]] = []
    if call.image is not None:
        data = call.image[2]
        mime = next((t for magic, t in IMAGE_TYPES if data.startswith(magic)), "image/png")
        parts.append({"inlineData": {"mimeType": mime, "data": base64.b64encode(data).decode()}})
    parts.append({"text": call.prompt})
    config: dict[str, Any] = {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": aspect_ratio(call.size, NATIVE_RATIOS)},
    }
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def parse_native(name: str, data: Any) -> tuple[dict[str, str], str | None]:
    """The image of one ``:generateContent`` answer (and its text as the revised prompt), and its type."""

    def bad(what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"upstream {name} answered {what}", provider=name)

    try:
        parts = data["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        raise bad("no image (a candidate without parts is usually a blocked prompt)") from None
    if not isinstance(parts, list):
        raise bad("parts that are not a list")
    text = "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    inline = next(
        (p["inlineData"] for p in parts if isinstance(p, dict) and isinstance(p.get("inlineData"), dict)),
        None,
    )
    if inline is None or not str(inline.get("mimeType", "")).startswith("image/"):
        raise bad("no image part")
    b64 = inline.get("data")
    try:
        if not isinstance(b64, str) or not base64.b64decode(b64, validate=True):
            raise ValueError
    except (binascii.Error, ValueError):
        raise bad("an image whose bytes are not base64") from None
    image = {"b64_json": b64, **({"revised_prompt": text.strip()[:4000]} if text.strip() else {})}
    return image, str(inline["mimeType"])


async def generate_native(http: HTTPUpstream, name: str, path: str, call: ImageCall) -> Images:
    body = native_body(call)
    answers = await asyncio.gather(*(http.post_json(path, body) for _ in range(call.n)))
    parsed = [parse_native(name, a) for a in answers]
    kind = parsed[0][1]
    extra = {"output_format": kind.removeprefix("image/")[:10]} if kind else {}
    return Images(data=[image for image, _ in parsed], created=int(time.time()), extra=extra)
