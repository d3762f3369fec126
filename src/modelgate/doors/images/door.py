"""The Images door (``POST /v1/images/generations``), OpenAI's request and response plus ``meta.usage``.

Parse into ``doors/images/wire.py``'s ``ImageRequest``; resolve its size and quality (the model's
defaults when left out) and check them against what the model's price sheet prices
(``image:<size>/<quality>`` units, ``catalog/models.py`` ``Images``), ``n`` and the prompt against
its limits — each a 400 in the OpenAI envelope naming the field; meter it on the core with
``ImagesInvocation`` (adapters implement ``providers/base.py``'s ``ImageProvider``) under the
``model:image`` scope.

Billing: the hold is ``n`` images of the resolved unit at the dearest route of the chain; the
charge is one unit per image the upstream returned (never more than ``n``: an adapter refuses more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelgate.catalog.models import ModelSpec, image_unit
from modelgate.doors.base import (
    DoorRequest,
    DoorResponse,
    NeverStreamed,
    OpenAIEnvelopeDoor,
    checked,
    whole_answer,
)
from modelgate.doors.images.wire import ImageRequest, render_images
from modelgate.errors import InvalidRequestError
from modelgate.gateway.metered import Attempt, Caller, MeteredRequest, Outcome
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.errors import validate_body
from modelgate.httpkit.multipart import Upload
from modelgate.providers.base import ImageCall, ImageProvider, Images, Usage
from modelgate.wire.credits import meta

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

SCOPE = "model:image"


def resolve(req: ImageRequest, model: ModelSpec | None) -> tuple[int, str, str]:
    """``n``, size and quality as they will be priced; a 400 naming the field for anything the model
    does not offer. A model that is unknown or not an image model is left to admission (404)."""
    n = req.n or 1
    if model is None or model.type != "image" or model.images is None:
        return n, req.size or "", req.quality or ""
    spec = model.images
    if req.stream:
        raise InvalidRequestError(
            "stream: image generation is not streamed; leave stream out", param="stream"
        )
    if n > spec.max_n:
        raise InvalidRequestError(f"n: {model.id} makes at most {spec.max_n} images per request", param="n")
    if len(req.prompt) > spec.max_prompt_chars:
        raise InvalidRequestError(
            f"prompt: {len(req.prompt)} characters; {model.id} takes at most {spec.max_prompt_chars}",
            param="prompt",
            code="prompt_too_long",
        )
    size, quality = req.size or spec.default_size, req.quality or spec.default_quality
    offered = model.image_units()
    if image_unit(size, quality) not in offered:
        pairs = sorted(u.removeprefix("image:").split("/", 1) for u in offered)
        sizes = sorted({s for s, _ in pairs})
        if size not in sizes:
            raise InvalidRequestError(
                f"size: {model.id} makes {', '.join(sizes)}; got {size}", param="size", code="invalid_size"
            )
        qualities = [q for s, q in pairs if s == size]
        raise InvalidRequestError(
            f"quality: {model.id} makes {size} at {', '.join(qualities)}; got {quality}",
            param="quality",
            code="invalid_quality",
        )
    return n, size, quality


class ImagesInvocation(NeverStreamed):
    """Calls an adapter's ``generate_images``; the usage is one unit per image returned."""

    __slots__ = ("edit", "n", "options", "prompt", "quality", "size", "unit")

    def __init__(
        self, req: ImageRequest, *, n: int, size: str, quality: str, edit: tuple[Upload, Upload | None] | None
    ) -> None:
        self.edit = edit
        self.prompt = req.prompt
        self.n, self.size, self.quality = n, size, quality
        self.options = req.forwarded()
        self.unit = image_unit(size, quality)

    async def complete(self, provider: Any, attempt: Attempt) -> Outcome:
        if not isinstance(provider, ImageProvider):  # admission keeps only capable routes
            raise InvalidRequestError(
                f"{attempt.model.id} cannot make images on route {attempt.route.provider}"
            )
        call = ImageCall(
            prompt=self.prompt,
            upstream_model=attempt.route.model,
            model=attempt.model,
            n=self.n,
            size=self.size,
            quality=self.quality,
            options=self.options,
            inference_id=attempt.inference_id,
            extra=attempt.route.options,
        )
        if self.edit is not None:
            image, mask = self.edit
            call.image = (image.filename, image.content_type, image.data)
            call.mask = (mask.filename, mask.content_type, mask.data) if mask is not None else None
        result = await provider.generate_images(call)
        count = min(len(result.data), self.n)  # every adapter checks; the contract, once more
        return Outcome(result, Usage(uses={self.unit: count}), "stop")

    unstreamed = "image generation is never streamed"


class ImagesDoor(OpenAIEnvelopeDoor):
    name = "images"
    note = "OpenAI-compatible image generation, priced per image by size and quality."
    paths = frozenset({"/v1/images/generations", "/images/generations"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        op = operation(summary="Create images", body=json_body(ImageRequest), upstream=True)
        return dict.fromkeys(self.paths, op)

    def parse(self, req: DoorRequest) -> ImageRequest:
        return validate_body(req.body, ImageRequest)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        return await self.meter(state, parsed, caller)

    async def meter(
        self,
        state: AppState,
        image: ImageRequest,
        caller: Caller,
        *,
        edit: tuple[Upload, Upload | None] | None = None,
    ) -> DoorResponse:
        """Resolve, hold, route and render one generation (or, with ``edit``'s image and mask, one
        edit: ``doors/images/edit.py``)."""
        n, size, quality = checked(state, caller, image.model, lambda m: resolve(image, m))
        invocation = ImagesInvocation(image, n=n, size=size, quality=quality, edit=edit)
        metered = MeteredRequest(
            model=image.model,
            invocation=invocation,
            provider=image.provider,
            kind="image",
            scope=SCOPE,
            max_tokens=1,
            needs=frozenset({"images"}),
            uses={invocation.unit: n},
        )
        done = await state.core.complete(metered, caller)
        result: Images = done.payload
        body = render_images(
            result.data[:n],
            created=result.created,
            extra={**result.extra, "size": size, "quality": quality},
            meta=meta(done.credits),
        )
        return whole_answer(done, body, image)
