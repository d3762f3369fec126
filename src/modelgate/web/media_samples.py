"""Code samples and the example response of a media model's docs page, by catalogue type: ``image``
(``POST /v1/images/generations``), ``speech`` (``POST /v1/audio/speech``) and ``transcription``
(``POST /v1/audio/transcriptions``), in the style of the chat and embedding samples."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from modelgate.catalog.models import Images, ModelSpec, Speech

SAMPLE_PROMPT = "A lighthouse on a cliff at dusk, in watercolour"
SAMPLE_SPEECH = "Hello! This is a test of text to speech."
# The file the transcription samples upload (any flac, mp3, m4a, ogg, wav or webm file):
SAMPLE_AUDIO_FILE = "audio.wav"
_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/opus"}


def _credits_of(model: ModelSpec, unit: str) -> int:
    """Credits per one ``unit`` (display only: the price sheet's figure, 2,000,000 credits per USD)."""
    usd = next((u["price"] for u in model.pricing.units() if u["name"] == unit), 0.0)
    return round(float(usd) * 2_000_000)


def _meta(credits: int) -> dict[str, Any]:
    return {"usage": {"credits_used": credits, "usd_spent": round(credits / 2_000_000, 9)}}


def _voice_and_format(model: ModelSpec) -> tuple[str, str]:
    spec = model.speech or Speech()
    return (spec.voices[0] if spec.voices else "alloy"), ("mp3" if "mp3" in spec.formats else spec.formats[0])


def _curl(base_url: str, path: str, body: dict[str, Any], tail: str = "") -> str:
    data = json.dumps(body, indent=2, ensure_ascii=False).replace("'", "'\\''")
    return (
        "curl -L \\\n  --request POST \\\n"
        f"  --url '{base_url}{path}' \\\n"
        "  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        f"  --data '{data}'{tail}"
    )


# --- image ---------------------------------------------------------------------------------------


def image_python(base_url: str, model: ModelSpec) -> str:
    return f'''import requests
import json   # for getting a structured output with indentation

response = requests.post(
    "{base_url}/v1/images/generations",
    headers={{
        # Insert your API key instead of <YOUR_MODELGATE_KEY>:
        "Authorization":"Bearer <YOUR_MODELGATE_KEY>",
        "Content-Type":"application/json"
    }},
    json={{
        "model":"{model.id}",
        # Describe the image you want here:
        "prompt":"{SAMPLE_PROMPT}"
    }}
)
response.raise_for_status()

data = response.json()
for image in data["data"]:
    # Each image is a URL or base64-encoded bytes ("response_format": "b64_json"):
    print(image.get("url") or f"{{len(image['b64_json'])}} base64 characters")
print(json.dumps(data.get("meta"), indent=2))
'''


def image_js(base_url: str, model: ModelSpec) -> str:
    return f"""async function main() {{
  const response = await fetch('{base_url}/v1/images/generations', {{
    method: 'POST',
    headers: {{
      // Insert your API key instead of <YOUR_MODELGATE_KEY>
      'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',
      'Content-Type': 'application/json',
    }},
    body: JSON.stringify({{
      model: '{model.id}',
      // Describe the image you want here:
      prompt: '{SAMPLE_PROMPT}',
    }}),
  }});
  if (!response.ok) {{
    throw new Error(`HTTP error! Status ${{response.status}}`);
  }}
  const data = await response.json();
  for (const image of data.data) {{
    console.log(image.url ?? `${{image.b64_json.length}} base64 characters`);
  }}
  console.log(JSON.stringify(data.meta, null, 2));
}}

main();
"""


def image_curl(base_url: str, model: ModelSpec) -> str:
    return _curl(base_url, "/v1/images/generations", {"model": model.id, "prompt": SAMPLE_PROMPT})


def image_example(model: ModelSpec) -> dict[str, Any]:
    spec = model.images or Images()
    credits = _credits_of(model, f"image:{spec.default_size}/{spec.default_quality}")
    return {
        "created": 1758636197,
        "data": [{"url": "https://images.example.com/3f1c6d2e.png", "revised_prompt": SAMPLE_PROMPT}],
        "meta": _meta(credits),
    }


# --- speech --------------------------------------------------------------------------------------


def speech_python(base_url: str, model: ModelSpec) -> str:
    voice, fmt = _voice_and_format(model)
    extra = f',\n        "response_format":"{fmt}"' if fmt != "mp3" else ""
    return f'''import requests

response = requests.post(
    "{base_url}/v1/audio/speech",
    headers={{
        # Insert your API key instead of <YOUR_MODELGATE_KEY>:
        "Authorization":"Bearer <YOUR_MODELGATE_KEY>",
        "Content-Type":"application/json"
    }},
    json={{
        "model":"{model.id}",
        # Insert the text to speak here:
        "input":"{SAMPLE_SPEECH}",
        "voice":"{voice}"{extra}
    }}
)
response.raise_for_status()

with open("speech.{fmt}", "wb") as f:
    f.write(response.content)
print(len(response.content), "bytes of", response.headers["content-type"], "written to speech.{fmt}")
'''


def speech_js(base_url: str, model: ModelSpec) -> str:
    voice, fmt = _voice_and_format(model)
    extra = f"\n      response_format: '{fmt}'," if fmt != "mp3" else ""
    return f"""async function main() {{
  const {{ writeFile }} = await import('node:fs/promises');
  const response = await fetch('{base_url}/v1/audio/speech', {{
    method: 'POST',
    headers: {{
      // Insert your API key instead of <YOUR_MODELGATE_KEY>
      'Authorization': 'Bearer <YOUR_MODELGATE_KEY>',
      'Content-Type': 'application/json',
    }},
    body: JSON.stringify({{
      model: '{model.id}',
      // Insert the text to speak here:
      input: '{SAMPLE_SPEECH}',
      voice: '{voice}',{extra}
    }}),
  }});
  if (!response.ok) {{
    throw new Error(`HTTP error! Status ${{response.status}}`);
  }}
  const audio = Buffer.from(await response.arrayBuffer());
  await writeFile('speech.{fmt}', audio);
  console.log(audio.length, 'bytes of', response.headers.get('content-type'), 'written to speech.{fmt}');
}}

main();
"""


def speech_curl(base_url: str, model: ModelSpec) -> str:
    voice, fmt = _voice_and_format(model)
    body: dict[str, Any] = {"model": model.id, "input": SAMPLE_SPEECH, "voice": voice}
    if fmt != "mp3":
        body["response_format"] = fmt
    return _curl(base_url, "/v1/audio/speech", body, f" \\\n  --output speech.{fmt}")


def speech_example(model: ModelSpec) -> dict[str, Any]:
    _, fmt = _voice_and_format(model)
    credits = _credits_of(model, "character") * len(SAMPLE_SPEECH)
    return {
        "status": 200,
        "headers": {
            "content-type": _CONTENT_TYPES.get(fmt, f"audio/{fmt}"),
            "x-aimlapi-credits-used": credits,
        },
        "body": f"<the {fmt} audio bytes>",
    }


# --- transcription -------------------------------------------------------------------------------


def transcription_python(base_url: str, model: ModelSpec) -> str:
    return f'''import requests
import json   # for getting a structured output with indentation

# Insert the path of your audio file here:
with open("{SAMPLE_AUDIO_FILE}", "rb") as audio:
    response = requests.post(
        "{base_url}/v1/audio/transcriptions",
        # Insert your API key instead of <YOUR_MODELGATE_KEY>:
        headers={{"Authorization":"Bearer <YOUR_MODELGATE_KEY>"}},
        files={{"file":audio}},
        data={{"model":"{model.id}"}}
    )
response.raise_for_status()

data = response.json()
print(json.dumps(data, indent=2, ensure_ascii=False))
'''


def transcription_js(base_url: str, model: ModelSpec) -> str:
    return f"""async function main() {{
  const {{ readFile }} = await import('node:fs/promises');
  const form = new FormData();
  // Insert the path of your audio file here:
  form.append('file', new Blob([await readFile('{SAMPLE_AUDIO_FILE}')]), '{SAMPLE_AUDIO_FILE}');
  form.append('model', '{model.id}');
  const response = await fetch('{base_url}/v1/audio/transcriptions', {{
    method: 'POST',
    // Insert your API key instead of <YOUR_MODELGATE_KEY>
    headers: {{ 'Authorization': 'Bearer <YOUR_MODELGATE_KEY>' }},
    body: form,
  }});
  if (!response.ok) {{
    throw new Error(`HTTP error! Status ${{response.status}}`);
  }}
  const data = await response.json();
  console.log(JSON.stringify(data, null, 2));
}}

main();
"""


def transcription_curl(base_url: str, model: ModelSpec) -> str:
    return (
        "curl -L \\\n  --request POST \\\n"
        f"  --url '{base_url}/v1/audio/transcriptions' \\\n"
        "  --header 'Authorization: Bearer <YOUR_MODELGATE_KEY>' \\\n"
        f"  --form 'file=@{SAMPLE_AUDIO_FILE}' \\\n"
        f"  --form 'model={model.id}'"
    )


def transcription_example(model: ModelSpec) -> dict[str, Any]:
    credits = _credits_of(model, "second") * 4
    return {
        "text": "Hello! This is a test of speech to text.",
        "usage": {"type": "duration", "seconds": 4},
        "meta": _meta(credits),
    }


class SampleSet(NamedTuple):
    """One catalogue type's samples: ``(base_url, model) -> source`` and the example response."""

    python: Callable[[str, ModelSpec], str]
    javascript: Callable[[str, ModelSpec], str]
    curl: Callable[[str, ModelSpec], str]
    example: Callable[[ModelSpec], dict[str, Any]]


MEDIA_SAMPLES: dict[str, SampleSet] = {
    "image": SampleSet(image_python, image_js, image_curl, image_example),
    "speech": SampleSet(speech_python, speech_js, speech_curl, speech_example),
    "transcription": SampleSet(
        transcription_python, transcription_js, transcription_curl, transcription_example
    ),
}
