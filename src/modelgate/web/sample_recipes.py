"""What each catalogue type's code samples send and do with the answer (``web/samples.py`` renders
them): chat, embedding, image, speech and transcription. Data only: one ``Recipe`` per type."""

from __future__ import annotations

from typing import Any

from modelgate.catalog.models import Images, ModelSpec, Speech
from modelgate.web.samples import (
    SAMPLE_QUESTION,
    Note,
    Recipe,
    credits_per,
    meta,
    sample_max_tokens,
)

SAMPLE_INPUTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A fast auburn fox leaps above a sleepy hound.",
]
SAMPLE_PROMPT = "A lighthouse on a cliff at dusk, in watercolour"
SAMPLE_SPEECH = "Hello! This is a test of text to speech."
SAMPLE_AUDIO_FILE = "audio.wav"  # what the transcription samples upload (any flac, mp3, m4a, ogg, wav, webm)
_AUDIO_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "pcm": "audio/pcm", "opus": "audio/opus"}
_PRINT_JSON = "data = response.json()\nprint(json.dumps(data, indent=2, ensure_ascii=False))\n"
_LOG_JSON = "  const data = await response.json();\n  console.log(JSON.stringify(data, null, 2));\n"


# --- chat ------------------------------------------------------------------------------------------


def _chat_body(model: ModelSpec) -> dict[str, Any]:
    message = {"role": "user", "content": Note("Insert your question for the model here", SAMPLE_QUESTION)}
    body: dict[str, Any] = {"model": model.id, "messages": [message]}
    if max_tokens := sample_max_tokens(model):
        body["max_tokens"] = max_tokens
    return body


def _chat_curl(model: ModelSpec) -> dict[str, Any]:
    body = _chat_body(model)
    body["messages"] = [{"role": "user", "content": "Hello"}]
    return body


def _chat_example(model: ModelSpec) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 24, "completion_tokens": 412, "total_tokens": 436}
    if "reasoning" in model.capabilities:
        usage["completion_tokens_details"] = {"reasoning_tokens": 301}
    content = (
        "That's one of the biggest questions anyone can ask. Humanity is a study in "
        "contradiction: capable of breathtaking creation and of terrible destruction…"
    )
    return {
        "id": "chatcmpl-pajSaNyMOdeEm9IPkequ",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": None,
                "message": {"role": "assistant", "content": content},
            }
        ],
        "created": 1758636197,
        "model": model.id,
        "usage": usage,
        "meta": meta(model.pricing.credits(prompt_tokens=24, completion_tokens=412)),
    }


# --- embedding -------------------------------------------------------------------------------------


def _embedding_example(model: ModelSpec) -> dict[str, Any]:
    dims = model.embedding.dimensions if model.embedding is not None else 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": [0.0123, -0.0456, 0.0789, f"… {dims} values"]}
            for i in range(2)
        ],
        "model": model.id,
        "usage": {"prompt_tokens": 22, "total_tokens": 22},
        "meta": meta(model.pricing.credits(prompt_tokens=22, completion_tokens=0)),
    }


# --- image -----------------------------------------------------------------------------------------


def _image_example(model: ModelSpec) -> dict[str, Any]:
    spec = model.images or Images()
    return {
        "created": 1758636197,
        "data": [{"url": "https://images.example.com/3f1c6d2e.png", "revised_prompt": SAMPLE_PROMPT}],
        "meta": meta(credits_per(model, f"image:{spec.default_size}/{spec.default_quality}")),
    }


# --- speech ----------------------------------------------------------------------------------------


def _voice_and_format(model: ModelSpec) -> tuple[str, str]:
    spec = model.speech or Speech()
    return (spec.voices[0] if spec.voices else "alloy"), ("mp3" if "mp3" in spec.formats else spec.formats[0])


def _speech_body(model: ModelSpec) -> dict[str, Any]:
    voice, fmt = _voice_and_format(model)
    body = {"model": model.id, "input": Note("Insert the text to speak here", SAMPLE_SPEECH), "voice": voice}
    return body | ({"response_format": fmt} if fmt != "mp3" else {})


def _speech_python(model: ModelSpec) -> str:
    fmt = _voice_and_format(model)[1]
    return f"""with open("speech.{fmt}", "wb") as f:
    f.write(response.content)
print(len(response.content), "bytes of", response.headers["content-type"], "written to speech.{fmt}")
"""


def _speech_js(model: ModelSpec) -> str:
    fmt = _voice_and_format(model)[1]
    return f"""  const audio = Buffer.from(await response.arrayBuffer());
  await writeFile('speech.{fmt}', audio);
  console.log(audio.length, 'bytes of', response.headers.get('content-type'), 'written to speech.{fmt}');
"""


def _speech_example(model: ModelSpec) -> dict[str, Any]:
    fmt = _voice_and_format(model)[1]
    return {
        "status": 200,
        "headers": {
            "content-type": _AUDIO_TYPES.get(fmt, f"audio/{fmt}"),
            "x-aimlapi-credits-used": credits_per(model, "character") * len(SAMPLE_SPEECH),
        },
        "body": f"<the {fmt} audio bytes>",
    }


# --- transcription ---------------------------------------------------------------------------------


def _transcription_example(model: ModelSpec) -> dict[str, Any]:
    return {
        "text": "Hello! This is a test of speech to text.",
        "usage": {"type": "duration", "seconds": 4},
        "meta": meta(credits_per(model, "second") * 4),
    }


RECIPES: dict[str, Recipe] = {
    "chat": Recipe(
        body=_chat_body,
        curl_body=_chat_curl,
        python=lambda m: _PRINT_JSON,
        javascript=lambda m: _LOG_JSON,
        example=_chat_example,
    ),
    "embedding": Recipe(
        body=lambda m: {
            "model": m.id,
            "input": Note("Insert the text (or a list of texts) to embed here", SAMPLE_INPUTS),
        },
        curl_body=lambda m: {"model": m.id, "input": SAMPLE_INPUTS[0]},
        python=lambda m: (
            """data = response.json()
for item in data["data"]:
    print(item["index"], len(item["embedding"]), item["embedding"][:4])
print(json.dumps(data["usage"], indent=2))
"""
        ),
        javascript=lambda m: (
            """  const data = await response.json();
  for (const item of data.data) {
    console.log(item.index, item.embedding.length, item.embedding.slice(0, 4));
  }
  console.log(JSON.stringify(data.usage, null, 2));
"""
        ),
        example=_embedding_example,
    ),
    "image": Recipe(
        body=lambda m: {"model": m.id, "prompt": Note("Describe the image you want here", SAMPLE_PROMPT)},
        python=lambda m: (
            """data = response.json()
for image in data["data"]:
    # Each image is a URL or base64-encoded bytes ("response_format": "b64_json"):
    print(image.get("url") or f"{len(image['b64_json'])} base64 characters")
print(json.dumps(data.get("meta"), indent=2))
"""
        ),
        javascript=lambda m: (
            """  const data = await response.json();
  for (const image of data.data) {
    console.log(image.url ?? `${image.b64_json.length} base64 characters`);
  }
  console.log(JSON.stringify(data.meta, null, 2));
"""
        ),
        example=_image_example,
    ),
    "speech": Recipe(
        body=_speech_body,
        python=_speech_python,
        javascript=_speech_js,
        example=_speech_example,
        curl_output=lambda m: f"speech.{_voice_and_format(m)[1]}",
        python_imports="",
        js_imports="  const { writeFile } = await import('node:fs/promises');\n",
    ),
    "transcription": Recipe(
        body=lambda m: {"model": m.id},
        python=lambda m: _PRINT_JSON,
        javascript=lambda m: _LOG_JSON,
        example=_transcription_example,
        upload=SAMPLE_AUDIO_FILE,
    ),
}
