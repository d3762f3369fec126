"""Upper-bound token estimates, used to size the credit hold before the real count is known.

UTF-8 bytes bound BPE token counts from above for text; fixed allowances cover chat-template
overhead per message and each image. Over-estimating only holds a little more for a moment.
"""

from __future__ import annotations

import orjson

from modelgate.wire.chat import AssistantMessage, ChatRequest, ImagePart

PER_MESSAGE = 16
PER_IMAGE = 2_000
BASE = 64


def prompt_tokens_upper_bound(req: ChatRequest) -> int:
    total = BASE
    for msg in req.messages:
        total += PER_MESSAGE
        content = msg.content
        if isinstance(content, str):
            total += len(content.encode("utf-8"))
        elif content is not None:
            for part in content:
                if isinstance(part, ImagePart):
                    total += PER_IMAGE
                else:
                    total += len(orjson.dumps(part.model_dump(exclude_none=True)))
        calls = msg.tool_calls if isinstance(msg, AssistantMessage) else None
        if calls:
            total += sum(len(orjson.dumps(c.model_dump())) for c in calls)
    if req.tools:
        total += sum(len(orjson.dumps(t.model_dump(exclude_none=True))) for t in req.tools)
    if req.response_format is not None:
        total += len(orjson.dumps(req.response_format.model_dump(exclude_none=True, by_alias=True)))
    return total
