"""Code samples in the style of the AI/ML API docs pages (Python ``requests``, JavaScript ``fetch``, curl)."""

from __future__ import annotations

import json
from typing import Any

from modelgate.catalog.models import ModelSpec
from modelgate.web import embedding_samples
from modelgate.web.media_samples import MEDIA_SAMPLES, SampleSet

SAMPLE_QUESTION = "Hi! What do you think about mankind?"
REASONING_MAX_TOKENS = 15000

# Samples by catalogue type; a type not listed (chat) gets the chat samples below.
SAMPLES_BY_TYPE: dict[str, SampleSet] = {
    "embedding": SampleSet(
        embedding_samples.python_sample,
        embedding_samples.js_sample,
        embedding_samples.curl_sample,
        embedding_samples.example_response,
    ),
    **MEDIA_SAMPLES,
}


def sample_max_tokens(model: ModelSpec) -> int | None:
    """Reasoning models get an explicit, generous ``max_tokens`` (the default 512 is often too low)."""
    if "reasoning" not in model.capabilities:
        return None
    cap = model.output_max or REASONING_MAX_TOKENS
    return min(REASONING_MAX_TOKENS, cap)


def python_sample(base_url: str, model: ModelSpec) -> str:
    if model.type in SAMPLES_BY_TYPE:
        return SAMPLES_BY_TYPE[model.type].python(base_url, model)
    max_tokens = sample_max_tokens(model)
    extra = f'        "max_tokens":{max_tokens},\n' if max_tokens else ""
    return f'''import requests
import json   # for getting a structured output with indentation

response = requests.post(
    "{base_url}/v1/chat/completions",
    headers={{
        # Insert your API key instead of <YOUR_MODELGATE_KEY>:
        "Authorization":"Bearer <YOUR_MODELGATE_KEY>",
        "Content-Type":"application/json"
    }},
    json={{
        "model":"{model.id}",
        "messages":[
            {{
                "role":"user",
                # Insert your question for the model here:
                "content":"{SAMPLE_QUESTION}"
            }}
        ],
{extra}    }}
)

data = response.json()
print(json.dumps(data, indent=2, ensure_ascii=False))
'''


def js_sample(base_url: str, model: ModelSpec) -> str:
    if model.type in SAMPLES_BY_TYPE:
        return SAMPLES_BY_TYPE[model.type].javascript(base_url, model)
    max_tokens = sample_max_tokens(model)
    extra = f"        max_tokens: {max_tokens},\n" if max_tokens else ""
    return f"""async function main() {{
  try {{
    const response = await fetch('{base_url}/v1/chat/completions', {{
      method: 'POST',
      headers: {{
        // Insert your API key instead of <YOUR_MODELGATE_KEY>
        'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',
        'Content-Type': 'application/json',
      }},
      body: JSON.stringify({{
        model: '{model.id}',
        messages:[
            {{
                role:'user',

                // Insert your question for the model here:
                content: '{SAMPLE_QUESTION}'
            }}
        ],
{extra}      }}),
    }});

    if (!response.ok) {{
      throw new Error(`HTTP error! Status ${{response.status}}`);
    }}

    const data = await response.json();
    console.log(JSON.stringify(data, null, 2));

  }} catch (error) {{
    console.error('Error', error);
  }}
}}

main();
"""


def curl_sample(base_url: str, model: ModelSpec) -> str:
    if model.type in SAMPLES_BY_TYPE:
        return SAMPLES_BY_TYPE[model.type].curl(base_url, model)
    body: dict[str, Any] = {"model": model.id, "messages": [{"role": "user", "content": "Hello"}]}
    max_tokens = sample_max_tokens(model)
    if max_tokens:
        body["max_tokens"] = max_tokens
    data = json.dumps(body, indent=2, ensure_ascii=False).replace("'", "'\\''")
    return (
        "curl -L \\\n  --request POST \\\n"
        f"  --url '{base_url}/v1/chat/completions' \\\n"
        "  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        f"  --data '{data}'"
    )


def example_response(model: ModelSpec) -> dict[str, Any]:
    if model.type in SAMPLES_BY_TYPE:
        return SAMPLES_BY_TYPE[model.type].example(model)
    reasoning = "reasoning" in model.capabilities
    usage: dict[str, Any] = {"prompt_tokens": 24, "completion_tokens": 412, "total_tokens": 436}
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": 301}
    credits = model.pricing.credits(prompt_tokens=24, completion_tokens=412)
    return {
        "id": "chatcmpl-pajSaNyMOdeEm9IPkequ",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "That's one of the biggest questions anyone can ask. Humanity is a study in "
                    "contradiction: capable of breathtaking creation and of terrible destruction…",
                },
            }
        ],
        "created": 1758636197,
        "model": model.id,
        "usage": usage,
        "meta": {"usage": {"credits_used": credits, "usd_spent": round(credits / 2_000_000, 9)}},
    }
