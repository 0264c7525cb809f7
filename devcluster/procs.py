"""Child processes of the local cluster: spawn, identify, stop.

Every process starts in its own session (so one signal to its process group also reaches
anything it forked, and Ctrl-C in the terminal reaches only the supervisor, which then
stops the children in order). Its pid *and* its start time (from /proc) are recorded,
so a later `down` in another process only ever signals the exact process that was
started, never an unrelated one that reused the pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Environment variables that could point a child at some other cluster or proxy: the
# components must only ever talk to this cluster on 127.0.0.1.
_SCRUBBED_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours, minus cluster pointers, loopback never proxied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_ENV)}
    no_proxy = "127.0.0.1,localhost"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{no_proxy},{env[key]}" if env.get(key) else no_proxy
    env.update(overrides or {})
    return env


def built(script: Path, *, override: str, error: type[Exception]) -> Path:
    """The directory a build script printed last on stdout (it reuses its cache, or builds
    from the pinned modules, progress on our stderr); $`override` instead, when set.
    `error` (with what went wrong) when there is none."""
    if env := os.environ.get(override):
        return Path(env)
    if not script.exists():
        raise error(f"{script} not found: set {override} to the directory of the binaries")
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise error(f"{script} failed (exit {result.returncode}); see its output above")
    return Path(lines[-1])


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # field 3: state
        return None
    return int(fields[19])  # field 22: starttime


class ManagedProcess:
    """One child process, started by us or adopted from a state file written by another run."""

    def __init__(
        self,
        *,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env_overrides = dict(env or {})
        self.cwd = cwd
        self.pid: int | None = None
        self.ticks: int | None = None
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.alive():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Restarts append, so a marker tells the runs apart when reading the log.
            log.write(f"\n{_START_MARKER}{self.name} at {time.ctime()} =====\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_env(self.env_overrides),
                cwd=self.cwd,
                start_new_session=True,
            )
        self.pid = self._popen.pid
        self.ticks = start_ticks(self.pid)

    def alive(self) -> bool:
        if self.pid is None:
            return False
        if self._popen is not None and self._popen.poll() is not None:
            return False  # our own child has exited (and has been reaped by poll)
        return self.ticks is not None and start_ticks(self.pid) == self.ticks

    def exit_code(self) -> int | None:
        """The exit status if we started this process and it has exited."""
        return None if self._popen is None else self._popen.poll()

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.pid is None or not self.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # start_new_session=True made the pid its own process-group id.
            os.killpg(self.pid, sig)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.05)
        return not self.alive()

    def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not exited within `grace` s."""
        if not self.alive():
            return  # never signal a pid (group) we cannot prove is still ours
        self._signal_group(signal.SIGTERM)
        if not self._wait_gone(grace):
            self._signal_group(signal.SIGKILL)
            self._wait_gone(5.0)
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, as fault tests want it)."""
        if not self.alive():
            return
        self._signal_group(signal.SIGKILL)
        self._wait_gone(5.0)
        self._reap_group()

    def _reap_group(self) -> None:
        # Stragglers the leader forked (same process group) must not outlive it. Called
        # right after the leader was seen to exit, so the group id cannot have been reused.
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def record(self) -> dict[str, Any]:
        """What a later run needs to find (and stop) this process again."""
        return {
            "pid": self.pid,
            "ticks": self.ticks,
            "argv": self.argv,
            "env": self.env_overrides,
            "log": str(self.log_path),
            "cwd": None if self.cwd is None else str(self.cwd),
        }

    @classmethod
    def adopt(cls, name: str, record: Mapping[str, Any]) -> ManagedProcess:
        """A handle on a process another run started, rebuilt from `record()`."""
        proc = cls(
            name=name,
            argv=record["argv"],
            log_path=Path(record["log"]),
            env=record.get("env") or {},
            cwd=None if record.get("cwd") is None else Path(record["cwd"]),
        )
        proc.pid = record.get("pid")
        proc.ticks = record.get("ticks")
        return proc


_START_MARKER = "===== jobgate devcluster: starting "
# Lines worth showing even when they scrolled out of the tail: cobra's `Error: ...`,
# klog's E/F<date> lines, zap's and slog's JSON error levels, Go panics.
_ERROR_LINE = re.compile(r'^(Error:|error:|panic:|[EF]\d{4} )|"level":"(error|fatal)"', re.IGNORECASE)


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of the latest run in a log file ('' if there is none)."""
    return "\n".join(_latest_run(path)[-lines:])


def failure_excerpt(path: Path, lines: int = 20) -> str:
    """For error messages: the latest run's first error-looking lines, then its tail."""
    run = _latest_run(path)
    errors = [line for line in run[: max(0, len(run) - lines)] if _ERROR_LINE.search(line)][:5]
    head = ["[first errors]", *errors, "[last lines]"] if errors else []
    return "\n".join(head + run[-lines:])


def _latest_run(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except OSError:
        return []
    run = data.decode(errors="replace").splitlines()
    for i in range(len(run) - 1, -1, -1):
        if run[i].startswith(_START_MARKER):
            return run[i + 1 :]
    return run
