"""Small translation helpers shared by the native adapters (Gemini, Anthropic)."""

from __future__ import annotations

from typing import Any

import orjson

from modelgate.errors import InvalidRequestError


def parse_data_url(url: str, field_name: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` -> (mime, data); anything else is a 400 naming the field."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or ";base64" not in head:
        raise InvalidRequestError(f"{field_name}: expected a base64 data: URL", param=field_name)
    return head[5:].split(";", 1)[0] or "application/octet-stream", data


def append_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], *, key: str) -> None:
    """Add ``items`` as a turn of ``role``, merged into the previous turn when it has the same role
    (both native APIs want user/assistant turns to alternate)."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def body_object(body: bytes) -> dict[str, Any]:
    """A client's pass-through body as a JSON object, for clouds that must edit it (Vertex and
    Bedrock move ``model`` into the URL); anything else is a 400."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError("the request body is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    return data


def body_model(data: dict[str, Any]) -> str:
    """Pop the upstream model name out of a pass-through body."""
    model = data.pop("model", None)
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: required", param="model")
    return model
