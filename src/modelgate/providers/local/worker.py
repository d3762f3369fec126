"""A local model's worker process: ``python -m modelgate.providers.local.worker FD``.

The gateway (``supervisor.py``) starts one per model kind: ``chat`` runs the continuous-batching
engine (``engine.py``, llama.cpp), ``embed`` the embedding model (``embedder.py``, onnxruntime),
``recognize`` the speech recogniser (``recognizer.py``, PocketSphinx).
Native code runs only here: if it crashes, this process dies and the gateway's supervisor fails
the calls in flight and starts a new worker; the gateway itself keeps serving.

The main thread reads commands from the pipe (``ipc.py``); the engine's (or embedder's) own thread
sends results back, one message per engine step. SIGINT and SIGTERM are ignored: the gateway
decides when this process stops (``("stop",)``, or the pipe closing when the gateway is gone).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from modelgate.errors import GatewayError, InvalidRequestError, UpstreamError
from modelgate.providers.local.ipc import encode_error

log = logging.getLogger("modelgate.providers.local")

Send = Callable[[tuple[Any, ...]], None]


class ChatServer:
    """Runs ``Engine`` for the gateway's calls: payload ``(messages, params, n, max_tokens, stops)``."""

    def __init__(self, send: Send, options: Any) -> None:
        from modelgate.providers.local.engine import Engine

        runtime, max_queue = options
        self._send = send
        self._reqs: dict[int, Any] = {}
        self._last_stats: tuple[Any, ...] | None = None
        self.engine = Engine(runtime, max_queue=max_queue, deliver=self._deliver)

    def load(self) -> None:
        self.engine.start().result()

    def call(self, rid: int, payload: Any) -> None:
        from modelgate.providers.local.request import GenRequest
        from modelgate.providers.local.sampling import grammar_from_spec

        messages, params, n, max_tokens, stops = payload
        try:
            params = dataclasses.replace(params, grammar=grammar_from_spec(params.format))
        except GatewayError as exc:
            self._fail(rid, exc)
            return
        except Exception as exc:  # the schema converter choked on a (bounded) schema: a 400
            self._fail(
                rid, InvalidRequestError(f"response_format: the local model cannot enforce it: {exc!r}")
            )
            return
        req = GenRequest(
            rid=rid,
            messages=messages,
            params=params,
            n=n,
            max_tokens=max_tokens,
            stops=stops,
            wake=self.engine.wake,
        )
        self._reqs[rid] = req
        try:
            self.engine.submit(req)
        except GatewayError as exc:  # queue full, shut down
            self._reqs.pop(rid, None)
            self._fail(rid, exc)

    def _fail(self, rid: int, exc: GatewayError) -> None:
        self._send(("out", [(rid, ([], False, 0, 0, encode_error(exc)), True)], None))

    def cancel(self, rid: int) -> None:
        req = self._reqs.pop(rid, None)
        if req is not None:
            req.cancel()

    def stop(self) -> None:
        self.engine.shutdown()

    def _deliver(self, items: list[tuple[Any, Any]]) -> None:
        out = []
        for req, ev in items:
            final = ev.done or ev.error is not None
            error = encode_error(ev.error) if ev.error is not None else None
            out.append(
                (req.rid, (ev.choices, ev.done, req.prompt_tokens, sum(req.completion_tokens), error), final)
            )
            if final:
                self._reqs.pop(req.rid, None)
        stats = dataclasses.astuple(self.engine.stats)
        changed = stats != self._last_stats
        if out or changed:
            self._last_stats = stats
            self._send(("out", out, dataclasses.replace(self.engine.stats) if changed else None))


class JobServer:
    """Runs a model that answers each call once (the embedder, the recogniser) for the gateway's
    calls: ``runner`` owns its thread and calls ``deliver(job, result, error)``; ``stats`` is the
    runner's statistics tuple, sent with every answer."""

    def __init__(
        self,
        send: Send,
        runner: Callable[[Callable[[Any, Any, GatewayError | None], None]], Any],
        job: Callable[[int, Any], Any],
        stats: Callable[[Any], tuple[Any, ...]],
    ) -> None:
        self._send = send
        self._jobs: dict[int, Any] = {}
        self._job = job
        self._stats = stats
        self.runner = runner(self._deliver)

    def load(self) -> None:
        self.runner.start()

    def call(self, rid: int, payload: Any) -> None:
        job = self._job(rid, payload)
        self._jobs[rid] = job
        try:
            self.runner.submit(job)
        except GatewayError as exc:
            self._deliver(job, None, exc)

    def cancel(self, rid: int) -> None:
        job = self._jobs.get(rid)
        if job is not None:
            job.cancelled = True

    def stop(self) -> None:
        self.runner.shutdown()

    def _deliver(self, job: Any, result: Any, error: GatewayError | None) -> None:
        self._jobs.pop(job.rid, None)
        payload = (result, encode_error(error) if error is not None else None)
        self._send(("out", [(job.rid, payload, True)], self._stats(self.runner)))


def embed_server(send: Send, options: Any) -> JobServer:
    """All-MiniLM-L6-v2: payload ``inputs``; result ``(vectors, tokens)``; stats (runs, inputs)."""
    from modelgate.providers.local.embedder import Embedder, Job

    return JobServer(send, lambda deliver: Embedder(options, deliver), Job, lambda e: (e.runs, e.embedded))


def recognize_server(send: Send, options: Any) -> JobServer:
    """PocketSphinx: payload a WAV file's bytes; result its words; stats (files, seconds)."""
    from modelgate.providers.local.recognizer import Job, Recognizer

    return JobServer(send, lambda deliver: Recognizer(options, deliver), Job, lambda r: (r.files, r.seconds))


def _failure(kind: str, error: GatewayError) -> Any:
    return ([], False, 0, 0, encode_error(error)) if kind == "chat" else (None, encode_error(error))


SERVERS: dict[str, Callable[[Send, Any], Any]] = {
    "chat": ChatServer,
    "embed": embed_server,
    "recognize": recognize_server,
}


def serve(conn: Connection) -> None:
    lock = threading.Lock()

    def send(msg: tuple[Any, ...]) -> None:
        try:
            with lock:
                conn.send(msg)
        except (OSError, ValueError):  # the gateway is gone: the command loop sees EOF and ends
            pass

    _tag, kind, options, level = conn.recv()
    logging.basicConfig(level=level, format="%(levelname)s %(name)s [worker %(process)d] %(message)s")
    server = SERVERS[kind](send, options)
    try:
        server.load()
    except GatewayError as exc:
        send(("load_error", encode_error(exc)))
        return
    send(("ready", os.getpid()))
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "call":
                try:
                    server.call(msg[1], msg[2])
                except Exception as exc:  # a bug must fail this call, not the worker
                    log.exception("local %s worker: call failed", kind)
                    error = UpstreamError(f"local model failed: {exc!r}", provider="local")
                    send(("out", [(msg[1], _failure(kind, error), True)], None))
            elif msg[0] == "cancel":
                server.cancel(msg[1])
            elif msg[0] == "stop":
                break
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    # The gateway handles Ctrl-C and SIGTERM (sent to the whole process group by a terminal or a
    # service manager) and stops this worker itself, after its requests were cancelled and settled.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(argv[1]))
    try:
        serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the model is freed; skip interpreter teardown of native libraries
