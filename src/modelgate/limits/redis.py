"""Limits shared through Redis: every instance sees the same counters and key invalidations.

``acquire`` is one Lua script (atomic on the Redis server, timed by Redis' own clock so instances
with skewed clocks still share windows); invalidations travel on a pub/sub channel, and the
publisher waits until every subscriber acknowledged (each increments the message's ack counter
once it dropped the key), so a key disabled through one instance is refused by the very next
request on any instance. Keys are
``<prefix>rl:{<key_id>}:<r|t>:<window>`` and expire after two windows. Use a distinct ``prefix``
per deployment (``MODELGATE_REDIS_PREFIX``) when several share one Redis.

Every call on a request's path is bounded by ``timeout`` (``MODELGATE_REDIS_TIMEOUT``): a Redis
that refuses connections or answers nothing (a partition, a hung server) makes ``acquire`` raise
``LimiterUnavailable`` within that time, and the recorder applies the operator's policy
(``MODELGATE_REDIS_FAILURE_POLICY``, docs/deploy.md). A revocation that cannot be published is
logged and returns: this instance has dropped the key, and every other instance forgets its whole
key cache when its channel comes back (``reset``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import RedisError

from modelgate.limits.base import WINDOW, Decision, Invalidate, LimiterUnavailable, RateLimit, decide

log = logging.getLogger("modelgate.limits")

ACK_TIMEOUT = 2.0  # seconds a revoke waits for every instance's acknowledgement
ACK_POLL = 0.002

# KEYS[1]: key base "<prefix>rl:{id}"; ARGV: rpm, tpm, tokens, window seconds.
# Returns {allowed, now_ms, req_prev, req_cur, tok_prev, tok_cur} (counts before this request).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local win = tonumber(ARGV[4])
local w = math.floor(now / win)
local elapsed = now - w * win
local base = KEYS[1]
local rc, rp = base .. ':r:' .. w, base .. ':r:' .. (w - 1)
local tc, tp = base .. ':t:' .. w, base .. ':t:' .. (w - 1)
local req_cur = tonumber(redis.call('GET', rc) or '0')
local req_prev = tonumber(redis.call('GET', rp) or '0')
local tok_cur = tonumber(redis.call('GET', tc) or '0')
local tok_prev = tonumber(redis.call('GET', tp) or '0')
local rpm, tpm, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local decay = 1 - elapsed / win
local ok = 1
if rpm > 0 and (1 > rpm or req_prev * decay + req_cur + 1 > rpm) then ok = 0 end
if tpm > 0 and (cost > tpm or tok_prev * decay + tok_cur + cost > tpm) then ok = 0 end
if ok == 1 then
  local ttl = math.ceil(win * 2)
  redis.call('INCR', rc)
  redis.call('EXPIRE', rc, ttl)
  if cost > 0 then
    redis.call('INCRBY', tc, cost)
    redis.call('EXPIRE', tc, ttl)
  end
end
return {ok, tostring(math.floor(now * 1000)), req_prev, req_cur, tok_prev, tok_cur}
"""

# KEYS[1]: token counter of one window; ARGV[1]: delta. Never below zero.
ADJUST = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
return v
"""


class RedisLimiter:
    name = "redis"

    def __init__(self, url: str, *, prefix: str = "modelgate:", timeout: float = 0.5) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(
            url, decode_responses=False, health_check_interval=30, socket_connect_timeout=timeout
        )
        self._url = url
        self.timeout = timeout
        self.prefix = prefix
        self.channel = f"{prefix}keys:invalidate"
        self._acquire = self._redis.register_script(ACQUIRE)
        self._adjust = self._redis.register_script(ADJUST)
        self._listener: asyncio.Task[None] | None = None
        self._invalidate: Invalidate | None = None
        self._reset: Callable[[], None] | None = None
        self._subscribed = asyncio.Event()

    @property
    def client(self) -> Any:
        """The Redis client (shared with the web forms' limits, ``web/ratelimit.py``)."""
        return self._redis

    def _base(self, key_id: int) -> str:
        return f"{self.prefix}rl:{{{key_id}}}"

    async def acquire(self, key_id: int, limits: RateLimit, *, tokens: int) -> Decision:
        try:
            async with asyncio.timeout(self.timeout):
                ok, now_ms, rp, rc, tp, tc = await self._acquire(
                    keys=[self._base(key_id)], args=[limits.rpm or 0, limits.tpm or 0, tokens, WINDOW]
                )
        except _UNREACHABLE as exc:
            await self._drop_idle_connections()
            raise LimiterUnavailable(_why(exc)) from exc
        d = decide(
            limits,
            now=int(now_ms) / 1000,
            req_prev=float(rp),
            req_cur=float(rc),
            tok_prev=float(tp),
            tok_cur=float(tc),
            tokens=tokens,
        )
        if bool(ok) != d.allowed:  # float edge: the script's verdict is the one that counted
            d.allowed = bool(ok)
            if d.allowed:
                d.retry_after, d.refused_by = 0.0, None
            else:
                d.retry_after = max(d.retry_after, 1.0)
                d.refused_by = d.refused_by or "requests"
        return d

    async def adjust_tokens(self, key_id: int, window: int, delta: int) -> None:
        if not delta:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._adjust(keys=[f"{self._base(key_id)}:t:{window}"], args=[delta])
        except _UNREACHABLE as exc:
            await self._drop_idle_connections()
            raise LimiterUnavailable(_why(exc)) from exc

    async def _drop_idle_connections(self) -> None:
        """After a failed call: close the pool's idle connections (the failed one among them), so
        that the next call connects afresh instead of finding a connection that died under it."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.timeout):
                await self._redis.connection_pool.disconnect(inuse_connections=False)

    async def publish_invalidation(self, *, key_id: int | None = None, digest: str | None = None) -> None:
        """Drop the key here, publish it, and return once every subscribed instance (this one
        included) has dropped it too — or after ``ACK_TIMEOUT`` (logged: an instance is stuck).
        With Redis unreachable it returns within ``timeout`` per call (logged): the others forget
        their whole key cache once their channel is back."""
        if self._invalidate is not None:  # this instance at once; the others through the channel
            self._invalidate(key_id=key_id, digest=digest)
        ack = f"{self.prefix}keys:ack:{secrets.token_hex(8)}"
        message = orjson.dumps({"key_id": key_id, "digest": digest, "ack": ack})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT
        try:
            async with asyncio.timeout(self.timeout):
                receivers = int(await self._redis.publish(self.channel, message))
            while receivers:
                async with asyncio.timeout(self.timeout):
                    acked = int(await self._redis.get(ack) or 0)
                if acked >= receivers:
                    break
                if loop.time() > deadline:
                    log.warning("key invalidation: not every instance acknowledged within %gs", ACK_TIMEOUT)
                    break
                await asyncio.sleep(ACK_POLL)
        except _UNREACHABLE as exc:
            log.warning(
                "key invalidation not shared: Redis unreachable (%s); dropped on this instance, and on"
                " the others once their channel is back",
                _why(exc),
            )
            return
        with contextlib.suppress(*_UNREACHABLE):
            async with asyncio.timeout(self.timeout):
                await self._redis.delete(ack)

    async def start(self, invalidate: Invalidate, *, reset: Callable[[], None] | None = None) -> None:
        self._invalidate = invalidate
        self._reset = reset
        self._listener = asyncio.create_task(self._listen(), name="modelgate-key-invalidations")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                if self._subscribed.is_set() and self._reset is not None:
                    self._reset()  # subscribed again: invalidations may have been missed meanwhile
                self._subscribed.set()
                backoff = 0.1
                try:
                    async for msg in pubsub.listen():
                        await self._deliver(msg.get("data"))
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("key-invalidation channel lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    async def _deliver(self, data: Any) -> None:
        if self._invalidate is None or not isinstance(data, bytes | str):
            return
        try:
            msg = orjson.loads(data)
            self._invalidate(key_id=msg.get("key_id"), digest=msg.get("digest"))
        except Exception:
            log.exception("bad key-invalidation message")
            return
        ack = msg.get("ack")
        if isinstance(ack, str) and ack.startswith(f"{self.prefix}keys:ack:"):
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.incr(ack)
                    pipe.expire(ack, 60)
                    await pipe.execute()
            except Exception as exc:
                log.warning("could not acknowledge a key invalidation (%s)", type(exc).__name__)

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                return bool(await self._redis.ping())
        except Exception:
            return False

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self._redis.aclose()


# What "Redis is unreachable" looks like: refused or reset (OSError, redis' ConnectionError), no
# answer within the bound (TimeoutError, redis' TimeoutError), and whatever else the driver raises
# for a connection that died under it (uvloop: RuntimeError on a closed transport). Any failure of a
# limiter call is treated alike: the operator's policy applies, and it is logged.
_UNREACHABLE = (TimeoutError, OSError, RedisError, RuntimeError)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
