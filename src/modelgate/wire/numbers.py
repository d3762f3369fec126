"""Numbers in the dialects' request bodies: a JSON number, never ``true`` / ``false`` or a string.

Pydantic's lax mode turns ``"max_tokens": true`` into 1, ``"temperature": "0.5"`` into 0.5 and
``"seed": "5"`` into 5; no public API accepts those, and a door that did would answer something the
client did not ask for. ``Integer`` and ``Number`` refuse booleans and strings (a 400 naming the
field) and keep the rest of pydantic's checks: an integral float such as ``5.0`` is still the
integer 5, a fractional one is refused, bounds come from ``Field``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number, not a boolean or a string")
    return value


Integer = Annotated[int, BeforeValidator(_json_number)]
Number = Annotated[float, BeforeValidator(_json_number)]
