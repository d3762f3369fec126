"""Code samples and the example response of an embedding model's docs page (``POST /v1/embeddings``)."""

from __future__ import annotations

import json
from typing import Any

from modelgate.catalog.models import ModelSpec

SAMPLE_INPUTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leaps above a sleepy hound.",
]


def python_sample(base_url: str, model: ModelSpec) -> str:
    inputs = json.dumps(SAMPLE_INPUTS, ensure_ascii=False)
    return f'''import requests
import json   # for getting a structured output with indentation

response = requests.post(
    "{base_url}/v1/embeddings",
    headers={{
        # Insert your API key instead of <YOUR_MODELGATE_KEY>:
        "Authorization":"Bearer <YOUR_MODELGATE_KEY>",
        "Content-Type":"application/json"
    }},
    json={{
        "model":"{model.id}",
        # Insert the text (or a list of texts) to embed here:
        "input":{inputs}
    }}
)

data = response.json()
for item in data["data"]:
    print(item["index"], len(item["embedding"]), item["embedding"][:4])
print(json.dumps(data["usage"], indent=2))
'''


def js_sample(base_url: str, model: ModelSpec) -> str:
    inputs = json.dumps(SAMPLE_INPUTS, ensure_ascii=False)
    return f"""async function main() {{
  const response = await fetch('{base_url}/v1/embeddings', {{
    method: 'POST',
    headers: {{
      // Insert your API key instead of <YOUR_MODELGATE_KEY>
      'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',
      'Content-Type': 'application/json',
    }},
    body: JSON.stringify({{
      model: '{model.id}',
      // Insert the text (or a list of texts) to embed here:
      input: {inputs},
    }}),
  }});
  if (!response.ok) {{
    throw new Error(`HTTP error! Status ${{response.status}}`);
  }}
  const data = await response.json();
  for (const item of data.data) {{
    console.log(item.index, item.embedding.length, item.embedding.slice(0, 4));
  }}
  console.log(JSON.stringify(data.usage, null, 2));
}}

main();
"""


def curl_sample(base_url: str, model: ModelSpec) -> str:
    data = json.dumps({"model": model.id, "input": SAMPLE_INPUTS[0]}, indent=2, ensure_ascii=False)
    data = data.replace("'", "'\\''")
    return (
        "curl -L \\\n  --request POST \\\n"
        f"  --url '{base_url}/v1/embeddings' \\\n"
        "  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        f"  --data '{data}'"
    )


def example_response(model: ModelSpec) -> dict[str, Any]:
    credits = model.pricing.credits(prompt_tokens=22, completion_tokens=0)
    dims = model.embedding.dimensions if model.embedding is not None else 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.0123, -0.0456, 0.0789, f"… {dims} values"]}
            for i in range(2)
        ],
        "model": model.id,
        "usage": {"prompt_tokens": 22, "total_tokens": 22},
        "meta": {"usage": {"credits_used": credits, "usd_spent": round(credits / 2_000_000, 9)}},
    }
