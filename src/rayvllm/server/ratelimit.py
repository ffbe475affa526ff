"""Rate limits per API key: requests and tokens per minute, as token buckets. The buckets live in
an authority (this process's memory, or one Ray actor shared by every replica); each app leases
small batches from it, so most requests cost no call to a shared store."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pydantic import BaseModel

from rayvllm.config import LimitsConfig
from rayvllm.errors import RateLimitError
from rayvllm.server.protocol import ChatCompletionRequest, CompletionRequest, LegacyVLLMRequest

Clock = Callable[[], float]
# Each lease takes this fraction of a minute's allowance beyond the request at hand (rounded
# down, so limits under 50 a minute are never leased: every request asks the authority).
LEASE_DIVISOR = 50
LEASE_TTL_S = 1.0
UNKNOWN_CONTEXT_TOKENS = 2048  # reserved for a chat without max_tokens whose context is unknown


class Rates(NamedTuple):
    requests_per_minute: int | None
    tokens_per_minute: int | None


class Grant(NamedTuple):
    """The authority's answer: wait_s 0 = granted, with a lease of extra requests and tokens;
    wait_s > 0 = refused, retry then (inf: never, the request alone exceeds a limit)."""

    wait_s: float
    extra_requests: int = 0
    extra_tokens: int = 0
    exceeded: str = ""


class Ask(NamedTuple):
    """One call to the authority: charge `requests` and `tokens` to `identity`, lease up to
    `extra_*` more if they are there, and first give back `returned_*` (an expired lease)."""

    identity: str
    rates: Rates
    requests: int
    tokens: int
    extra_requests: int = 0
    extra_tokens: int = 0
    returned_requests: int = 0
    returned_tokens: int = 0


@dataclass(slots=True)
class _Buckets:
    requests: float
    tokens: float
    at: float


class TokenBuckets:
    """The authority: per identity a request bucket and a token bucket, each holding a minute's
    allowance and refilling continuously. Not thread-safe; a Ray actor runs one call at a time."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Buckets] = {}

    def _refilled(self, identity: str, rates: Rates) -> _Buckets:
        rpm = rates.requests_per_minute or 0
        tpm = rates.tokens_per_minute or 0
        now = self._clock()
        b = self._buckets.get(identity)
        if b is None:
            b = self._buckets[identity] = _Buckets(float(rpm), float(tpm), now)
        elapsed = max(0.0, now - b.at)
        b.requests = min(float(rpm), b.requests + elapsed * rpm / 60)
        b.tokens = min(float(tpm), b.tokens + elapsed * tpm / 60)
        b.at = now
        return b

    def take(self, ask: Ask) -> Grant:
        if ask.returned_requests or ask.returned_tokens:
            self.credit(ask.identity, ask.rates, ask.returned_requests, ask.returned_tokens)
        b = self._refilled(ask.identity, ask.rates)
        rpm, tpm = ask.rates
        requests, tokens = ask.requests, ask.tokens
        if tpm is not None and tokens > tpm:
            return Grant(math.inf, exceeded="tokens")
        waits = []
        if rpm is not None and b.requests < requests:
            waits.append(((requests - b.requests) * 60 / rpm, "requests"))
        if tpm is not None and b.tokens < tokens:
            waits.append(((tokens - b.tokens) * 60 / tpm, "tokens"))
        if waits:
            wait, exceeded = max(waits)
            return Grant(wait, exceeded=exceeded)
        b.requests -= requests if rpm is not None else 0
        b.tokens -= tokens if tpm is not None else 0
        more_requests = min(ask.extra_requests, int(b.requests)) if rpm is not None else 0
        more_tokens = min(ask.extra_tokens, int(b.tokens)) if tpm is not None else 0
        b.requests -= max(more_requests, 0)
        b.tokens -= max(more_tokens, 0)
        return Grant(0.0, max(more_requests, 0), max(more_tokens, 0))

    def credit(self, identity: str, rates: Rates, requests: int, tokens: int) -> None:
        """Give back (or, negative, charge more): refunds, unused leases, usage corrections."""
        b = self._refilled(identity, rates)
        if rates.requests_per_minute is not None:
            b.requests = min(float(rates.requests_per_minute), b.requests + requests)
        if rates.tokens_per_minute is not None:
            b.tokens = min(float(rates.tokens_per_minute), b.tokens + tokens)


class Authority(Protocol):
    """Where the buckets live. `credit` is fire-and-forget: nothing waits on it."""

    async def take(self, ask: Ask) -> Grant: ...

    def credit(self, identity: str, rates: Rates, requests: int, tokens: int) -> None: ...


class LocalAuthority:
    """Buckets in this process's memory: a standalone server, or `limits.store: memory`."""

    def __init__(self, buckets: TokenBuckets | None = None) -> None:
        self.buckets = buckets or TokenBuckets()

    async def take(self, ask: Ask) -> Grant:
        return self.buckets.take(ask)

    def credit(self, identity: str, rates: Rates, requests: int, tokens: int) -> None:
        self.buckets.credit(identity, rates, requests, tokens)


@dataclass(slots=True)
class _Lease:
    requests: int
    tokens: int
    expires: float


@dataclass(slots=True)
class Reservation:
    """One admitted request's charge; settled to its actual usage by a UsageLedger."""

    identity: str
    charged_tokens: int
    charged_request: bool = True


@dataclass(slots=True)
class UsageLedger:
    """Tokens a request really used, recorded by the generation when it ends. Settles the
    reservation when the reply is done, or later if the generation reports after that (a
    stream the client left early)."""

    limiter: RateLimiter
    reservation: Reservation
    used_tokens: int = 0
    recorded: bool = False
    closed: bool = False

    def record(self, tokens: int) -> None:
        self.used_tokens += tokens
        self.recorded = True
        if self.closed:
            self.limiter.settle(self.reservation, self.used_tokens)

    def close(self, status: int) -> None:
        if self.closed:
            return
        self.closed = True
        if self.recorded:
            self.limiter.settle(self.reservation, self.used_tokens)
        elif status >= 400:
            # Nothing was generated: give the tokens back, and the request too when the
            # refusal was ours (overload, engine down) rather than the caller's.
            self.limiter.settle(self.reservation, 0, refund_request=status >= 500)
        # else: a reply that never reported usage keeps its reservation (the safe side).


_LEDGER: ContextVar[UsageLedger | None] = ContextVar("rayvllm_usage_ledger", default=None)


def open_ledger(ledger: UsageLedger | None) -> None:
    """Make `ledger` the current request's, for `record_usage` deeper in the call."""
    _LEDGER.set(ledger)


def usage_recorder() -> Callable[[int], None]:
    """The current request's ledger's `record`, or a no-op. Taken when a generation starts: it
    may end (a dropped stream, finalized later) in another request's context."""
    ledger = _LEDGER.get()
    return ledger.record if ledger is not None else _ignore


def _ignore(tokens: int) -> None:
    pass


class RateLimiter:
    """Admission against the per-key limits, leasing from an Authority."""

    def __init__(
        self,
        config: LimitsConfig,
        authority: Authority | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rates = Rates(config.requests_per_minute, config.tokens_per_minute)
        self.active = self.rates != Rates(None, None)
        self._authority: Authority = authority or LocalAuthority()
        self._clock = clock
        self._leases: dict[str, _Lease] = {}

    def _from_lease(self, identity: str, tokens: int, now: float) -> bool:
        lease = self._leases.get(identity)
        if lease is None or lease.expires <= now:
            return False
        rpm, tpm = self.rates
        if (rpm is not None and lease.requests < 1) or (tpm is not None and lease.tokens < tokens):
            return False
        lease.requests -= 1 if rpm is not None else 0
        lease.tokens -= tokens if tpm is not None else 0
        return True

    async def admit(self, identity: str, tokens: int) -> Reservation | None:
        """Charge one request and `tokens`, or raise RateLimitError (429 with Retry-After)."""
        if not self.active:
            return None
        if self._from_lease(identity, tokens, self._clock()):
            return Reservation(identity, tokens)
        stale = self._leases.pop(identity, None)
        rpm, tpm = self.rates
        grant = await self._authority.take(
            Ask(
                identity,
                self.rates,
                1,
                tokens,
                extra_requests=(rpm or 0) // LEASE_DIVISOR,
                extra_tokens=(tpm or 0) // LEASE_DIVISOR,
                returned_requests=stale.requests if stale else 0,
                returned_tokens=stale.tokens if stale else 0,
            )
        )
        if grant.wait_s > 0:
            raise _refusal(grant, self.rates, tokens)
        if grant.extra_requests or grant.extra_tokens:
            lease = self._leases.get(identity)
            if lease is not None and lease.expires > self._clock():
                lease.requests += grant.extra_requests
                lease.tokens += grant.extra_tokens
            else:
                self._leases[identity] = _Lease(
                    grant.extra_requests, grant.extra_tokens, self._clock() + LEASE_TTL_S
                )
        return Reservation(identity, tokens)

    def settle(
        self, reservation: Reservation, used_tokens: int, *, refund_request: bool = False
    ) -> None:
        """Move the reservation's charge to `used_tokens` (a refund or an extra charge)."""
        if self.rates.tokens_per_minute is None:
            used_tokens = reservation.charged_tokens  # tokens are not limited: nothing to move
        delta = reservation.charged_tokens - used_tokens
        requests = 1 if refund_request and reservation.charged_request else 0
        reservation.charged_tokens = used_tokens
        reservation.charged_request = reservation.charged_request and not requests
        if not delta and not requests:
            return
        lease = self._leases.get(reservation.identity)
        if lease is not None and lease.expires > self._clock() and lease.tokens + delta >= 0:
            lease.tokens += delta  # settle locally: these tokens are this key's already
            lease.requests += requests
            return
        self._authority.credit(reservation.identity, self.rates, requests, delta)

    def ledger(self, reservation: Reservation | None) -> UsageLedger | None:
        return UsageLedger(self, reservation) if reservation is not None else None


def _refusal(grant: Grant, rates: Rates, tokens: int) -> RateLimitError:
    if math.isinf(grant.wait_s):
        return RateLimitError(
            f"This request needs {tokens} tokens (prompt and max_tokens), more than the limit "
            f"of {rates.tokens_per_minute} tokens per minute. Lower max_tokens.",
            param="max_tokens",
        )
    if grant.exceeded == "requests":
        what = f"{rates.requests_per_minute} requests per minute"
    else:
        what = f"{rates.tokens_per_minute} tokens per minute"
    return RateLimitError(
        f"Rate limit reached: {what} for this API key. Retry in {math.ceil(grant.wait_s)} s.",
        retry_after_s=math.ceil(grant.wait_s),
    )


def _chars(body: BaseModel) -> int:
    if isinstance(body, ChatCompletionRequest):
        return sum(len(m.text()) for m in body.messages)
    if isinstance(body, CompletionRequest):
        if isinstance(body.prompt, str):
            return len(body.prompt)
        if body.prompt and isinstance(body.prompt[0], str):
            return sum(len(str(p)) for p in body.prompt)
        return 4 * len(body.prompt)  # token ids: exactly one token each
    assert isinstance(body, LegacyVLLMRequest)
    return len(body.prompt)


def reserved_tokens(body: BaseModel, context_len: int | None) -> int:
    """What admission charges: an estimate of the prompt (4 characters a token, corrected at the
    end) plus every completion token the request may ask for."""
    prompt = _chars(body) // 4 + 1
    n = getattr(body, "n", 1)
    limit = (
        getattr(body, "token_limit", None)
        if not isinstance(body, LegacyVLLMRequest)
        else body.max_tokens
    )
    if limit is None:
        limit = max(1, (context_len or UNKNOWN_CONTEXT_TOKENS) - prompt)
    return prompt + n * int(limit)
