"""The transport: what is retried, how long it waits, how often it tries, and the rate limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from email.utils import format_datetime

import httpx
import pytest
from tenacity import Future, RetryCallState

from splitreason.judges.transport import (
    PermanentError,
    RetryPolicy,
    Transport,
    TransientError,
    retry_after_seconds,
)


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize("headers, seconds", [
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "2.5"}, 2.5),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise header wins
    ({"retry-after-ms": "soon", "retry-after": "4"}, 4.0),  # an unreadable one falls back
    ({"retry-after": "soon"}, None),
    ({"retry-after": ""}, None),
    ({}, None),
])
def test_retry_after_seconds(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def test_retry_after_is_read_from_sdk_headers_case_insensitively():
    assert retry_after_seconds(httpx.Headers({"Retry-After": "7"})) == 7.0
    assert retry_after_seconds(httpx.Headers({"Retry-After-Ms": "20"})) == 0.02
    assert retry_after_seconds(None) is None
    assert retry_after_seconds(object()) is None


def test_retry_after_http_date():
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    waited = retry_after_seconds({"retry-after": format_datetime(future, usegmt=True)})
    assert 27 <= waited <= 30.5
    past = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    assert retry_after_seconds({"retry-after": format_datetime(past, usegmt=True)}) == 0.0
    assert retry_after_seconds({"retry-after": "Wed, 99 Foo 2024 00:00:00 GMT"}) is None


# -- retries ----------------------------------------------------------------------------------


class Sender:
    """A send() that fails with the given errors in turn, then answers "ok"."""

    def __init__(self, *errors: BaseException, delay: float = 0.0):
        self.errors = list(errors)
        self.calls: list[float] = []
        self.delay = delay

    async def __call__(self) -> str:
        self.calls.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def fast(**overrides) -> Transport:
    policy = RetryPolicy(**{"max_attempts": 4, "backoff_initial": 0.01, "backoff_max": 0.05, **overrides})
    return Transport(policy=policy, timeout=5.0)


def call(transport: Transport, send: Sender):
    return asyncio.run(transport.call(send))


def test_transient_errors_are_retried_until_success():
    transport = fast()
    send = Sender(TransientError("server_error", "500"), TransientError("connection", "reset"))
    assert call(transport, send) == "ok"
    assert len(send.calls) == 3
    assert transport.stats.requests == 3 and transport.stats.retries == 2
    assert dict(transport.stats.errors) == {"server_error": 1, "connection": 1}


def test_attempts_are_bounded():
    transport = fast(max_attempts=3)
    send = Sender(*[TransientError("server_error", f"500 #{i}") for i in range(10)])
    with pytest.raises(TransientError, match="500 #2"):
        call(transport, send)
    assert len(send.calls) == 3 and transport.stats.retries == 2
    single = fast(max_attempts=1)
    send = Sender(TransientError("server_error", "500"))
    with pytest.raises(TransientError):
        call(single, send)
    assert len(send.calls) == 1
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_permanent_errors_are_not_retried():
    transport = fast()
    send = Sender(PermanentError(400, "bad request"))
    with pytest.raises(PermanentError):
        call(transport, send)
    assert len(send.calls) == 1 and transport.stats.retries == 0
    assert dict(transport.stats.errors) == {"http_400": 1}


def test_unexpected_errors_are_not_retried():
    send = Sender(KeyError("bug"))
    with pytest.raises(KeyError):
        call(fast(), send)
    assert len(send.calls) == 1


def test_retry_after_is_honoured_and_capped():
    transport = fast()
    send = Sender(TransientError("rate_limited", "429", retry_after=0.3))
    call(transport, send)
    assert send.calls[1] - send.calls[0] >= 0.29

    capped = fast(retry_after_max=0.05)
    send = Sender(TransientError("rate_limited", "429", retry_after=3600))
    started = time.monotonic()
    call(capped, send)
    assert time.monotonic() - started < 1.0  # a hostile Retry-After cannot stall the run

    send = Sender(TransientError("rate_limited", "429", retry_after=-5))
    call(fast(), send)  # a negative value waits 0, it does not crash


def test_backoff_is_small_with_a_small_initial_delay():
    """The jitter scales with --retry-initial: 0.01 s retries do not each wait up to a second."""
    transport = fast(max_attempts=6, backoff_initial=0.01, backoff_max=30.0)
    send = Sender(*[TransientError("server_error", "500") for _ in range(5)])
    started = time.monotonic()
    call(transport, send)
    # 0.01 + 0.02 + 0.04 + 0.08 + 0.16 = 0.31 s, plus at most 0.01 s jitter each.
    assert time.monotonic() - started < 0.9


def wait_before(transport: Transport, attempt: int, error: BaseException) -> float:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.outcome = Future.construct(attempt, error, True)
    return transport._wait(state)


def test_backoff_grows_and_is_capped():
    transport = Transport(policy=RetryPolicy(backoff_initial=1.0, backoff_max=30.0), timeout=1.0)
    error = TransientError("server_error", "500")
    waits = [wait_before(transport, attempt, error) for attempt in range(1, 8)]
    for attempt, wait in enumerate(waits[:4], start=1):
        base = 2 ** (attempt - 1)
        assert base <= wait <= base + 1.0  # exponential, jitter at most the first delay
    assert all(wait <= 30.0 for wait in waits) and waits[-1] == 30.0
    assert wait_before(transport, 1000, error) == 30.0  # no overflow
    # Retry-After beats the backoff, capped by retry_after_max.
    assert wait_before(transport, 5, TransientError("rate_limited", "429", retry_after=2.0)) == 2.0
    assert wait_before(transport, 1, TransientError("rate_limited", "429", retry_after=1e9)) == 120.0


def test_timeout_is_a_transient_error():
    transport = Transport(policy=RetryPolicy(max_attempts=2, backoff_initial=0.01), timeout=0.1)
    send = Sender(delay=10)
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        call(transport, send)
    assert caught.value.kind == "timeout" and "0.1 s" in str(caught.value)
    assert len(send.calls) == 2 and transport.stats.errors["timeout"] == 2
    assert time.monotonic() - started < 2.0


# -- rate limit -------------------------------------------------------------------------------


def test_rate_limit_spaces_requests_without_a_burst():
    transport = Transport(policy=RetryPolicy(), timeout=5.0, requests_per_minute=600)  # one per 0.1 s

    async def many() -> list[float]:
        send = Sender()
        await asyncio.gather(*(transport.call(send) for _ in range(5)))
        return send.calls

    calls = sorted(asyncio.run(many()))
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert min(gaps) >= 0.09, gaps
    assert calls[-1] - calls[0] >= 0.38


def test_no_rate_limit_by_default():
    transport = fast()

    async def many() -> list[float]:
        send = Sender()
        await asyncio.gather(*(transport.call(send) for _ in range(20)))
        return send.calls

    calls = asyncio.run(many())
    assert max(calls) - min(calls) < 0.5
