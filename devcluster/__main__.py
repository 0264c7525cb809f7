"""`python -m jobgate.devcluster up|down --state-dir DIR`: run the local cluster in the
foreground (Ctrl-C or SIGTERM stops it), or stop one that runs from another shell."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import FrameType

import yaml

from . import identities, objectstore, pools, realnode
from .cluster import REPO_ROOT, ClusterError, LocalCluster
from .kubeapi import ApiError
from .procs import start_ticks

API_HEALTHZ = "http://127.0.0.1:8265/healthz"
CRD_DIR = REPO_ROOT / "crds"
# (process name, module run with `python -m`)
JOBGATE_PROCESSES = ((identities.OPERATOR, "jobgate.operator"), (identities.API, "jobgate.api"))


class _StopRequestedError(Exception):
    """Raised from the SIGTERM handler so `up` unwinds and stops the cluster."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _StopRequestedError


def _module_runnable(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def _install_crds(cluster: LocalCluster) -> None:
    """Create the checked-in CRDs (the operator needs its Job resource to exist)."""
    api = cluster.api
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            try:
                api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", doc)
            except ApiError as err:
                if err.status != 409:
                    raise
            names.append(doc["metadata"]["name"])
    deadline = time.monotonic() + 30
    for name in names:
        while True:
            crd = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            status = crd.get("status") or {}
            conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
            if conditions.get("Established") == "True":
                break
            if time.monotonic() > deadline:
                raise ClusterError(f"CRD {name} did not become Established")
            time.sleep(0.1)
        print(f"installed CRD {name}")


def _healthz_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _start_jobgate(cluster: LocalCluster) -> None:
    env = {
        **_dev_env(cluster),
        "PYTHONUNBUFFERED": "1",
        # Keep the working directory off sys.path: run from the repo root, the folder
        # operator/ would otherwise shadow the standard library's `operator` module.
        "PYTHONSAFEPATH": "1",
    }
    _install_crds(cluster)
    # As deploy/'s ServiceAccounts, with its roles: never as the cluster's admin.
    accounts = identities.issue(cluster, cluster.state_dir / "identities")
    kubeconfigs = {identities.OPERATOR: accounts.operator, identities.API: accounts.api}
    print(
        f"operator and API run as the ServiceAccounts {identities.SYSTEM_NAMESPACE}/{identities.OPERATOR} "
        f"and {identities.API} (deploy/rbac), kubeconfigs in {cluster.state_dir / 'identities'}"
    )
    store = objectstore.start(cluster)
    env |= {name: value for name, value in store.env().items() if not os.environ.get(name)}
    print(
        f"object store (SeaweedFS, S3) on {store.endpoint}, bucket {store.bucket}, credentials in "
        f"{cluster.state_dir / objectstore.NAME / 's3.json'} (log {cluster.log_path(store.name)})"
    )
    if cluster.real_node is not None:
        port = urllib.parse.urlsplit(API_HEALTHZ).port or 80
        cluster.spawn("jobgate-api-relay", realnode.relay_argv(port))
        print(f"pods on the real node reach the API at http://{realnode.NODE_IP}:{port}")
    started = []
    for name, module in JOBGATE_PROCESSES:
        if not _module_runnable(module):
            print(f"skipping {name}: module {module} has no __main__ yet")
            continue
        cluster.spawn(name, [sys.executable, "-m", module], env={**env, "KUBECONFIG": str(kubeconfigs[name])})
        started.append(name)
        print(f"started {name} (log {cluster.log_path(name)})")
    if "jobgate-api" not in started:
        return
    deadline = time.monotonic() + 60
    while not _healthz_ok(API_HEALTHZ):
        if not cluster.alive("jobgate-api"):
            tail = cluster.log_tail("jobgate-api")
            raise ClusterError(f"jobgate-api exited; last lines of its log:\n{tail}")
        if time.monotonic() > deadline:
            raise ClusterError(f"jobgate-api did not answer {API_HEALTHZ} within 60s")
        time.sleep(0.2)
    print(f"jobgate API ready on {API_HEALTHZ.removesuffix('/healthz')}")


def _dev_env(cluster: LocalCluster) -> dict[str, str]:
    """jobgate's settings for the dev cluster, where the shell's own values win.

    Uploaded packages (Ray's `--working-dir`) are kept in the state dir and fetched by the
    jobs' init containers from the API; the seed's `file://` example is allowed. With a real
    node, jobs default to the image it has, and fetch packages through the relay on the
    node's address (pods there cannot reach the host's loopback).
    """
    port = urllib.parse.urlsplit(API_HEALTHZ).port
    defaults = {
        "JOBGATE_PACKAGE_DIR": str(cluster.state_dir / "packages"),
        "JOBGATE_PACKAGE_BASE_URL": f"http://127.0.0.1:{port}",
        "JOBGATE_FILE_URI_ROOT": "/usr1/deploy",
        # The tainted GPU and NPU pools' tolerations, for the jobs there.
        "JOBGATE_POD_PROFILES": json.dumps(pools.pod_profiles(pools.load_pools(cluster.pools_file))),
    }
    if cluster.real_node is not None:
        defaults["JOBGATE_IMAGE"] = cluster.real_node.job_image
        defaults["JOBGATE_PACKAGE_BASE_URL"] = f"http://{realnode.NODE_IP}:{port}"
    return {name: value for name, value in defaults.items() if not os.environ.get(name)}


def _up(state_dir: Path, *, with_jobgate: bool, real_node: bool = False) -> int:
    cluster = LocalCluster(state_dir, real_node=real_node)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cluster.start()  # stops whatever it started if it fails or is interrupted
    except ClusterError as err:
        print(f"devcluster: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, _StopRequestedError):
        return 130
    try:
        cluster.record_supervisor(os.getpid())
        kubectl = cluster.bin_dir / "kubectl"
        print(
            f"cluster ready in {cluster.start_seconds:.1f}s (warm start): {cluster.server}\n"
            f"  kubeconfig: {cluster.kubeconfig}\n"
            f"  kubectl:    {kubectl} --kubeconfig {cluster.kubeconfig} get nodes\n"
            f"  logs:       {cluster.state_dir / 'logs'}"
        )
        if cluster.real_node is not None:
            print(
                f'  real node:  {realnode.NODE_NAME} (nodeSelector {realnode.POOL_SELECTOR_LABEL}: "true"), '
                f"image {cluster.real_node.job_image} (imagePullPolicy IfNotPresent or Never)"
            )
        if with_jobgate:
            _start_jobgate(cluster)
        print("stop with Ctrl-C or `make stop`", flush=True)
        reported: set[str] = set()
        while True:
            # Report crashes but keep going: a fault test may be killing things on purpose.
            for name in cluster.processes:
                if name not in reported and not cluster.alive(name):
                    reported.add(name)
                    print(f"devcluster: {name} is not running; see {cluster.log_path(name)}", file=sys.stderr)
            time.sleep(1)
    except (KeyboardInterrupt, _StopRequestedError):
        return 0
    except ClusterError as err:
        print(f"devcluster: {err}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C or SIGTERM must not cut the stop short.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping ...", flush=True)
        cluster.stop()
        print("stopped", flush=True)


def _down(state_dir: Path) -> int:
    try:
        cluster = LocalCluster.attach(state_dir)
    except ClusterError as err:
        print(f"devcluster: {err}; nothing to stop")
        return 0
    sup = cluster.supervisor or {}
    pid, ticks = sup.get("pid"), sup.get("ticks")
    if pid is not None and ticks is not None and start_ticks(pid) == ticks:
        # Let the `up` process stop its cluster itself, then check it really did.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while start_ticks(pid) == ticks and time.monotonic() < deadline:
            time.sleep(0.1)
    alive = cluster.running()
    try:
        cluster.stop()
    except ClusterError as err:
        print(f"devcluster: {err}", file=sys.stderr)
        return 1
    print(f"stopped the cluster in {cluster.state_dir}" + (f" ({', '.join(alive)})" if alive else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobgate.devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster in the foreground")
    up.add_argument("--state-dir", type=Path, required=True)
    up.add_argument(
        "--with-jobgate", action="store_true", help="also run jobgate's operator and API (127.0.0.1:8265)"
    )
    up.add_argument(
        "--real-node",
        action="store_true",
        help="also run one real node (kubelet + containerd) in pool `real`; needs root (see realnode.py)",
    )
    down = sub.add_parser("down", help="stop the cluster running in --state-dir")
    down.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args.state_dir, with_jobgate=args.with_jobgate, real_node=args.real_node)
    return _down(args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
