"""The one way tests wait: until a condition holds, or give up after a bound.

In the spirit of Gomega's `Eventually` (and controller-runtime's envtest, which uses it):

    pod = eventually(lambda: scheduled(name), message=f"pod {name} to be scheduled")

calls its check every `interval` seconds until the check returns something truthy, and
returns that. Once `timeout` seconds have passed it raises AssertionError naming what it
waited for, with the last value the check returned (or the last exception it ignored).
Return what was awaited itself (a pod, a dict) or True: a value found but falsy (0, "",
[]) reads as "not yet".

The timeout rule is the same everywhere: TIMEOUT unless a call says otherwise. The bound
only stops a hung test: nothing waits for it when the condition comes true, so a generous
bound costs nothing and a short one only makes tests flaky.

An exception raised by the check ends the wait at once (a failed assertion inside it, an
API error: a wrong answer is not a "not yet"), unless its type is in `ignoring`: then it
counts as "not yet" and is shown, and chained, when the wait gives up.

Nothing here sleeps for a while to let something happen: wait for what it does instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

T = TypeVar("T")

TIMEOUT = 60.0  # seconds: the default bound of every wait (it only stops a hung test)
INTERVAL = 0.1  # seconds between two looks

Message = str | Callable[[], str]


def eventually(
    check: Callable[[], T | Literal[False] | None],
    *,
    message: Message,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    ignoring: tuple[type[Exception], ...] = (),
) -> T:
    """The first truthy value `check()` returns, calling it every `interval` seconds.

    `message` says what is awaited ("pod x to be scheduled"); a callable is called only on
    a timeout, to describe the state then. After `timeout` seconds: AssertionError with the
    message and the last value, or the last exception of the types in `ignoring`.
    """
    last: object = None
    error: Exception | None = None
    looks = 0
    for _ in _looks(timeout=timeout, interval=interval):
        looks += 1
        try:
            value = check()
        except ignoring as caught:
            error = caught
            continue
        if value:
            return value
        last, error = value, None
    seen = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    raise AssertionError(
        f"timed out after {timeout:g} s ({looks} looks) waiting for {_text(message)}; {seen}"
    ) from error


def _looks(*, timeout: float, interval: float) -> Iterator[None]:
    """Yield at once, then every `interval` seconds; stop once `timeout` seconds have passed
    (after one last look at the deadline)."""
    if timeout < 0 or interval <= 0:
        raise ValueError(f"timeout {timeout} must be >= 0 and interval {interval} > 0")
    deadline = time.monotonic() + timeout
    while True:
        yield
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(interval, remaining))


def _text(message: Message) -> str:
    return message() if callable(message) else message
