"""Large logs and packages pass through jobgate with its memory bounded.

    python -m jobgate.bench.transfer           # part of make bench: a 1 GiB log, a 500 MB package
    python -m jobgate.bench.transfer --quick   # part of make bench-quick (CI): 64 MiB, 32 MiB

One fresh local control plane with the object store (SeaweedFS), the operator and one API
(stored mode), each process's RSS sampled every 50 ms while it moves the bytes:

1. the log: kwok serves every pod's log from one file, which is made LOG bytes long; one job
   runs, and the operator archives its log (kubelet → spool file → multipart upload). The
   figure is the operator's RSS growth until the archive holds the whole log;
2. the archived log read back through the API once the pod is gone (`GET /api/jobs/<id>/logs`,
   at most JOBGATE_LOG_LIMIT_BYTES of it, as from a pod);
3. the package: a zip of PACKAGE bytes uploaded as Ray's client uploads a working_dir
   (`PUT /ray/api/packages/gcs/<name>`: spooled, checked, one PUT to the store), then
   downloaded as the job's init container does (`GET /api/packages/gcs/<name>?...`).

Each must hold at most GROWTH_TARGET_MB more than before, whatever the size moved. Figures
go to bench/results/transfer.json (quick: bench/results/quick/).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
from kubernetes import client
from kubernetes import config as kube_config

from jobgate.bench import measure, stack
from jobgate.crds import models, names, policy
from jobgate.devcluster import LocalCluster, objectstore

TENANT: Final = "transfer"
GROWTH_TARGET_MB: Final = 64.0  # the most a process may grow by while it moves the bytes
LINE: Final = 1000  # characters of each line of the big log
CHUNK: Final = 1 << 20


@dataclasses.dataclass(frozen=True)
class Size:
    log: int  # bytes of the job's log
    package: int  # bytes of the package


FULL: Final = Size(log=1 << 30, package=500 * 1000 * 1000)
QUICK: Final = Size(log=64 << 20, package=32 << 20)


def write_log(path: Path, *, size: int) -> int:
    """Make kwok's log file serve `size` bytes or a little more (lines of LINE characters, in
    the CRI format kwok reads); how many it serves."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
    served = 0
    with path.open("w") as out:
        while served < size:
            lines = [f"{n:012d} " + "x" * (LINE - 14) for n in range(served // LINE, served // LINE + 1000)]
            out.write("".join(f"{stamp} stdout F {line}\n" for line in lines))
            served += len(lines) * LINE
    return served


def write_package(path: Path, *, size: int) -> None:
    """A zip of one member of `size` bytes, stored as they are, written a chunk at a time."""
    pattern = bytes(range(256)) * (CHUNK // 256)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive,
        archive.open("data.bin", "w", force_zip64=True) as member,
    ):
        for start in range(0, size, CHUNK):
            member.write(pattern[: min(size - start, CHUNK)])


def chunks_of(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


class Transfer:
    def __init__(self, cluster: LocalCluster, size: Size, scratch: Path) -> None:
        self.cluster = cluster
        self.size = size
        self.scratch = scratch
        self.store = objectstore.start(cluster)
        limits = {
            "JOBGATE_PACKAGE_BASE_URL": "http://jobgate-api.jobgate-system.svc:8265",  # pods never fetch here
            "JOBGATE_MAX_UNPACKED_BYTES": str(2 * size.package),
            **self.store.env(),
        }
        self.jobgate = stack.Stack(
            cluster,
            operator_env={**limits, "JOBGATE_LOG_ARCHIVE_MAX_BYTES": str(2 * size.log)},
            apis={
                "stored": {
                    **limits,
                    "JOBGATE_SUBMIT_WAIT": "stored",
                    "JOBGATE_MAX_PACKAGE_BYTES": str(2 * size.package),
                }
            },
        )
        self.base = ""
        self.namespace = names.tenant_namespace(TENANT, prefix=names.DEFAULT_NAMESPACE_PREFIX)
        self.http = httpx.Client(timeout=600, trust_env=False, headers={"X-Tenant-Id": TENANT})
        # The config loaders are not annotated.
        kube = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self.objects = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)

    def start(self) -> None:
        self.jobgate.start()
        self.base = self.jobgate.url("stored")

    def log(self) -> dict[str, Any]:
        served = write_log(self.cluster.state_dir / "kwok" / "fake-container.log", size=self.size.log)
        print(f"the log: {served / 1e6:.0f} MB ...", flush=True)
        job = self._run("big-log", {"fake-duration": "1s"}, until=models.TERMINAL_STATES)
        key = names.log_key(self.namespace, job["metadata"]["name"], job["metadata"]["uid"], 1)
        s3 = self.store.client()

        def archived() -> bool:
            listed = s3.list_objects_v2(Bucket=self.store.bucket, Prefix=policy.DEFAULT_S3_PREFIX + key)
            return bool(listed.get("KeyCount"))

        with measure.PeakRss(self.jobgate.pid(stack.OPERATOR)) as operator:
            seconds = measure.wait("the log to be archived", archived, poll=0.1)
        kept = s3.head_object(Bucket=self.store.bucket, Key=policy.DEFAULT_S3_PREFIX + key)["ContentLength"]
        # Then read back once the pod is gone: from the archive.
        pod = job["status"]["podName"]
        self.core.delete_namespaced_pod(pod, self.namespace, grace_period_seconds=0)
        measure.wait(f"pod {pod} to be gone", lambda: self._gone(pod), poll=0.1)
        with measure.PeakRss(self.jobgate.pid(stack.api_process("stored"))) as api:
            answer = self.http.get(f"{self.base}/api/jobs/app-big-log/logs")
        answer.raise_for_status()
        return {
            "bytes": served,
            "archived_bytes": kept,
            "archive_seconds": round(seconds, 1),
            "archive_mb_per_second": round(served / 1e6 / seconds, 1),
            "operator_rss_mb_before": round(operator.start_mb, 1),
            "operator_rss_growth_mb": operator.growth_mb,
            "api_read_bytes": len(answer.json()["logs"]),
            "api_rss_growth_mb_reading_archive": api.growth_mb,
        }

    def package(self) -> dict[str, Any]:
        path = self.scratch / "package.zip"
        write_package(path, size=self.size.package)
        size = path.stat().st_size
        name = "_ray_pkg_big.zip"
        print(f"the package: {size / 1e6:.0f} MB ...", flush=True)
        api_pid = self.jobgate.pid(stack.api_process("stored"))
        with measure.PeakRss(api_pid) as uploading:
            started = time.monotonic()
            put = self.http.put(f"{self.base}/ray/api/packages/gcs/{name}", content=chunks_of(path))
            upload_seconds = time.monotonic() - started
        put.raise_for_status()
        job = self._run(
            "big-package", {"fake-duration": "600s"}, until={"RUNNING"}, working_dir=f"gcs://{name}"
        )
        identity = {
            "namespace": self.namespace,
            "job": job["metadata"]["name"],
            "uid": job["metadata"]["uid"],
        }
        received = 0
        with measure.PeakRss(api_pid) as downloading:
            started = time.monotonic()
            with httpx.stream(
                "GET", f"{self.base}/api/packages/gcs/{name}", params=identity, timeout=600, trust_env=False
            ) as answer:
                answer.raise_for_status()
                for chunk in answer.iter_bytes(CHUNK):
                    received += len(chunk)
            download_seconds = time.monotonic() - started
        assert received == size, f"downloaded {received} bytes of {size}"
        return {
            "bytes": size,
            "upload_seconds": round(upload_seconds, 1),
            "download_seconds": round(download_seconds, 1),
            "api_rss_mb_before": round(uploading.start_mb, 1),
            "api_rss_growth_mb_upload": uploading.growth_mb,
            "api_rss_growth_mb_download": downloading.growth_mb,
        }

    def _run(
        self, submission_id: str, metadata: dict[str, str], *, until: Collection[str], working_dir: str = ""
    ) -> Any:
        """Submit a job; the Job once its state is one of `until`."""
        body: dict[str, Any] = {
            "entrypoint": "python main.py",
            "runtime_env": {"working_dir": working_dir or "https://example.com/job.zip"},
            "submission_id": submission_id,
            "metadata": metadata,
        }
        self.http.post(f"{self.base}/api/jobs", json=body).raise_for_status()
        name = f"app-{submission_id}"

        def state() -> str | None:
            job: Any = self.objects.get_namespaced_custom_object(
                models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
            )
            return (job.get("status") or {}).get("state")

        measure.wait(f"job {submission_id} to be {'/'.join(until)}", lambda: state() in until, poll=0.1)
        return self.objects.get_namespaced_custom_object(
            models.GROUP, models.VERSION, self.namespace, models.PLURAL, name
        )

    def _gone(self, pod: str) -> bool:
        try:
            self.core.read_namespaced_pod(pod, self.namespace)
        except client.ApiException as e:
            if e.status == 404:
                return True
            raise
        return False


def verdicts(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    measured = {
        "operator_rss_growth_mb_archiving_log": figures["log"]["operator_rss_growth_mb"],
        "api_rss_growth_mb_package_upload": figures["package"]["api_rss_growth_mb_upload"],
        "api_rss_growth_mb_package_download": figures["package"]["api_rss_growth_mb_download"],
    }
    return {
        name: {
            "measured": value,
            "target": GROWTH_TARGET_MB,
            "bound": "max",
            "met": value <= GROWTH_TARGET_MB,
        }
        for name, value in measured.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for CI (results in results/quick/)"
    )
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    out = measure.results_dir(quick=args.quick)
    began = time.monotonic()
    figures = measure.first_figures(size)
    with (
        tempfile.TemporaryDirectory(prefix="jobgate-transfer-") as state,
        LocalCluster(Path(state)) as cluster,
    ):
        transfer = Transfer(cluster, size, Path(state))
        transfer.start()
        figures["log"] = transfer.log()
        figures["package"] = transfer.package()
    figures["targets"] = verdicts(figures)
    figures["run_seconds"] = round(time.monotonic() - began, 1)
    (out / "transfer.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {out / 'transfer.json'} in {figures['run_seconds']:.0f} s")
    print(json.dumps({"log": figures["log"], "package": figures["package"]}, indent=2))
    measure.print_verdicts(figures["targets"], unit=" MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
