"""Code samples of a model's docs page (Python ``requests``, JavaScript ``fetch``, curl), in the style
of the AI/ML API docs pages, built from one ``Recipe`` per catalogue type (``web/sample_recipes.py``):
the endpoint is the type's (``catalog.models.MODEL_ENDPOINTS``), the request body (JSON, or form
fields beside an uploaded file) is data rendered for each language, and what the sample does with the
answer is the recipe's few lines. A new kind of endpoint adds a recipe, not a branch here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelgate.catalog.models import MODEL_ENDPOINTS, ModelSpec

SAMPLE_QUESTION = "Hi! What do you think about mankind?"
REASONING_MAX_TOKENS = 15000
KEY_COMMENT = "Insert your API key instead of <YOUR_MODELGATE_KEY>"
JSON_IMPORT = "import json   # for getting a structured output with indentation\n"
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


@dataclass(frozen=True, slots=True)
class Note:
    """A body value with the comment the samples show above its key."""

    comment: str
    value: Any


@dataclass(frozen=True, slots=True)
class Recipe:
    """One catalogue type's samples. ``body`` is the JSON body (or, with ``upload``, the form fields
    sent beside that file); ``curl_body`` a shorter one for curl; ``python`` / ``javascript`` what
    the sample does with ``response``; ``example`` the example answer the page shows."""

    body: Callable[[ModelSpec], dict[str, Any]]
    python: Callable[[ModelSpec], str]
    javascript: Callable[[ModelSpec], str]
    example: Callable[[ModelSpec], dict[str, Any]]
    curl_body: Callable[[ModelSpec], dict[str, Any]] | None = None
    curl_output: Callable[[ModelSpec], str] | None = None  # curl's --output file
    upload: str | None = None  # multipart: the file the sample uploads as ``file``
    python_imports: str = JSON_IMPORT
    js_imports: str = ""  # lines at the start of main() (node: modules)


def _plain(value: Any) -> Any:
    if isinstance(value, Note):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _render(value: Any, indent: int, *, js: bool) -> str:
    """``value`` as Python (``"key":value``) or JavaScript (``key: value``) source, comments kept."""
    pad, inner = " " * indent, " " * (indent + 4)
    mark = "//" if js else "#"
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, Note):
                lines.append(f"{inner}{mark} {item.comment}:")
            name = key if js and _IDENTIFIER.match(key) else json.dumps(key)
            sep = ": " if js else ":"
            lines.append(f"{inner}{name}{sep}{_render(_unnote(item), indent + 4, js=js)},")
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    if isinstance(value, list):
        if all(isinstance(v, (str, int, float)) for v in value):
            return "[" + ", ".join(_render(v, indent, js=js) for v in value) + "]"
        items = [f"{inner}{_render(_unnote(v), indent + 4, js=js)}," for v in value]
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if js and isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value, ensure_ascii=False)


def _unnote(value: Any) -> Any:
    return value.value if isinstance(value, Note) else value


def _recipe(model: ModelSpec) -> Recipe:
    from modelgate.web.sample_recipes import RECIPES

    return RECIPES.get(model.type, RECIPES["chat"])


def python_sample(base_url: str, model: ModelSpec) -> str:
    r = _recipe(model)
    url = f"{base_url}{MODEL_ENDPOINTS[model.type]}"
    if r.upload is not None:
        call = f'''# Insert the path of your audio file here:
with open("{r.upload}", "rb") as upload:
    response = requests.post(
        "{url}",
        # {KEY_COMMENT}:
        headers={{"Authorization":"Bearer <YOUR_MODELGATE_KEY>"}},
        files={{"file":upload}},
        data={_render(r.body(model), 8, js=False)}
    )'''
    else:
        call = f'''response = requests.post(
    "{url}",
    headers={{
        # {KEY_COMMENT}:
        "Authorization":"Bearer <YOUR_MODELGATE_KEY>",
        "Content-Type":"application/json"
    }},
    json={_render(r.body(model), 4, js=False)}
)'''
    return f"import requests\n{r.python_imports}\n{call}\nresponse.raise_for_status()\n\n{r.python(model)}"


def js_sample(base_url: str, model: ModelSpec) -> str:
    r = _recipe(model)
    url = f"{base_url}{MODEL_ENDPOINTS[model.type]}"
    if r.upload is not None:
        form = "\n".join(
            f"  form.append('{k}', {_render(v, 2, js=True)});" for k, v in _plain(r.body(model)).items()
        )
        request = f"""  const {{ readFile }} = await import('node:fs/promises');
  const form = new FormData();
  // Insert the path of your audio file here:
  form.append('file', new Blob([await readFile('{r.upload}')]), '{r.upload}');
{form}
  const response = await fetch('{url}', {{
    method: 'POST',
    // {KEY_COMMENT}
    headers: {{ 'Authorization': 'Bearer <YOUR_MODELGATE_KEY>' }},
    body: form,
  }});"""
    else:
        request = f"""  const response = await fetch('{url}', {{
    method: 'POST',
    headers: {{
      // {KEY_COMMENT}
      'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',
      'Content-Type': 'application/json',
    }},
    body: JSON.stringify({_render(r.body(model), 4, js=True)}),
  }});"""
    return f"""async function main() {{
{r.js_imports}{request}
  if (!response.ok) {{
    throw new Error(`HTTP error! Status ${{response.status}}`);
  }}
{r.javascript(model)}}}

main();
"""


def curl_sample(base_url: str, model: ModelSpec) -> str:
    r = _recipe(model)
    head = (
        "curl -L \\\n  --request POST \\\n"
        f"  --url '{base_url}{MODEL_ENDPOINTS[model.type]}' \\\n"
        "  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n"
    )
    body = _plain((r.curl_body or r.body)(model))
    if r.upload is not None:
        fields = [f"file=@{r.upload}", *(f"{k}={v}" for k, v in body.items())]
        return head + " \\\n".join(f"  --form '{f}'" for f in fields)
    data = json.dumps(body, indent=2, ensure_ascii=False).replace("'", "'\\''")
    tail = f" \\\n  --output {r.curl_output(model)}" if r.curl_output else ""
    return head + "  --header 'Content-Type: application/json' \\\n" + f"  --data '{data}'{tail}"


def example_response(model: ModelSpec) -> dict[str, Any]:
    return _recipe(model).example(model)


def sample_max_tokens(model: ModelSpec) -> int | None:
    """Reasoning models get an explicit, generous ``max_tokens`` (the default 512 is often too low)."""
    if "reasoning" not in model.capabilities:
        return None
    cap = model.output_max or REASONING_MAX_TOKENS
    return min(REASONING_MAX_TOKENS, cap)


def credits_per(model: ModelSpec, unit: str) -> int:
    """Credits per one ``unit`` (display only: the price sheet's figure, 2,000,000 credits per USD)."""
    usd = next((u["price"] for u in model.pricing.units() if u["name"] == unit), 0.0)
    return round(float(usd) * 2_000_000)


def meta(credits: int) -> dict[str, Any]:
    return {"usage": {"credits_used": credits, "usd_spent": round(credits / 2_000_000, 9)}}
