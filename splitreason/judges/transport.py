"""The one place external judge calls go through: rate limit, timeout, retries, counters.

Only transient errors are retried (429 honouring Retry-After, 5xx, timeouts, connection
errors), with capped exponential backoff and jitter, for a bounded number of attempts.
Anything else surfaces at once as PermanentError. Backends translate their SDK's exceptions
into these two types; the transport never guesses from message text.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TypeVar

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from splitreason.io.redaction import redact
from splitreason.schemas.annotate import AnnotateSettings as _S

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """Worth retrying. `kind` is a short label (rate_limited, server_error, timeout, connection)."""

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class PermanentError(Exception):
    """Not worth retrying (bad request, auth, unknown model). `status` is the HTTP status if any."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = _S.default("max_attempts")
    backoff_initial: float = _S.default("retry_initial")
    backoff_max: float = _S.default("retry_max")
    # Never sleep longer than this for a Retry-After header, so a hostile value cannot stall a run.
    retry_after_max: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


@dataclass
class TransportStats:
    requests: int = 0
    retries: int = 0
    errors: Counter = field(default_factory=Counter)


class Transport:
    def __init__(self, *, policy: RetryPolicy, timeout: float, requests_per_minute: float | None = None):
        self.policy = policy
        self.timeout = timeout
        self.stats = TransportStats()
        # One request per 60/rpm seconds: a bucket of size 1, so the first minute is not one burst
        # of `rpm` requests (what AsyncLimiter(rpm, 60) allows) that trips the server's own limit.
        self._limiter = AsyncLimiter(1, 60 / requests_per_minute) if requests_per_minute else None
        # Jitter in proportion to the first delay (tenacity's default adds up to 1 s to every wait).
        self._backoff = wait_exponential_jitter(multiplier=policy.backoff_initial, max=policy.backoff_max,
                                                jitter=policy.backoff_initial)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.policy.retry_after_max)
        return self._backoff(state)

    async def _attempt(self, send: Callable[[], Awaitable[T]]) -> T:
        if self._limiter is not None:
            await self._limiter.acquire()
        self.stats.requests += 1
        try:
            return await asyncio.wait_for(send(), timeout=self.timeout)
        except TimeoutError as error:
            self.stats.errors["timeout"] += 1
            raise TransientError("timeout", f"no answer within {self.timeout:g} s") from error
        except TransientError as error:
            self.stats.errors[error.kind] += 1
            raise
        except PermanentError as error:
            self.stats.errors[f"http_{error.status}" if error.status else "permanent"] += 1
            raise

    async def call(self, send: Callable[[], Awaitable[T]]) -> T:
        """Run `send` with retries; raises the last TransientError once attempts are spent."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            retry=retry_if_exception_type(TransientError),
            wait=self._wait,
            reraise=True,
            before_sleep=self._count_retry,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(send)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _count_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        # the message is the server's, already redacted where transports build it; the kind says why
        log.info("judge request failed (%s), attempt %d; retrying in %.1f s", getattr(error, "kind", type(error).__name__),
                 state.attempt_number, wait)


def retry_after_seconds(headers: object) -> float | None:
    """Seconds from a Retry-After (or retry-after-ms) header; None when absent or unreadable."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    milliseconds = get("retry-after-ms")
    if milliseconds:
        try:
            return float(milliseconds) / 1000
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        import datetime as _dt

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - _dt.datetime.now(_dt.timezone.utc)).total_seconds())


def sdk_error(error: Exception, sdk: ModuleType) -> TransientError | PermanentError:
    """Our error for an exception of the openai or anthropic SDK (both share one generated
    exception hierarchy, so one mapping serves both): 429, 5xx (Anthropic's 529 included),
    timeouts, connection errors and malformed responses are transient; other statuses are not."""
    message = redact(str(error))  # a server may echo the request's key (or the URL's credentials)
    if isinstance(error, sdk.APITimeoutError):  # a subclass of APIConnectionError: test it first
        return TransientError("timeout", message)
    if isinstance(error, sdk.APIConnectionError):
        return TransientError("connection", message)
    if isinstance(error, sdk.APIResponseValidationError):
        return TransientError("bad_response", message)
    if isinstance(error, sdk.APIStatusError):
        retry_after = retry_after_seconds(error.response.headers)
        if error.status_code == 429:
            return TransientError("rate_limited", message, retry_after=retry_after)
        if error.status_code >= 500:
            return TransientError("server_error", message, retry_after=retry_after)
        return PermanentError(error.status_code, message)
    return PermanentError(None, message)
