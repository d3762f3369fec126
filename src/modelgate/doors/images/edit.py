"""The image-edit door (``POST /v1/images/edits``): OpenAI's multipart upload of an image (and an
optional mask) with a prompt, on the core like ``images/generations`` (scope ``model:image``, priced
per image by size and quality: ``doors/images/door.py`` resolves and meters it).

The form's text fields are validated by the same ``ImageRequest`` as a generation (numbers read from
their text); the image and the mask must be PNG, JPEG or WebP by their own bytes, each at most the
model's ``images.max_file_bytes``; a model whose ``images.edits`` is false refuses edits (400).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.catalog.models import ModelSpec
from modelgate.doors.base import BearerKeyDoor, DoorRequest, DoorResponse
from modelgate.doors.images.door import ImagesDoor
from modelgate.doors.images.wire import ImageRequest
from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.gateway.metered import Caller
from modelgate.httpkit.contract import operation
from modelgate.httpkit.errors import validate_body
from modelgate.httpkit.multipart import Form, Upload, parse_form

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

_NUMBER = re.compile(r"^[0-9]{1,3}$")
_INTEGERS = ("n", "output_compression")


def image_kind(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class ImageEditRequest:
    __slots__ = ("image", "mask", "request")

    def __init__(self, form: Form) -> None:
        data: dict[str, Any] = {}
        for name in form.fields:
            value = form.one(name)
            data[name] = int(value) if name in _INTEGERS and value and _NUMBER.match(value) else value
        self.request = validate_body(orjson.dumps(data), ImageRequest)
        images = [form.files[n] for n in ("image", "image[]") if n in form.files]
        if len(images) != 1:
            raise InvalidRequestError(
                "image: send one image file (PNG, JPEG or WebP)"
                if not images
                else "image: send one image, not two",
                param="image",
            )
        self.image: Upload = images[0]
        self.mask: Upload | None = form.files.get("mask")
        for what, file in (("image", self.image), ("mask", self.mask)):
            if file is not None and image_kind(file.data) is None:
                raise InvalidRequestError(
                    f"{what}: not a PNG, JPEG or WebP image", param=what, code="invalid_file"
                )

    def check(self, model: ModelSpec | None) -> None:
        if model is None or model.type != "image" or model.images is None:
            return
        if not model.images.edits:
            raise InvalidRequestError(
                f"{model.id} does not edit images; use /v1/images/generations", param="model"
            )
        limit = model.images.max_file_bytes
        for what, file in (("image", self.image), ("mask", self.mask)):
            if file is not None and len(file.data) > limit:
                raise InvalidRequestError(
                    f"{what}: {len(file.data)} bytes; {model.id} takes at most {limit}",
                    param=what,
                    code="file_too_large",
                )


def _form_schema() -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    props: dict[str, Any] = {
        "image": binary,
        "mask": binary,
        "model": {"type": "string"},
        "prompt": {"type": "string"},
        "n": {"type": "integer", "minimum": 1, "maximum": 100},
        "size": {"type": "string"},
        "quality": {"type": "string"},
        "response_format": {"type": "string", "enum": ["url", "b64_json"]},
    }
    return {"type": "object", "required": ["image", "model", "prompt"], "properties": props}


class ImageEditsDoor(BearerKeyDoor):
    name = "image_edits"
    note = "OpenAI-compatible image edits (multipart upload), priced per image like generations."
    paths = frozenset({"/v1/images/edits", "/images/edits"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        body = {"required": True, "content": {"multipart/form-data": {"schema": _form_schema()}}}
        return dict.fromkeys(self.paths, operation(summary="Edit an image", body=body, upstream=True))

    def parse(self, req: DoorRequest) -> ImageEditRequest:
        return ImageEditRequest(parse_form(req.body, req.header("content-type")))

    def error(self, exc: GatewayError, req: DoorRequest, request_id: str) -> DoorResponse:
        return ImagesDoor().error(exc, req, request_id)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        edit: ImageEditRequest = parsed
        try:
            edit.check(state.catalog.find(edit.request.model))
        except InvalidRequestError as exc:
            state.core.reject(caller, exc, model=edit.request.model)
            raise
        return await ImagesDoor().meter(state, edit.request, caller, edit=(edit.image, edit.mask))
