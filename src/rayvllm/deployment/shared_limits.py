"""Rate-limit buckets shared by every replica of an app: one named, detached Ray actor. The app
builder creates it; each replica finds it by name. Replicas lease batches from it (see
server/ratelimit.py), so most requests make no call to it."""

from __future__ import annotations

from typing import Any

import ray

from rayvllm.config import ServeConfig
from rayvllm.server.ratelimit import Ask, Grant, Rates, TokenBuckets

NAMESPACE = "rayvllm"


@ray.remote(num_cpus=0, max_restarts=-1)
class RateLimitBuckets:
    """TokenBuckets in an actor: Ray runs its calls one at a time, as the buckets need."""

    def __init__(self) -> None:
        self._buckets = TokenBuckets()

    def take(self, ask: Ask) -> Grant:
        return self._buckets.take(ask)

    def credit(self, identity: str, rates: Rates, requests: int, tokens: int) -> None:
        self._buckets.credit(identity, rates, requests, tokens)


def actor_name(config: ServeConfig) -> str:
    return f"{config.app_name}-rate-limits"


def uses_shared_limits(config: ServeConfig) -> bool:
    limits = config.limits
    active = limits.requests_per_minute is not None or limits.tokens_per_minute is not None
    return active and limits.store == "ray"


def buckets_actor(config: ServeConfig) -> Any:
    """The app's bucket actor, created if missing (get_if_exists makes racing replicas agree)."""
    return RateLimitBuckets.options(  # type: ignore[attr-defined]
        name=actor_name(config), namespace=NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote()


class RayAuthority:
    """server.ratelimit.Authority over the shared actor."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    async def take(self, ask: Ask) -> Grant:
        grant = await self._actor.take.remote(ask)
        return Grant(*grant)

    def credit(self, identity: str, rates: Rates, requests: int, tokens: int) -> None:
        self._actor.credit.remote(identity, rates, requests, tokens)  # nothing waits on it


def shared_authority(config: ServeConfig) -> RayAuthority | None:
    """The authority a replica's app uses: the shared actor, or None (in-replica memory)."""
    return RayAuthority(buckets_actor(config)) if uses_shared_limits(config) else None
