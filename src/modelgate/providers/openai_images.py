"""OpenAI's ``POST /images/generations`` for OpenAI-compatible upstreams (``openai_compat.py``).

The request goes up with the upstream model name, the resolved size and quality (what the charge
is priced by) and the client's other validated fields. The answer is untrusted: it must be a JSON
object whose ``data`` holds between 1 and ``n`` images, each a base64 string (``b64_json``, which
must decode) or an ``http(s)`` URL (``url``), with an optional ``revised_prompt``; anything else is
an ``UpstreamProtocolError`` (502, nothing charged). An edit (``call.image`` set) goes to
``POST /images/edits`` as ``multipart/form-data`` with the same fields.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import ImageCall, Images
from modelgate.providers.formdata import form_body
from modelgate.providers.http import HTTPUpstream
from modelgate.sanitize import db_text

MAX_URL = 8192
# Fields of the answer (besides data) passed on to the client, when they are short strings.
_ECHOED = ("background", "output_format", "size", "quality")


def request_body(call: ImageCall) -> dict[str, Any]:
    body: dict[str, Any] = {
        **call.options,
        "model": call.upstream_model,
        "prompt": call.prompt,
        "n": call.n,
        "size": call.size,
        "quality": call.quality,
    }
    extra = call.extra.get("body")
    body.update(extra if isinstance(extra, dict) else {})
    return body


async def generate(http: HTTPUpstream, name: str, path: str, call: ImageCall) -> Images:
    data = await http.post_json(path, request_body(call))
    return parse_images(name, data, call.n)


async def edit(http: HTTPUpstream, name: str, path: str, call: ImageCall) -> Images:
    """``POST /images/edits``: the same fields as a generation, as a form, with the image and mask."""
    fields = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in request_body(call).items()]
    files = [("image", *call.image)] if call.image is not None else []
    if call.mask is not None:
        files.append(("mask", *call.mask))
    body, ctype = form_body(fields, files)
    data = await http.post_json(path, body, headers={"Content-Type": ctype})
    return parse_images(name, data, call.n)


def parse_images(name: str, data: Any, n: int) -> Images:
    def bad(what: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(f"upstream {name} answered {what}", provider=name)

    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise bad("no images")
    if len(items) > n:
        raise bad(f"{len(items)} images for n={n}")
    out: list[dict[str, str]] = []
    for item in items:
        if not isinstance(item, dict):
            raise bad("an image that is not an object")
        image: dict[str, str] = {}
        b64, url = item.get("b64_json"), item.get("url")
        if isinstance(b64, str) and b64:
            try:
                base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise bad("an image whose b64_json is not base64") from None
            image["b64_json"] = b64
        elif isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= MAX_URL:
            image["url"] = url
        else:
            raise bad("an image with neither b64_json nor an http(s) url")
        revised = item.get("revised_prompt")
        if isinstance(revised, str):
            image["revised_prompt"] = db_text(revised, 32_000) or ""
        out.append(image)
    created = data.get("created")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 < created < 2**40:
        created = int(time.time())
    extra = {k: db_text(v, 40) or "" for k in _ECHOED if isinstance(v := data.get(k), str)}
    return Images(data=out, created=created, extra=extra)
