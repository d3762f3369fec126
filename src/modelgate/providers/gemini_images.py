"""Imagen through the Gemini API (``POST /models/{model}:predict``) for ``type: image`` models on a
``type: gemini`` provider (``gemini.py``).

The request is ``{"instances": [{"prompt"}], "parameters": {"sampleCount": n, "aspectRatio"}}``; the
aspect ratio is the one of Imagen's five (1:1, 3:4, 4:3, 9:16, 16:9) nearest to the priced size's.
The answer's ``predictions`` must hold 1 to ``n`` images, each ``bytesBase64Encoded`` that decodes
(else ``UpstreamProtocolError``: 502, nothing charged). Imagen answers image bytes only: a request
for URLs, or an edit, is a 400.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.providers.base import ImageCall, Images
from modelgate.providers.http import HTTPUpstream

RATIOS = {"1:1": 1.0, "3:4": 3 / 4, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}


def aspect_ratio(size: str) -> str:
    try:
        width, height = (int(x) for x in size.split("x", 1))
    except ValueError:
        return "1:1"  # "auto"
    ratio = width / height
    return min(RATIOS, key=lambda name: abs(RATIOS[name] - ratio))


def request_body(call: ImageCall) -> dict[str, Any]:
    if call.image is not None:
        raise InvalidRequestError(
            f"{call.model.id}: Imagen on the Gemini API does not edit images", param="model"
        )
    if call.options.get("response_format") == "url":
        raise InvalidRequestError(
            f"response_format: {call.model.id} answers image bytes only; ask for b64_json",
            param="response_format",
        )
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
