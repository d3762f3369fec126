"""Small translation helpers shared by the native adapters (Gemini, Anthropic, Bedrock)."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any

import orjson

from modelgate.errors import InvalidRequestError
from modelgate.wire.chat import ChatRequest, ToolCall


def refuse_choices_and_logprobs(req: ChatRequest) -> None:
    """What an upstream with one answer and no token probabilities (Anthropic, Bedrock) cannot
    give: ``n`` above 1, ``logprobs`` (a 400 naming the field)."""
    if req.n is not None and req.n > 1:
        raise InvalidRequestError("n: only 1 choice is supported by this model", param="n")
    if req.logprobs:
        raise InvalidRequestError("logprobs: not supported by this model", param="logprobs")


def parse_data_url(url: str, field_name: str) -> tuple[str, str]:
    """``data:<mime>;base64,<data>`` -> (mime, data); anything else is a 400 naming the field."""
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:") or ";base64" not in head:
        raise InvalidRequestError(f"{field_name}: expected a base64 data: URL", param=field_name)
    return head[5:].split(";", 1)[0] or "application/octet-stream", data


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where an ``image_url`` part's image is: inline (``media_type`` + base64 ``data``) or at ``url``."""

    media_type: str = ""
    data: str | None = None
    url: str = ""


def image_source(
    url: str, field_name: str, *, schemes: tuple[str, ...] = ("http://", "https://"), typed: bool = False
) -> ImageSource:
    """An ``image_url`` part's URL, checked: a base64 ``data:`` URL, or a URL of one of ``schemes``;
    anything else is a 400 naming the field. ``typed``: a URL's media type is needed too (guessed from
    its name; one that cannot be told is a 400 asking for a data: URL)."""
    if url.startswith("data:"):
        media_type, data = parse_data_url(url, field_name)
        return ImageSource(media_type=media_type, data=data)
    if not url.startswith(schemes):
        raise InvalidRequestError(f"{field_name}: unsupported URL scheme", param=field_name)
    if not typed:
        return ImageSource(url=url)
    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    if guessed is None:
        raise InvalidRequestError(
            f"{field_name}: cannot tell the media type of {url[:200]!r} from its name; "
            "send the image as a base64 data: URL instead",
            param=field_name,
        )
    return ImageSource(media_type=guessed, url=url)


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


def tool_call_arguments(call: ToolCall, index: int) -> Any:
    """An assistant tool call's ``arguments`` (a JSON string) as the value both native APIs want;
    text that is not JSON is a 400 naming the message."""
    try:
        return orjson.loads(call.function.arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"messages[{index}].tool_calls: arguments of {call.id!r} are not valid JSON",
            param=f"messages[{index}].tool_calls",
        ) from exc
