"""jobgate's benchmark: one run, one fresh local control plane, jobgate beside its peers.

    python -m jobgate.bench            # the full run (make bench): figures in bench/results/
    python -m jobgate.bench --quick    # small numbers (make bench-quick, CI): bench/results/quick/

What it measures (bench/README.md says why and how):
1. end-to-end throughput of N jobs whose pods succeed after FAKE_DURATION on kwok nodes:
   jobgate (submitted over HTTP, done when GET shows them SUCCEEDED), batch/v1 Jobs run by
   kube-controller-manager's Job controller, and bare pods made by a tight client (the ceiling).
   The machine is shared and noisy: the Job controller and jobgate run in turn, ROUNDS times
   each, and the median of the rounds' ratios is reported with its spread;
2. submit latency (p50/p95/p99) at 1, 10 and 50 concurrent clients, in both submit modes;
3. scale: SCALE jobs existing: the operator's memory (at a tenth, half and all of them) and
   CPU at rest, GET /api/jobs latency (one page, and all), and how long a restarted operator
   takes to run a job again;
4. apiserver writes per job and CPU per job of every process, jobgate and the Job
   controller, from the apiserver's metrics and /proc.

Every client QPS limit is lifted (scheduler, controller-manager, operator, API) and the Job
controller gets as many sync workers as the operator has, so each runs at its best.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import datetime
import functools
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from kubernetes import client
from kubernetes import config as kube_config
from prometheus_client.parser import text_string_to_metric_families

from jobgate.bench import measure, stack
from jobgate.core import jobs
from jobgate.crds import models
from jobgate.devcluster import LocalCluster
from jobgate.operator import config as operator_config
from jobgate.operator import podspec

CLIENT_QPS: Final = 2000.0  # scheduler and controller-manager (burst twice that)
WORKERS: Final = 32  # the operator's apiserver threads, and the Job controller's syncs
CLIENTS: Final = 50  # concurrent submitters in the throughput runs
EXTRA_NODES: Final = {"cpu-a": 60}  # 66 nodes: room for ~3,500 running pods of 0.3 cpu
FAKE_DURATION: Final = "1s"  # how long each job's pod "runs"
SHORT_DURATION: Final = "10ms"  # the scale run's jobs
SCALE_BATCH: Final = 1000  # the scale run's jobs are submitted this many at a time
WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # apiserver_request_total's verbs
CONCURRENCY: Final = (1, 10, 50)
# name -> (target, "min": measured must be at least it, "max": at most it)
TARGETS: Final = {
    "jobgate_vs_job_controller": (1.2, "min"),
    "jobgate_vs_ceiling": (0.33, "min"),
    "apiserver_writes_per_job": (9.0, "max"),
    "cpu_per_job_vs_job_controller": (0.8, "max"),
    "operator_cpu_ms_per_job": (15.0, "max"),
    "operator_rss_mb_at_scale": (150.0, "max"),
    "operator_rss_growth_half_to_all": (0.10, "max"),
    **{f"stored_submit_p99_vs_apiserver_at_{n}": (1.2, "max") for n in CONCURRENCY},
}
# The benchmark's job, as the Job spec the API makes of stack.submit's body.
JOB_SPEC: Final = {
    "entrypoint": "python main.py",
    "runtimeEnv": {"working_dir": "https://example.com/job.zip"},
    "metadata": {"fake-duration": FAKE_DURATION},
}


def _peer_pod_template() -> dict[str, Any]:
    """The pod jobgate makes of JOB_SPEC (rendered by the operator's own `podspec`, init
    container and all), for the peers to run the very same pod; without jobgate's labels
    and owner, which would make it one of jobgate's pods."""
    pod = podspec.render_pod(
        job=jobs.JobRef(namespace="", name="peer", uid=""),
        spec=models.JobSpec.model_validate(JOB_SPEC),
        attempt=1,
        config=operator_config.Config(),
        created_at="2025-01-01T00:00:00.000Z",
    )
    return {"metadata": {"annotations": pod["metadata"]["annotations"]}, "spec": pod["spec"]}


POD_TEMPLATE: Final = _peer_pod_template()


@dataclasses.dataclass(frozen=True)
class Size:
    jobs: int  # per throughput run
    rounds: int  # throughput runs of jobgate and of the Job controller, in turn
    requests: int  # per (mode, concurrency) latency run
    scale: int  # jobs existing in the scale run
    settle: float  # seconds of rest over which the operator's CPU is measured
    profile: bool


FULL: Final = Size(jobs=2000, rounds=3, requests=500, scale=10_000, settle=30.0, profile=True)
QUICK: Final = Size(jobs=100, rounds=1, requests=30, scale=300, settle=5.0, profile=False)


# -- the cluster and jobgate's processes -----------------------------------------------------


class Bench:
    def __init__(self, cluster: LocalCluster, size: Size, out: Path) -> None:
        self.cluster = cluster
        self.size = size
        self.out = out
        # The config loaders are not annotated.
        self.kube = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        self.kube.configuration.connection_pool_maxsize = CLIENTS
        self.core = client.CoreV1Api(self.kube)
        self.batch = client.BatchV1Api(self.kube)
        self.figures: dict[str, Any] = {}
        self.jobgate = stack.Stack(
            cluster,
            operator_env={"JOBGATE_OPERATOR_WORKERS": str(WORKERS)},
            apis={mode: {"JOBGATE_SUBMIT_WAIT": mode} for mode in ("stored", "scheduled")},
        )

    @property
    def stored(self) -> str:
        """The stored-mode API's URL: the one every run but the latency's submits to."""
        return self.jobgate.url("stored")

    def pid(self, name: str) -> int:
        return self.jobgate.pid(name)

    # -- 1. throughput, and 4. writes per job -----------------------------------------------

    def throughput(self) -> None:
        n = self.size.jobs
        figures: dict[str, Any] = {"jobs": n, "fake_duration": FAKE_DURATION, "clients": CLIENTS}
        rounds = []
        for number in range(self.size.rounds):
            controller = self._measured(
                "job_controller", n, functools.partial(self._run_batch_jobs, n, round=number)
            )
            ours = self._measured(
                "jobgate", n, functools.partial(self._run_jobgate, n, tenant=f"bench-e2e-{number}")
            )
            ratio = ours["jobs_per_second"] / controller["jobs_per_second"]
            rounds.append({"job_controller": controller, "jobgate": ours, "ratio": round(ratio, 3)})
        # The round whose ratio is the median stands for all; the others show the spread.
        middle = sorted(rounds, key=lambda run: run["ratio"])[len(rounds) // 2]
        ratios = [run["ratio"] for run in rounds]
        figures |= {
            "rounds": rounds,
            "jobgate": middle["jobgate"],
            "job_controller": middle["job_controller"],
            "ceiling": self._measured("ceiling", n, lambda: self._run_bare_pods(n)),
            "jobgate_vs_job_controller": middle["ratio"],
            "jobgate_vs_job_controller_spread": [min(ratios), max(ratios)],
        }
        figures["jobgate_vs_ceiling"] = round(
            figures["jobgate"]["jobs_per_second"] / figures["ceiling"]["jobs_per_second"], 2
        )
        figures["cpu_per_job_vs_job_controller"] = round(
            figures["jobgate"]["cpu_ms_per_job"] / figures["job_controller"]["cpu_ms_per_job"], 2
        )
        self.figures["throughput"] = figures
        if self.size.profile:
            # Apart from the timed run: sampling slows the processes it samples.
            with self.profiling():
                self._run_jobgate(n // 4, tenant="bench-profiled")

    def _measured(self, name: str, n: int, run: Callable[[], float]) -> dict[str, Any]:
        """Run `run` (it returns its seconds) and what it cost: apiserver requests, CPU."""
        requests_before, cpu_before = self.apiserver_requests(), self.cpu_by_process()
        seconds = run()
        requests = measure.difference(self.apiserver_requests(), requests_before)
        writes = sum(v for k, v in requests.items() if k.split()[0] in WRITES)
        cpu = measure.difference(self.cpu_by_process(), cpu_before)
        figures = {
            "seconds": round(seconds, 2),
            "jobs_per_second": round(n / seconds, 1),
            "cpu_ms_per_job": round(1000 * sum(cpu.values()) / n, 1),
            "cpu_ms_per_job_by_process": {k: round(1000 * v / n, 1) for k, v in sorted(cpu.items())},
            "apiserver_writes_per_job": round(writes / n, 2),
            "apiserver_requests_per_job": {k: round(v / n, 2) for k, v in sorted(requests.items())},
        }
        print(
            f"  {name}: {n} in {seconds:.1f} s = {n / seconds:.1f}/s, {writes / n:.1f} apiserver writes "
            f"and {figures['cpu_ms_per_job']} ms of CPU per job",
            flush=True,
        )
        return figures

    def _run_jobgate(self, n: int, *, tenant: str) -> float:
        started = time.monotonic()
        measure.in_parallel(
            n, lambda i: _submit(self.stored, tenant, f"e2e-{i}", FAKE_DURATION), clients=CLIENTS
        )
        _wait_all_succeeded(self.stored, tenant, n)
        return time.monotonic() - started

    def _run_batch_jobs(self, n: int, *, round: int) -> float:
        namespace = self._namespace(f"bench-batch-{round}")
        started = time.monotonic()

        def create(i: int) -> None:
            body: Any = {  # the client takes the JSON form too
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": f"job-{i}"},
                "spec": {"backoffLimit": 0, "template": POD_TEMPLATE},
            }
            self.batch.create_namespaced_job(namespace, body)

        measure.in_parallel(n, create, clients=CLIENTS)

        def done() -> bool:
            jobs = self.batch.list_namespaced_job(namespace, resource_version="0").items
            return sum(1 for job in jobs if job.status and job.status.succeeded) >= n

        measure.wait(f"{n} batch/v1 Jobs", done)
        return time.monotonic() - started

    def _run_bare_pods(self, n: int) -> float:
        namespace = self._namespace("bench-pods")
        started = time.monotonic()

        def create(i: int) -> None:
            body: Any = {**POD_TEMPLATE, "metadata": {**POD_TEMPLATE["metadata"], "name": f"pod-{i}"}}
            self.core.create_namespaced_pod(namespace, body)

        measure.in_parallel(n, create, clients=CLIENTS)

        def done() -> bool:
            pods = self.core.list_namespaced_pod(namespace, resource_version="0").items
            return sum(1 for pod in pods if pod.status and pod.status.phase == "Succeeded") >= n

        measure.wait(f"{n} bare pods", done)
        return time.monotonic() - started

    def _namespace(self, name: str) -> str:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        # Pods are refused until the namespace's default ServiceAccount exists.
        measure.wait(
            f"{name}'s service account",
            lambda: _exists(lambda: self.core.read_namespaced_service_account("default", name)),
        )
        return name

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds used so far by each process of the cluster (control plane, kwok, jobgate)."""
        return {
            name: measure.cpu_seconds(process.pid)
            for name, process in self.cluster.processes.items()
            if process.pid is not None and process.alive()
        }

    def apiserver_requests(self) -> dict[str, float]:
        """apiserver_request_total so far, by `<verb> <resource>[/<subresource>]`."""
        text = self.cluster.api.get("/metrics", raw=True)
        requests: dict[str, float] = collections.defaultdict(float)
        for family in text_string_to_metric_families(text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name.endswith("_total"):
                    subresource = f"/{labels['subresource']}" if labels.get("subresource") else ""
                    requests[f"{labels.get('verb')} {labels.get('resource', '')}{subresource}"] += (
                        sample.value
                    )
        return dict(requests)

    # -- 2. submit latency --------------------------------------------------------------------

    def latency(self) -> None:
        figures: dict[str, Any] = {}
        for mode in self.jobgate.api_ports:
            for clients in CONCURRENCY:
                requests = max(self.size.requests, clients)
                prefix = f"lat-{mode}-{clients}"

                def submit(i: int, url: str = self.jobgate.url(mode), prefix: str = prefix) -> None:
                    _submit(url, "bench-latency", f"{prefix}-{i}", FAKE_DURATION)

                seconds = measure.in_parallel(requests, submit, clients=clients)
                figures[f"{mode}_{clients}"] = measure.percentiles(seconds) | {"requests": requests}
                print(f"  submit ({mode}, {clients} clients): {figures[f'{mode}_{clients}']}", flush=True)
        # The floor of the stored mode: the same Job created straight at the apiserver.
        namespace = self._namespace("bench-direct")
        jobs = client.CustomObjectsApi(self.kube)
        for clients in CONCURRENCY:
            requests = max(self.size.requests, clients)

            def create(i: int, clients: int = clients) -> None:
                body = {
                    "apiVersion": models.API_VERSION,
                    "kind": models.KIND,
                    "metadata": {"name": f"direct-{clients}-{i}"},
                    "spec": JOB_SPEC,
                }
                jobs.create_namespaced_custom_object(
                    models.GROUP, models.VERSION, namespace, models.PLURAL, body
                )

            seconds = measure.in_parallel(requests, create, clients=clients)
            figures[f"apiserver_direct_{clients}"] = measure.percentiles(seconds) | {"requests": requests}
            print(f"  create at the apiserver ({clients} clients): {figures[f'apiserver_direct_{clients}']}")
        self.figures["submit_latency_ms"] = figures

    # -- 3. scale ---------------------------------------------------------------------------

    def scale(self) -> None:
        tenant = "bench-scale"
        existing = self._job_count()
        # Up to the scale, and at least half of it here, so that the memory's growth over
        # the second half is measured even when the earlier phases ran that many jobs.
        more = max(self.size.scale - existing, self.size.scale // 2)
        started = time.monotonic()
        # In batches: kwok finishes pods at its own pace, and thousands of pods submitted at
        # once would wait for CPU on the nodes past their scheduling timeout.
        operator = self.pid("jobgate-operator")
        # The operator's memory (it has handled every job so far) as jobs pass through it:
        # it should stop growing with them. Taken by jobs handled, at about a tenth, half
        # and all of them.
        total = existing + more
        checkpoints = sorted({total // 10, total // 2, total})
        rss: dict[str, float] = {}
        batch = min(SCALE_BATCH, self.size.scale // 10)
        handled = existing
        for first in range(0, more, batch):
            count = min(batch, more - first)

            def submit(i: int, first: int = first) -> None:
                _submit(self.stored, tenant, f"scale-{first + i}", SHORT_DURATION)

            if handled >= checkpoints[0]:
                rss[str(handled)] = round(measure.rss_mb(operator), 1)
                checkpoints = [point for point in checkpoints if point > handled]
            measure.in_parallel(count, submit, clients=CLIENTS)
            _wait_all_succeeded(self.stored, tenant, first + count)
            handled = existing + first + count
        rss[str(handled)] = round(measure.rss_mb(operator), 1)
        filled = time.monotonic() - started
        time.sleep(self.size.settle / 3)  # let the last status writes settle
        cpu_before, at = measure.cpu_seconds(operator), time.monotonic()
        time.sleep(self.size.settle)
        cpu = (measure.cpu_seconds(operator) - cpu_before) / (time.monotonic() - at)
        base = f"{self.stored}/api/jobs"
        page = [measure.timed(lambda: stack.get_json(f"{base}?limit=100", tenant=tenant)) for _ in range(50)]
        whole = [measure.timed(lambda: stack.get_json(base, tenant=tenant)) for _ in range(5)]
        figures: dict[str, Any] = {
            "jobs": self._job_count(),
            "seconds_to_submit_and_finish": round(filled, 1),
            "operator_rss_mb": round(measure.rss_mb(operator), 1),
            "operator_rss_mb_by_jobs": rss,
            "operator_cpu_at_rest_percent": round(100 * cpu, 1),
            "api_rss_mb": round(measure.rss_mb(self.pid("jobgate-api-stored")), 1),
            "get_page_of_100_ms": measure.percentiles(page),
            f"get_all_{self._tenant_count(tenant)}_ms": measure.percentiles(whole),
        }
        figures |= self._restart(tenant)
        self.figures["scale"] = figures
        print(f"  scale: {figures}", flush=True)

    def _restart(self, tenant: str) -> dict[str, float]:
        """Kill the operator, submit a job meanwhile, start it again: how long until that job has run."""
        self.cluster.kill(stack.OPERATOR)
        _submit(self.stored, tenant, "after-restart", SHORT_DURATION)
        started = time.monotonic()
        ready = self.jobgate.start_operator()
        url = f"{self.stored}/api/jobs/app-after-restart"
        measure.wait(
            "the job submitted while the operator was down",
            lambda: stack.get_json(url, tenant=tenant)["status"] == "SUCCEEDED",
        )
        return {
            "operator_restart_ready_s": round(ready, 2),
            "operator_restart_to_job_done_s": round(time.monotonic() - started, 2),
            "operator_rss_mb_after_restart": round(measure.rss_mb(self.pid("jobgate-operator")), 1),
        }

    def _job_count(self) -> int:
        jobs: Any = client.CustomObjectsApi(self.kube).list_cluster_custom_object(
            models.GROUP, models.VERSION, models.PLURAL, resource_version="0"
        )
        return len(jobs["items"])

    def _tenant_count(self, tenant: str) -> int:
        return len(stack.get_json(f"{self.stored}/api/jobs", tenant=tenant))

    # -- profiles -----------------------------------------------------------------------------

    def profiling(self) -> contextlib.AbstractContextManager[None]:
        """py-spy on the operator and the stored-mode API for the duration of the block."""

        @contextlib.contextmanager
        def record() -> Iterator[None]:
            spy = shutil.which("py-spy", path=str(Path(sys.executable).parent))
            if spy is None:  # not installed: no profile, the figures still count
                yield
                return
            runs = {
                name: subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--subprocesses",
                        "--rate",
                        "50",
                        "--pid",
                        str(self.pid(name)),
                        "--output",
                        str(self.out / f"profile-{name}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name in ("jobgate-operator", "jobgate-api-stored")
            }
            try:
                yield
            finally:
                for run in runs.values():
                    run.send_signal(2)  # SIGINT: py-spy writes what it has
                for name, run in runs.items():
                    run.wait(timeout=60)
                    self.figures.setdefault("profile_top_self", {})[name] = _top_frames(
                        self.out / f"profile-{name}.txt"
                    )

        return record()


# -- helpers --------------------------------------------------------------------------------


def _submit(base_url: str, tenant: str, submission_id: str, duration: str) -> None:
    response = stack.submit(
        base_url, tenant=tenant, submission_id=submission_id, metadata={"fake-duration": duration}
    )
    if response.status_code != 200:
        raise RuntimeError(f"submit {submission_id}: {response.status_code} {response.text}")


def _wait_all_succeeded(base_url: str, tenant: str, n: int) -> None:
    """Until the tenant's `n` jobs have ended; a job that did not succeed spoils the figure: raise."""
    url = f"{base_url}/api/jobs?status=SUCCEEDED,FAILED,STOPPED"
    ended: list[dict[str, Any]] = []

    def all_ended() -> bool:
        ended[:] = stack.get_json(url, tenant=tenant)
        return len(ended) >= n

    measure.wait(f"{n} jobgate jobs of {tenant}", all_ended)
    failed = [job for job in ended if job["status"] != "SUCCEEDED"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {tenant}'s jobs did not succeed, e.g. {failed[0]['message']}")


def _exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except client.ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def _top_frames(raw_profile: Path, count: int = 12) -> list[str]:
    """The functions most often on top of the stack ("self" time), from py-spy's collapsed stacks."""
    if not raw_profile.exists():
        return []
    totals: collections.Counter[str] = collections.Counter()
    for line in raw_profile.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if stack and samples.isdigit():
            totals[stack.split(";")[-1]] += int(samples)
    whole = sum(totals.values()) or 1
    return [f"{100 * n / whole:5.1f}% {frame}" for frame, n in totals.most_common(count)]


def _versions(cluster: LocalCluster) -> dict[str, str]:
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "jobgate": importlib.metadata.version("jobgate"),
        "kubernetes": server,
        "kopf": importlib.metadata.version("kopf"),
        "python": platform.python_version(),
        "machine": f"{os.cpu_count()} CPUs, {memory_kb / 1024 / 1024:.0f} GiB",
    }


def _chart(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    runs = ["jobgate", "job_controller", "ceiling"]
    rates = [figures["throughput"][run]["jobs_per_second"] for run in runs]
    left.bar(["jobgate", "batch/v1 Job\ncontroller", "bare pods\n(ceiling)"], rates, color=["C0", "C1", "C7"])
    left.set_ylabel("jobs per second (end to end)")
    left.set_title(f"{figures['throughput']['jobs']} jobs of {FAKE_DURATION} on kwok nodes")
    latency = figures["submit_latency_ms"]
    labels = list(latency)
    for offset, cut in enumerate(("p50", "p95", "p99")):
        right.bar(
            [i + offset * 0.27 for i in range(len(labels))],
            [latency[k][cut] for k in labels],
            0.27,
            label=cut,
        )
    right.set_xticks(
        [i + 0.27 for i in range(len(labels))],
        [k.replace("apiserver_direct", "direct").replace("_", "\n") for k in labels],
        fontsize=8,
    )
    right.set_xlabel("submit mode (direct: the same Job created at the apiserver), concurrent clients")
    right.set_yscale("log")
    right.set_ylabel("POST /api/jobs latency (ms)")
    right.set_title("submit latency by mode and concurrency")
    right.legend()
    fig.suptitle(
        f"jobgate {figures['versions']['jobgate']}, Kubernetes {figures['versions']['kubernetes']}, "
        f"{figures['versions']['machine']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _verdicts(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    throughput, latency, scale = figures["throughput"], figures["submit_latency_ms"], figures["scale"]
    by_jobs = {int(jobs): mb for jobs, mb in scale["operator_rss_mb_by_jobs"].items()}
    handled = max(by_jobs, default=0)
    half = min(by_jobs, key=lambda jobs: abs(jobs - handled / 2), default=0)
    measured = {
        "jobgate_vs_job_controller": throughput["jobgate_vs_job_controller"],
        "jobgate_vs_ceiling": throughput["jobgate_vs_ceiling"],
        "apiserver_writes_per_job": throughput["jobgate"]["apiserver_writes_per_job"],
        "cpu_per_job_vs_job_controller": throughput["cpu_per_job_vs_job_controller"],
        "operator_cpu_ms_per_job": throughput["jobgate"]["cpu_ms_per_job_by_process"].get("jobgate-operator"),
        "operator_rss_mb_at_scale": scale["operator_rss_mb"],
        "operator_rss_growth_half_to_all": round(by_jobs[handled] / by_jobs[half] - 1, 3)
        if half != handled
        else None,
        **{
            f"stored_submit_p99_vs_apiserver_at_{n}": round(
                latency[f"stored_{n}"]["p99"] / latency[f"apiserver_direct_{n}"]["p99"], 2
            )
            for n in CONCURRENCY
        },
    }
    verdicts = {}
    for name, value in measured.items():
        target, bound = TARGETS[name]
        met = value is not None and (value >= target if bound == "min" else value <= target)
        verdicts[name] = {"measured": value, "target": target, "bound": bound, "met": met}
    return verdicts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="small numbers, for CI (results in results/quick/)"
    )
    parser.add_argument("--jobs", type=int, help="jobs per throughput run (default 2000; quick 100)")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    if args.jobs:
        size = dataclasses.replace(size, jobs=args.jobs)
    out = measure.results_dir(quick=args.quick)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="jobgate-bench-") as state:
        cluster = LocalCluster(
            Path(state),
            extra_nodes=EXTRA_NODES,
            client_qps=CLIENT_QPS,
            extra_args={"kube-controller-manager": [f"--concurrent-job-syncs={WORKERS}"]},
        )
        with cluster:
            bench = Bench(cluster, size, out)
            bench.jobgate.start()
            bench.figures["versions"] = _versions(cluster)
            bench.figures["when"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            print("throughput (jobgate, batch/v1 Job controller, bare pods) ...", flush=True)
            bench.throughput()
            print("submit latency ...", flush=True)
            bench.latency()
            print(f"scale ({size.scale} jobs) ...", flush=True)
            bench.scale()
            figures = bench.figures
    figures["targets"] = _verdicts(figures)
    figures["run_seconds"] = round(time.monotonic() - began, 1)
    (out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    _chart(figures, out / "bench.png")
    print(f"\nwrote {out / 'bench.json'} and {out / 'bench.png'} in {figures['run_seconds']:.0f} s")
    measure.print_verdicts(figures["targets"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
