"""Timing, waiting and /proc readings shared by the benchmark and the fault suite."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import os
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

RESULTS: Final = Path(__file__).resolve().parents[1] / "bench" / "results"
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


class PeakRss:
    """The most memory a process holds while the block runs, sampled every `period` seconds:

    with PeakRss(pid) as peak:
        work()
    peak.growth_mb  # the highest RSS seen, less the RSS at the start
    """

    def __init__(self, pid: int, *, period: float = 0.05) -> None:
        self._pid = pid
        self._period = period
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self.start_mb = self.peak_mb = 0.0

    def __enter__(self) -> PeakRss:
        self.start_mb = self.peak_mb = rss_mb(self._pid)
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._sampler.join()

    @property
    def growth_mb(self) -> float:
        return round(self.peak_mb - self.start_mb, 1)

    def _sample(self) -> None:
        while not self._done.wait(self._period):
            self.peak_mb = max(self.peak_mb, rss_mb(self._pid))


def results_dir(*, quick: bool) -> Path:
    """Where a run writes its figures: bench/results/, or bench/results/quick/ (not kept in git)."""
    out = RESULTS / "quick" if quick else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    return out


def first_figures(size: object) -> dict[str, Any]:
    """A run's figures as it begins: when, and at what size (a dataclass)."""
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "size": dataclasses.asdict(size),  # type: ignore[call-overload]
    }


def print_verdicts(verdicts: Mapping[str, Mapping[str, Any]], *, unit: str = "") -> None:
    """One line per target: measured, target, met."""
    for name, verdict in verdicts.items():
        met = "met" if verdict["met"] else "NOT met"
        print(f"  {name}: {verdict['measured']}{unit} (target {verdict['target']}{unit}) {met}")
