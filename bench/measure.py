"""Timing, waiting and /proc readings shared by the benchmark and the fault suite."""

from __future__ import annotations

import concurrent.futures
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

POLL: Final = 0.5  # seconds between checks of a condition
BOUND: Final = 1800.0  # seconds: only stops a hung phase


def in_parallel(count: int, work: Callable[[int], object], *, clients: int) -> list[float]:
    """work(0..count-1) from `clients` threads; the seconds each call took."""
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda i: timed(lambda: work(i)), range(count)))


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of `seconds`, in milliseconds."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    cuts = (
        statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else list(seconds) * 99
    )
    return {
        "p50": round(1000 * cuts[49], 2),
        "p95": round(1000 * cuts[94], 2),
        "p99": round(1000 * cuts[98], 2),
    }


def wait(what: str, done: Callable[[], bool], *, bound: float = BOUND, poll: float = POLL) -> float:
    """Poll `done` until true; the seconds it took. TimeoutError after `bound` seconds."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > bound:
            raise TimeoutError(f"gave up waiting for {what} after {bound:.0f} s")
        time.sleep(poll)
    return time.monotonic() - started


def difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """What grew between two readings of counters, by name."""
    return {
        key: value - before.get(key, 0.0) for key, value in after.items() if value - before.get(key, 0.0) > 0
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
