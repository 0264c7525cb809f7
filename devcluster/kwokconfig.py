"""kwok's configuration: the pod stages from `stages.yaml`, plus where pod logs come from."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

STAGES_FILE = Path(__file__).with_name("stages.yaml")

# What `kubectl logs` prints for any container on a fake node.
FAKE_LOG_LINES = ("fake job output", "fake job finished")


def write_fake_log(path: Path) -> None:
    """Write the CRI-format log file (`<RFC3339Nano> <stream> F <text>`) kwok serves."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{stamp} stdout F {line}\n" for line in FAKE_LOG_LINES))


def write_config(path: Path, *, log_file: Path) -> None:
    """Write kwok's `--config`: every pod stage and a ClusterLogs for all pods."""
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(STAGES_FILE.read_text()) if d]
    docs.append(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "fake-job-output"},
            # No selector and no container list: every container of every pod.
            "spec": {"logs": [{"logsFile": str(log_file)}]},
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
