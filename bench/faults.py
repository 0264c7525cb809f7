"""jobgate's fault and load suite: nothing lost, doubled or orphaned when processes die.

Every process is killed with jobs in flight, then the API is put under load.

    python -m jobgate.bench.faults           # make faults: 500 jobs per fault, 5 min of load
    python -m jobgate.bench.faults --quick   # make faults-quick (CI): small numbers, a few minutes

One fresh local control plane (real etcd, kube-apiserver, scheduler, controller-manager,
kwok), the object store (SeaweedFS: the operator archives every ended pod's log there),
jobgate's operator and two APIs (one answering once a Job is stored, one once its pod is
scheduled) as processes. For each fault, in a tenant of its own:

1. JOBS jobs are submitted from CLIENTS threads, of mixed behaviour (`KINDS`): succeed,
   exit 3, ask for a pool no node has (they fail at their scheduling timeout), or run long
   and are stopped once RUNNING. A tenth go through the scheduled-mode API, so that some
   submits are waiting for scheduling when a fault strikes.
2. When half of them are accepted, the fault: SIGKILL of one process (both APIs for `api`),
   DOWN seconds without it, a restart (etcd from its data directory). Submits and stops
   that fail meanwhile are retried with the same submission_id, as a client would.
3. A probe job is submitted; *recovery* is from the restart until that job has SUCCEEDED.
   After etcd's fault kwok is restarted then, as kubelets resync (see `Fault.resynced`).
4. Once every accepted job has ended, the cluster is read directly (not through jobgate)
   and each job checked: its status is the one its behaviour implies; it has one pod per
   attempt and one attempt; no pod lacks its Job; no pod of an ended job still runs; a
   submission the API refused (400) left no Job; a retried submit got its job or the
   duplicate error, never two jobs. After the store's own fault, every job whose container
   ran must have its log archived once the store is back (`Fault.logs_kept`).

Then the load: LOAD_CLIENTS clients submit and poll for LOAD_SECONDS; every answer must be
a 200 (or a documented rejection), and the API's memory must stay under the limit that
deploy/manager/api.yaml gives it. Figures go to bench/results/faults.json (quick:
bench/results/quick/); the run fails (exit 1) if any fault lost, doubled or orphaned a job.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import functools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import yaml
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.utils import parse_quantity

from jobgate.bench import measure, stack
from jobgate.crds import models, names, policy
from jobgate.devcluster import LocalCluster, objectstore
from jobgate.devcluster.cluster import APISERVER, ETCD, KWOK, SCHEDULER

API_MANIFEST: Final = stack.REPO_ROOT / "deploy" / "manager" / "api.yaml"
APIS: Final = ("stored", "scheduled")
NO_POOL: Final = "pool-nobody-has"  # a node label key that no node carries
CLIENTS: Final = 20  # concurrent submitters during a fault
EXTRA_NODES: Final = {"cpu-a": 20}  # 26 nodes: room for every job of a fault at once
RETRY_BOUND: Final = 300.0  # seconds a client keeps retrying one call
RETRY_PAUSE: Final = 0.5
ENDING_BOUND: Final = 300.0  # seconds for every job of a fault to end once it is over
# Seconds for every log to be archived once the jobs ended: a stopped job's log is followed
# for a minute on kwok (whose followed logs never end), and a retry waits up to a minute.
ARCHIVE_BOUND: Final = 240.0
# A 200, a refusal (400), the documented scheduling failure (500) and 404 are answers;
# anything else (no connection, 502/503 while Kubernetes is down) is retried.
ANSWERS: Final = frozenset({200, 400, 404, 500})


class Kind(enum.Enum):
    """What a job's pod does."""

    SUCCEEDS = "succeeds"
    EXITS_3 = "exits 3"
    UNSCHEDULABLE = "asks for a pool no node has"
    STOPPED = "runs long, stopped once RUNNING"


# One cycle of ten jobs: 5 succeed, 2 exit 3, 1 is unschedulable, 2 are stopped.
KINDS: Final = (
    Kind.SUCCEEDS,
    Kind.EXITS_3,
    Kind.SUCCEEDS,
    Kind.STOPPED,
    Kind.SUCCEEDS,
    Kind.UNSCHEDULABLE,
    Kind.SUCCEEDS,
    Kind.EXITS_3,
    Kind.SUCCEEDS,
    Kind.STOPPED,
)
# The status and errorType each kind must end in.
EXPECTED: Final[Mapping[Kind, tuple[models.JobState, models.Reason | None]]] = {
    Kind.SUCCEEDS: (models.JobState.SUCCEEDED, None),
    Kind.EXITS_3: (models.JobState.FAILED, models.Reason.FAILED),
    Kind.UNSCHEDULABLE: (models.JobState.FAILED, models.Reason.SCHEDULING_TIMEOUT),
    Kind.STOPPED: (models.JobState.STOPPED, models.Reason.STOPPED),
}


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    processes: tuple[str, ...]  # killed together, restarted together
    down: float  # seconds before the restart
    # Restarted once the cluster has recovered, as kubelets resync their pods. kwok stands
    # for the kubelets, and it drops a pod's status patch that the apiserver answered with
    # a 500 while etcd was down (only refused connections, 429, 503 and 504 are retried:
    # shouldRetry in kwok v0.7 and v0.8), so that pod would stay "starting" for ever.
    resynced: tuple[str, ...] = ()
    # Every log must be archived once the fault is over (the store's own fault). Elsewhere a
    # log may be lost, as documented, when its pod goes while the operator cannot read it.
    logs_kept: bool = False


@dataclasses.dataclass(frozen=True)
class Size:
    jobs: int  # per fault
    scheduler_down: float
    scheduling_timeout_ms: int  # longer than the scheduler's absence, or its jobs would time out
    load_clients: int
    load_seconds: float


FULL: Final = Size(
    jobs=500, scheduler_down=30, scheduling_timeout_ms=60_000, load_clients=100, load_seconds=300
)
QUICK: Final = Size(
    jobs=60, scheduler_down=10, scheduling_timeout_ms=30_000, load_clients=20, load_seconds=20
)


def faults(size: Size) -> list[Fault]:
    return [
        Fault("operator", (stack.OPERATOR,), down=3),
        Fault("api", tuple(stack.api_process(api) for api in APIS), down=3),
        Fault("kube-apiserver", (APISERVER,), down=5),
        Fault("etcd", (ETCD,), down=5, resynced=(KWOK,)),
        Fault("kube-scheduler", (SCHEDULER,), down=size.scheduler_down),
        Fault("objectstore", (objectstore.NAME,), down=5, logs_kept=True),
    ]


@dataclasses.dataclass
class Submission:
    submission_id: str
    kind: Kind
    api: str
    tries: int = 0
    answer: int | None = None  # the final HTTP status
    duplicate_after_retry: bool = False  # a retry found the job a lost answer had made

    @property
    def accepted(self) -> bool:
        # A 500 is the seed's "could not be scheduled in time": the Job exists (FAILED).
        return self.answer in (200, 500) or self.duplicate_after_retry


class Client:
    """Calls an API as a patient client would: what does not answer is retried unchanged."""

    def __init__(self, jobgate: stack.Stack, tenant: str) -> None:
        self.jobgate = jobgate
        self.tenant = tenant

    def submit(self, submission: Submission, *, metadata: Mapping[str, str], pool: str | None) -> None:
        def call() -> httpx.Response:
            submission.tries += 1
            return stack.submit(
                self.jobgate.url(submission.api),
                tenant=self.tenant,
                submission_id=submission.submission_id,
                metadata=metadata,
                pool=pool,
            )

        response = _retried(call)
        submission.answer = response.status_code
        if response.status_code == 400 and submission.tries > 1 and "already exist" in response.text:
            submission.duplicate_after_retry = True

    def stop(self, submission_id: str) -> bool:
        response = _retried(
            lambda: stack.HTTP.client().post(
                f"{self.jobgate.url('stored')}/api/jobs/app-{submission_id}/stop",
                headers={"X-Tenant-Id": self.tenant},
            )
        )
        return response.status_code == 200 and response.json() is True

    def status(self, submission_id: str) -> str:
        response = _retried(
            lambda: stack.HTTP.client().get(
                f"{self.jobgate.url('stored')}/api/jobs/app-{submission_id}",
                headers={"X-Tenant-Id": self.tenant},
            )
        )
        return (
            str(response.json()["status"]) if response.status_code == 200 else f"HTTP {response.status_code}"
        )


def _retried(call: Callable[[], httpx.Response]) -> httpx.Response:
    deadline = time.monotonic() + RETRY_BOUND
    while True:
        try:
            response = call()
            if response.status_code in ANSWERS:
                return response
        except httpx.TransportError:
            pass  # the process is down, or was killed while answering
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer for {RETRY_BOUND:.0f} s")
        time.sleep(RETRY_PAUSE)


# -- one fault -----------------------------------------------------------------------------


class FaultRun:
    def __init__(self, suite: Suite, fault: Fault) -> None:
        self.suite = suite
        self.fault = fault
        self.tenant = f"fault-{fault.name}"
        self.client = Client(suite.jobgate, self.tenant)
        self.submissions = [
            Submission(
                submission_id=f"{fault.name}-{i}",
                kind=KINDS[i % len(KINDS)],
                api="scheduled" if i % 10 == 4 else "stored",  # a SUCCEEDS job each cycle
            )
            for i in range(suite.size.jobs)
        ]
        self.refused: list[str] = []  # ids of invalid submits the API answered 400
        self._stopped: set[str] = set()

    def run(self) -> dict[str, Any]:
        jobgate = self.suite.jobgate
        print(f"fault {self.fault.name}: {len(self.submissions)} jobs ...", flush=True)
        submitting = threading.Thread(target=self._submit_all, name="submit")
        stopping = threading.Thread(target=self._stop_all, name="stop", daemon=True)
        submitting.start()
        stopping.start()
        measure.wait(
            "half of the jobs to be accepted",
            lambda: sum(s.accepted for s in self.submissions) >= len(self.submissions) // 2,
            poll=0.05,
        )
        in_flight = self._unfinished()
        for name in self.fault.processes:
            self.suite.cluster.kill(name)
        killed_at = time.monotonic()
        # Sent while the process is down; retried until answered (by then the API may be back).
        refusing = threading.Thread(target=self._submit_invalid, name="invalid")
        refusing.start()
        time.sleep(self.fault.down)
        restarted_at = time.monotonic()
        for name in self.fault.processes:
            if name.startswith("jobgate-"):
                jobgate.restart(name)  # waits for its own probe
            elif name == self.suite.store.name:
                self.suite.cluster.restart(name, wait=False)
                objectstore.await_writable(self.suite.cluster, self.suite.store)
            else:
                self.suite.cluster.restart(name)  # waits until the component is healthy
        back = time.monotonic() - restarted_at
        self._probe()
        recovery = time.monotonic() - restarted_at
        for name in self.fault.resynced:
            self.suite.cluster.restart(name)
        submitting.join()
        refusing.join()
        with contextlib.suppress(TimeoutError):  # what has not ended is reported by the check
            measure.wait(f"{self.tenant}'s jobs to end", self._all_ended, bound=ENDING_BOUND)
        stopping.join(timeout=60)
        checked = self._check()
        if self.fault.logs_kept:
            checked |= self._check_logs()
        figures = {
            "jobs": len(self.submissions),
            "jobs_in_flight_at_fault": in_flight,
            "down_seconds": round(restarted_at - killed_at, 1),
            "restart_seconds": round(back, 1),
            "recovery_seconds": round(recovery, 1),
            "retried_submits": sum(s.tries > 1 for s in self.submissions),
            # Of those, submits that were waiting for their pod to be scheduled when cut.
            "retried_waiting_submits": sum(s.tries > 1 and s.api == "scheduled" for s in self.submissions),
            "retries_that_found_their_job": sum(s.duplicate_after_retry for s in self.submissions),
            "refused_during_fault": len(self.refused),
            **checked,
        }
        print(f"  {figures}", flush=True)
        return figures

    def _submit_all(self) -> None:
        def one(i: int) -> None:
            submission = self.submissions[i]
            self.client.submit(
                submission,
                metadata=_metadata(submission.kind),
                pool=NO_POOL if submission.kind is Kind.UNSCHEDULABLE else None,
            )

        measure.in_parallel(len(self.submissions), one, clients=CLIENTS)

    def _stop_all(self) -> None:
        """Stop each long job once it is RUNNING (stops that fail are retried)."""
        todo = [s for s in self.submissions if s.kind is Kind.STOPPED]
        deadline = time.monotonic() + measure.BOUND
        while todo and time.monotonic() < deadline:
            for submission in list(todo):
                if not submission.accepted:
                    continue
                if self.client.status(submission.submission_id) == "RUNNING":
                    self.client.stop(submission.submission_id)
                    self._stopped.add(submission.submission_id)
                    todo.remove(submission)
            time.sleep(RETRY_PAUSE)

    def _submit_invalid(self) -> None:
        """Submits the API must refuse (0.1 cpus is under the seed's 0.3): they must leave nothing."""
        for n in range(3):
            submission_id = f"{self.fault.name}-invalid-{n}"
            body = {
                "entrypoint": "python main.py",
                "runtime_env": {"working_dir": "https://example.com/job.zip"},
                "entrypoint_num_cpus": 0.1,
                "submission_id": submission_id,
            }
            response = _retried(
                functools.partial(
                    stack.HTTP.client().post,
                    f"{self.suite.jobgate.url('stored')}/api/jobs",
                    json=body,
                    headers={"X-Tenant-Id": self.tenant},
                )
            )
            if response.status_code == 400:
                self.refused.append(f"app-{submission_id}")

    def _probe(self) -> None:
        probe = Submission(submission_id=f"{self.fault.name}-probe", kind=Kind.SUCCEEDS, api="stored")
        self.client.submit(probe, metadata={"fake-duration": "10ms"}, pool=None)
        measure.wait(
            "the probe job",
            lambda: self.client.status(probe.submission_id) == "SUCCEEDED",
            bound=600,
            poll=0.1,
        )

    def _unfinished(self) -> int:
        jobs = self.suite.jobs(self.suite.namespace_of(self.tenant))
        return sum(1 for job in jobs if not _terminal(job))

    def _all_ended(self) -> bool:
        jobs = {job["metadata"]["name"]: job for job in self.suite.jobs(self.suite.namespace_of(self.tenant))}
        return all(_terminal(jobs.get(f"app-{s.submission_id}", {})) for s in self.submissions if s.accepted)

    def _check(self) -> dict[str, Any]:
        namespace = self.suite.namespace_of(self.tenant)
        jobs = {job["metadata"]["name"]: job for job in self.suite.jobs(namespace)}
        uids = {job["metadata"]["uid"] for job in jobs.values()}
        pods = self.suite.pods(namespace)
        pods_by_job: dict[str, list[Any]] = {}
        for pod in pods:
            owner = (pod.metadata.labels or {}).get(models.LABEL_JOB_NAME, "")
            pods_by_job.setdefault(owner, []).append(pod)
        problems: list[str] = []
        lost = wrong = duplicated = 0
        for submission in self.submissions:
            name = f"app-{submission.submission_id}"
            job = jobs.get(name)
            if not submission.accepted:
                problems.append(f"{name}: never accepted (last answer {submission.answer})")
                continue
            if job is None:
                lost += 1
                problems.append(f"{name}: accepted ({submission.answer}) but no Job exists")
                continue
            status = job.get("status") or {}
            state, error_type = EXPECTED[submission.kind]
            if status.get("state") != state or status.get("errorType") != error_type:
                wrong += 1
                problems.append(
                    f"{name}: {status.get('state')}/{status.get('errorType')} ({status.get('message')!r}), "
                    f"expected {state}/{error_type}"
                )
            elif submission.kind is Kind.EXITS_3 and status.get("exitCode") != 3:
                wrong += 1
                problems.append(f"{name}: exit code {status.get('exitCode')}, expected 3")
            attempts = [
                (p.metadata.labels or {}).get(models.LABEL_ATTEMPT) for p in pods_by_job.get(name, [])
            ]
            if status.get("attempts", 0) > 1 or len(attempts) != len(set(attempts)) or len(attempts) > 1:
                duplicated += 1
                problems.append(f"{name}: {status.get('attempts')} attempts, pods of attempts {attempts}")
        orphaned = [
            pod.metadata.name
            for pod in pods
            if not any(ref.uid in uids for ref in pod.metadata.owner_references or ())
        ]
        still_running = [
            pod.metadata.name
            for job_name, job_pods in pods_by_job.items()
            if _terminal(jobs.get(job_name, {}))
            for pod in job_pods
            if pod.status.phase in ("Pending", "Running") and pod.metadata.deletion_timestamp is None
        ]
        left_behind = [name for name in self.refused if name in jobs]
        problems += [f"pod {name}: no Job owns it" for name in orphaned]
        problems += [f"pod {name}: still running, its job has ended" for name in still_running]
        problems += [f"{name}: refused, yet a Job exists" for name in left_behind]
        return {
            "lost": lost,
            "duplicated": duplicated,
            "orphaned": len(orphaned) + len(still_running),
            "wrong_status": wrong,
            "refused_left_behind": len(left_behind),
            "stops_sent": len(self._stopped),
            "problems": problems[:20],
        }

    def _check_logs(self) -> dict[str, Any]:
        """Wait until each job whose container ran has its log archived; what is missing."""
        namespace = self.suite.namespace_of(self.tenant)
        jobs = {job["metadata"]["name"]: job for job in self.suite.jobs(namespace)}
        wanted = {
            names.log_key(namespace, name, job["metadata"]["uid"], 1)
            for submission in self.submissions
            if submission.kind is not Kind.UNSCHEDULABLE
            and (job := jobs.get(name := f"app-{submission.submission_id}")) is not None
        }
        s3 = self.suite.store.client()

        def missing() -> set[str]:
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.suite.store.bucket, Prefix=f"{policy.DEFAULT_S3_PREFIX}{names.LOGS}{namespace}/"
            )
            stored = {
                item["Key"].removeprefix(policy.DEFAULT_S3_PREFIX)
                for page in pages
                for item in page.get("Contents", ())
            }
            return wanted - stored

        with contextlib.suppress(TimeoutError):  # what is missing then is reported
            measure.wait(f"{self.tenant}'s logs to be archived", lambda: not missing(), bound=ARCHIVE_BOUND)
        absent = sorted(missing())
        return {"logs_expected": len(wanted), "logs_missing": len(absent), "logs_not_archived": absent[:10]}


def _metadata(kind: Kind) -> dict[str, str]:
    """The kwok stages' per-pod behaviour (devcluster/stages.yaml): long enough to be in flight."""
    return {
        Kind.SUCCEEDS: {"fake-duration": "4s"},
        Kind.EXITS_3: {"fake-duration": "3s", "fake-exit-code": "3"},
        Kind.UNSCHEDULABLE: {},
        Kind.STOPPED: {"fake-duration": "1h"},
    }[kind]


def _terminal(job: Mapping[str, Any]) -> bool:
    return (job.get("status") or {}).get("state") in models.TERMINAL_STATES


# -- load ----------------------------------------------------------------------------------


def load(suite: Suite) -> dict[str, Any]:
    """LOAD_CLIENTS clients, each in a loop: submit a short job, poll it until it ends (or
    for 10 s), read a page of the list."""
    clients, seconds = suite.size.load_clients, suite.size.load_seconds
    print(f"load: {clients} clients for {seconds:.0f} s ...", flush=True)
    tenant = "load"
    base = suite.jobgate.url("stored")
    latencies: dict[str, list[float]] = {"submit": [], "get": [], "list": []}
    failures: list[str] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def call(kind: str, request: Callable[[], httpx.Response]) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = request()
        except httpx.HTTPError as e:
            with lock:
                failures.append(f"{kind}: {type(e).__name__} {e}")
            return None
        with lock:
            latencies[kind].append(time.perf_counter() - started)
            if response.status_code != 200:
                failures.append(f"{kind}: {response.status_code} {response.text[:200]}")
        return response

    def client_loop(number: int) -> None:
        http = stack.HTTP.client()
        headers = {"X-Tenant-Id": tenant}
        job = 0
        while time.monotonic() < end:
            submission_id = f"load-{number}-{job}"
            job += 1
            call(
                "submit",
                functools.partial(
                    stack.submit,
                    base,
                    tenant=tenant,
                    submission_id=submission_id,
                    metadata={"fake-duration": "10ms"},
                ),
            )
            for _ in range(20):
                answer = call(
                    "get",
                    functools.partial(http.get, f"{base}/api/jobs/app-{submission_id}", headers=headers),
                )
                if (
                    answer is None
                    or answer.status_code != 200
                    or answer.json()["status"] in models.TERMINAL_STATES
                ):
                    break
                time.sleep(0.5)
            call("list", lambda: http.get(f"{base}/api/jobs?limit=20", headers=headers))

    started = time.monotonic()
    with measure.PeakRss(suite.jobgate.pid(stack.api_process("stored")), period=1.0) as api_rss:
        measure.in_parallel(clients, client_loop, clients=clients)
    elapsed = time.monotonic() - started
    limit_mb = _api_memory_limit_mb()
    requests = sum(len(v) for v in latencies.values())
    figures = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "failed": len(failures),
        "failures": failures[:10],
        "latency_ms": {
            kind: measure.percentiles(values) | {"requests": len(values)}
            for kind, values in latencies.items()
        },
        "api_rss_mb_max": round(api_rss.peak_mb, 1),
        "api_memory_limit_mb": limit_mb,
        "api_within_memory_limit": api_rss.peak_mb < limit_mb,
    }
    print(f"  {figures}", flush=True)
    return figures


def _api_memory_limit_mb() -> float:
    """The memory limit deploy/ gives the API container."""
    for document in yaml.safe_load_all(API_MANIFEST.read_text()):
        if (document or {}).get("kind") != "Deployment":
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            limit = container["resources"]["limits"]["memory"]
            return float(parse_quantity(limit)) / (1 << 20)  # type: ignore[no-untyped-call]
    raise RuntimeError(f"{API_MANIFEST} has no Deployment with a memory limit")


# -- the suite -----------------------------------------------------------------------------


class Suite:
    def __init__(self, cluster: LocalCluster, size: Size) -> None:
        self.cluster = cluster
        self.size = size
        self.store = objectstore.start(cluster)
        archive = self.store.env()
        common = {"JOBGATE_SCHEDULING_TIMEOUT_MS": str(size.scheduling_timeout_ms), **archive}
        self.jobgate = stack.Stack(
            cluster,
            operator_env=archive,
            apis={api: {**common, "JOBGATE_SUBMIT_WAIT": api} for api in APIS},
        )
        # The config loaders are not annotated.
        self.kube = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self._objects = client.CustomObjectsApi(self.kube)
        self._core = client.CoreV1Api(self.kube)

    def namespace_of(self, tenant: str) -> str:
        # The API's own mapping: the API made the namespace.
        return names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's Jobs, read straight from the apiserver (retried while it is down)."""
        body: Any = _kube_retried(
            lambda: self._objects.list_namespaced_custom_object(
                models.GROUP, models.VERSION, namespace, models.PLURAL
            )
        )
        items: list[dict[str, Any]] = body["items"]
        return items

    def pods(self, namespace: str) -> list[Any]:
        return list(_kube_retried(lambda: self._core.list_namespaced_pod(namespace)).items)


def _kube_retried(call: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + RETRY_BOUND
    while True:
        try:
            return call()
        except (client.ApiException, OSError) as e:  # urllib3's errors are OSErrors
            if isinstance(e, client.ApiException) and e.status not in (None, 0, 500, 503, 504):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(RETRY_PAUSE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="small numbers, for CI (results in results/quick/)"
    )
    parser.add_argument("--only", action="append", help="run only this fault (repeatable); no load")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep the cluster's state and every process's log here (default: a temporary directory)",
    )
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    out = measure.results_dir(quick=args.quick)
    began = time.monotonic()
    figures = measure.first_figures(size)
    chosen = [fault for fault in faults(size) if not args.only or fault.name in args.only]
    with (
        contextlib.nullcontext(str(args.state_dir))
        if args.state_dir
        else tempfile.TemporaryDirectory(prefix="jobgate-faults-") as state,
        LocalCluster(Path(state), extra_nodes=EXTRA_NODES) as cluster,
    ):
        suite = Suite(cluster, size)
        suite.jobgate.start()
        figures["faults"] = {fault.name: FaultRun(suite, fault).run() for fault in chosen}
        if not args.only:
            figures["load"] = load(suite)
    figures["run_seconds"] = round(time.monotonic() - began, 1)
    (out / "faults.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {out / 'faults.json'} in {figures['run_seconds']:.0f} s")
    print(_table(figures))
    return 0 if _passed(figures) else 1


def _table(figures: Mapping[str, Any]) -> str:
    rows = [
        "| fault | jobs in flight | recovery (s) | lost | duplicated | orphaned | wrong status "
        "| logs not archived |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in figures["faults"].items():
        logs = f"{f['logs_missing']} of {f['logs_expected']}" if "logs_missing" in f else "-"
        rows.append(
            f"| SIGKILL {name} ({f['down_seconds']:.0f} s down) | {f['jobs_in_flight_at_fault']} | "
            f"{f['recovery_seconds']} | {f['lost']} | {f['duplicated']} | {f['orphaned']} | "
            f"{f['wrong_status']} | {logs} |"
        )
    return "\n".join(rows)


def _passed(figures: Mapping[str, Any]) -> bool:
    verdicts = [
        f["lost"] == f["duplicated"] == f["orphaned"] == f["wrong_status"] == f["refused_left_behind"] == 0
        and f.get("logs_missing", 0) == 0
        for f in figures["faults"].values()
    ]
    if "load" in figures:
        verdicts.append(figures["load"]["failed"] == 0 and figures["load"]["api_within_memory_limit"])
    return all(verdicts)


if __name__ == "__main__":
    sys.exit(main())
