"""The local control plane: etcd, kube-apiserver, kube-scheduler, kube-controller-manager
and kwok, built from pinned Go modules (hack/cluster/build.sh) and run as plain processes
bound to 127.0.0.1, with fake node pools whose pods kwok drives through their lifecycle.

`make dev`, the pytest fixtures, benchmarks and fault tests all start it through
`LocalCluster`:

    cluster = LocalCluster(Path(".state/dev"))
    cluster.start()                   # fresh cluster; returns when nodes are Ready
    ... cluster.kubeconfig, cluster.server, cluster.admin_token ...
    cluster.kill("etcd"); cluster.restart("etcd")   # crash + recovery, same data dir
    cluster.stop()                    # nothing left running

Everything lives in the state directory: key material, kubeconfigs, etcd's data, logs
(`logs/<component>.log`) and `cluster.json`, which records ports and pids so that another
process (`python -m jobgate.devcluster down`, or tests reusing a cluster) can find it.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from . import kwokconfig, pools, procs, realnode
from .kubeapi import ApiError, KubeApi, probe
from .pki import write_pki

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "hack" / "cluster" / "build.sh"

ETCD = "etcd"
APISERVER = "kube-apiserver"
CONTROLLER_MANAGER = "kube-controller-manager"
SCHEDULER = "kube-scheduler"
KWOK = "kwok"
# Start order; stop goes in reverse (processes added later, e.g. jobgate's, stop first).
COMPONENTS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KWOK)

# Both ranges are loopback on purpose: nothing here routes cluster or pod IPs, and should
# anything ever try to connect to one, it must not leave the machine.
SERVICE_CIDR = "127.96.0.0/16"
SERVICE_IP = "127.96.0.1"  # the `kubernetes` service's ClusterIP, first of the range
POD_CIDR = "127.128.0.0/10"

STATE_FILE = "cluster.json"
# What start() wipes from a state directory before a fresh cluster (nothing else is touched).
_STATE_ENTRIES = ("etcd", "pki", "config", "kwok", "logs", "kubeconfig", STATE_FILE)


class ClusterError(RuntimeError):
    """The cluster could not be started, reached or stopped; the message says which part."""


def find_bin_dir() -> Path:
    """The directory with the cluster's binaries: $JOBGATE_BIN_DIR, else build.sh's answer.

    build.sh reuses its cache (instant) and otherwise builds from the pinned Go modules,
    printing progress on stderr (left attached to ours) and the directory last on stdout.
    """
    return procs.built(BUILD_SCRIPT, override="JOBGATE_BIN_DIR", error=ClusterError)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """Distinct ports free on 127.0.0.1, below the kernel's ephemeral range.

    Below it, because a component restarted after a crash must get its port back: an
    ephemeral port can meanwhile have become the local end of some client connection
    (say kwok's to the apiserver), and then the restart would fail with EADDRINUSE.
    """
    high = _ephemeral_low()
    low = 20000 if high > 21000 else 1025
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for port in rng.sample(range(low, high), min(200, high - low)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)  # held until all are chosen, so they are distinct
            if len(socks) == count:
                return [s.getsockname()[1] for s in socks]
        raise ClusterError(f"found no {count} free ports on 127.0.0.1 in [{low}, {high})")
    finally:
        for s in socks:
            s.close()


PORT_RELEASE_TIMEOUT = 30.0  # seconds a restarted component waits for its port


def _bindable(port: int) -> bool:
    """Whether a listener could take the port on 127.0.0.1 now (as Go's do: SO_REUSEADDR,
    so connections of an earlier listener in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_holder(port: int) -> str:
    """Who listens on the port, as `ss` says it (for the error; best effort)."""
    try:
        said = subprocess.run(
            ["ss", "-Htanp", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "ss could not say who holds it"
    return said or "ss shows no socket on it"


@dataclass
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(*free_ports(6))


def _kubeconfig(*, server: str, ca_file: Path, user: str, token: str) -> str:
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "jobgate-dev", "cluster": {"server": server, "certificate-authority-data": ca_data}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "jobgate-dev", "context": {"cluster": "jobgate-dev", "user": user}}],
            "current-context": "jobgate-dev",
        },
        sort_keys=False,
    )


def _node_problems(node: Mapping[str, Any], expected_taints: int) -> str | None:
    """Why a node cannot take pods yet (None if it can)."""
    conditions = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
    if conditions.get("Ready") != "True":
        return "not Ready"
    # New nodes carry node.kubernetes.io/not-ready until the node-lifecycle controller
    # sees them Ready; the scheduler would refuse them while it is there.
    if len((node.get("spec") or {}).get("taints") or []) > expected_taints:
        return "still tainted"
    return None


class LocalCluster:
    """A local Kubernetes control plane with fake nodes, owned through a state directory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        pools_file: Path | None = None,
        extra_nodes: Mapping[str, int] | None = None,
        client_qps: float | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        bin_dir: Path | None = None,
        ready_timeout: float = 120.0,
        real_node: bool = False,
    ) -> None:
        """Describe a cluster; nothing runs until `start()`.

        pools_file:   node pools (default devcluster/pools.yaml).
        extra_nodes:  more nodes per pool, e.g. {"cpu-a": 500} for benchmarks.
        client_qps:   QPS of the scheduler's and controller-manager's API clients (burst
                      is twice that); None keeps their defaults (50 and 20).
        extra_args:   more command-line flags per component, e.g.
                      {"kube-apiserver": ["--max-requests-inflight=2000"]}.
        bin_dir:      the binaries (default: $JOBGATE_BIN_DIR, else build.sh's output).
        real_node:    also run one real node (kubelet + containerd, see realnode.py) in pool
                      `real` (label real="true"); needs root and this machine's kernel.
        """
        self.state_dir = state_dir.resolve()
        self.pools_file = pools_file
        self.extra_nodes = dict(extra_nodes or {})
        self.client_qps = client_qps
        self.extra_args = {k: list(v) for k, v in (extra_args or {}).items()}
        unknown = set(self.extra_args) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"extra_args for unknown components: {sorted(unknown)}")
        self._bin_dir = bin_dir
        self.ready_timeout = ready_timeout
        # The opt-in real node (realnode.py): set when started, or rebuilt by attach().
        self.real_node_enabled = real_node
        self.real_node: realnode.RealNode | None = None
        if real_node:
            apiserver_args = self.extra_args.setdefault(APISERVER, [])
            apiserver_args[:0] = realnode.apiserver_args(self.state_dir)
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.ca_file = self.state_dir / "pki" / "ca.crt"
        self.ports: Ports | None = None
        self.admin_token = ""
        self.start_seconds: float | None = None
        self.supervisor: dict[str, int | None] | None = None
        self.processes: dict[str, procs.ManagedProcess] = {}
        self._node_names: list[str] = []
        self._expected_taints: dict[str, int] = {}

    # ----- public API ---------------------------------------------------------------

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def server(self) -> str:
        if self.ports is None:
            raise ClusterError("the cluster has not been started")
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def api(self) -> KubeApi:
        """A small admin JSON client (see kubeapi.py); tests use the `kubernetes` client."""
        return KubeApi(server=self.server, token=self.admin_token, ca_file=self.ca_file)

    @property
    def node_names(self) -> list[str]:
        return list(self._node_names)

    def start(self) -> None:
        """Start a fresh cluster (wiping the previous one's state) and wait until it serves.

        Returns when the apiserver is ready, the scheduler, controller-manager and kwok
        are healthy, every fake node is Ready without taints, and namespace `default` has
        its service account. On failure everything started is stopped again and a
        ClusterError names the component and shows the end of its log.
        """
        self._refuse_if_running()
        for entry in _STATE_ENTRIES:
            path = self.state_dir / entry
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        bin_dir = self.bin_dir  # may build, which is not part of the warm start time
        node = realnode.RealNode(self) if self.real_node_enabled else None
        if node is not None:
            try:
                node.prepare()  # builds or finds the node's binaries and images, likewise
            except realnode.RealNodeError as err:
                raise ClusterError(f"real node: {err}") from err
        missing = [c for c in (*COMPONENTS, "kubectl") if not (bin_dir / c).exists()]
        if missing:
            raise ClusterError(f"{bin_dir} lacks {missing}: run `bash hack/cluster/build.sh`")
        t0 = time.monotonic()
        self.ports = Ports.pick()
        self._write_files()
        try:
            self._spawn(ETCD)
            self._wait_healthy(ETCD)
            self._spawn(APISERVER)
            self._wait_healthy(APISERVER)
            for name in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
                self._spawn(name)
            self._create_nodes()
            for name in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
                self._wait_healthy(name)
            self._wait_nodes_ready()
            self._wait(
                "kube-controller-manager to create the default service account",
                lambda: self._exists("/api/v1/namespaces/default/serviceaccounts/default"),
                component=CONTROLLER_MANAGER,
            )
            if node is not None:
                self.real_node = node
                try:
                    node.start()
                except realnode.RealNodeError as err:
                    raise ClusterError(f"real node: {err}") from err
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        self._save_state()

    def stop(self, *, grace: float = 10.0) -> None:
        """Stop every process (SIGTERM, then SIGKILL after `grace` s), newest first."""
        for name in reversed(list(self.processes)):
            self.processes[name].stop(grace=grace)
        leftovers = [n for n, p in self.processes.items() if p.alive()]
        if self.real_node is not None and not leftovers:
            leftovers += self.real_node.teardown()  # its containers, cgroups, bridge
        if self.ports is not None:  # only the state of a cluster this handle started or attached
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if leftovers:
            raise ClusterError(f"could not stop {leftovers}")

    def kill(self, name: str) -> None:
        """SIGKILL one process (and its process group), as a crash would."""
        self._process(name).kill()

    def restart(self, name: str, *, wait: bool = True) -> None:
        """Start a component again with the same flags, ports and data directory.

        A running one is stopped first (SIGTERM). With `wait`, return once it is healthy
        (for the apiserver: /readyz, which also needs etcd up).
        """
        proc = self._process(name)
        if proc.alive():
            proc.stop()
        self._await_ports_free(name)
        proc.start()
        self._save_state()
        if wait:
            # Only this process must stay up meanwhile: a fault test may have others down.
            self._wait_healthy(name, watch=[name])

    def alive(self, name: str) -> bool:
        return self._process(name).alive()

    def log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def log_tail(self, name: str, lines: int = 30) -> str:
        """The last lines of a process's log since it was last (re)started."""
        return procs.tail(self.log_path(name), lines)

    def spawn(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> procs.ManagedProcess:
        """Run another process as part of the cluster (logged, recorded, stopped with it),
        e.g. jobgate's operator and API with KUBECONFIG pointing here."""
        if name in self.processes and self.processes[name].alive():
            raise ClusterError(f"{name} is already running")
        proc = procs.ManagedProcess(name=name, argv=argv, log_path=self.log_path(name), env=env)
        self.processes[name] = proc
        proc.start()
        self._save_state()
        return proc

    def write_kubeconfig(self, path: Path, *, user: str, token: str) -> Path:
        """A kubeconfig for this cluster acting as `user` with a bearer `token` (e.g. a
        ServiceAccount's, from the TokenRequest API), readable by its owner only."""
        path.touch(mode=0o600)  # the token is never readable by others, not even for a moment
        path.chmod(0o600)  # (touch keeps the mode of a file that was there)
        path.write_text(_kubeconfig(server=self.server, ca_file=self.ca_file, user=user, token=token))
        return path

    def kubectl(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env=procs.child_env(),
        )

    def record_supervisor(self, pid: int) -> None:
        """Note the process that supervises this cluster in the foreground (`up`), so that
        `down` asks it to stop everything instead of pulling processes from under it."""
        self.supervisor = {"pid": pid, "ticks": procs.start_ticks(pid)}
        self._save_state()

    @classmethod
    def attach(cls, state_dir: Path) -> LocalCluster:
        """A handle on a cluster another process started in `state_dir` (or whose
        kubeconfig is `state_dir`). Its processes can be killed, restarted and stopped."""
        state_dir = state_dir.resolve()
        if state_dir.is_file():
            state_dir = state_dir.parent
        state_file = state_dir / STATE_FILE
        try:
            state = json.loads(state_file.read_text())
        except FileNotFoundError:
            raise ClusterError(f"no cluster is recorded in {state_dir} (no {STATE_FILE})") from None
        cluster = cls(state_dir, bin_dir=Path(state["bin_dir"]))
        cluster.ports = Ports(**state["ports"])
        cluster.admin_token = state["admin_token"]
        cluster.start_seconds = state.get("start_seconds")
        cluster.supervisor = state.get("supervisor")
        cluster._node_names = state.get("node_names", [])
        cluster._expected_taints = state.get("expected_taints", {})
        cluster.real_node = realnode.from_record(cluster, state.get("real_node"))
        cluster.real_node_enabled = cluster.real_node is not None
        cluster.processes = {n: procs.ManagedProcess.adopt(n, r) for n, r in state["processes"].items()}
        return cluster

    def running(self) -> list[str]:
        """Names of this cluster's processes that are alive."""
        return [n for n, p in self.processes.items() if p.alive()]

    def ready(self) -> bool:
        return self.ports is not None and probe(
            f"{self.server}/readyz", ca_file=self.ca_file, token=self.admin_token
        )

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- files ----------------------------------------------------------------------

    def _write_files(self) -> None:
        assert self.ports is not None
        write_pki(self.state_dir / "pki", service_ip=SERVICE_IP)
        config = self.state_dir / "config"
        config.mkdir(parents=True)
        self.admin_token = secrets.token_urlsafe(32)
        # One identity per component (all system:masters: this is a throwaway dev cluster,
        # the distinct names only make audit and managedFields readable).
        identities = {
            "admin": self.admin_token,
            "system:kube-controller-manager": secrets.token_urlsafe(32),
            "system:kube-scheduler": secrets.token_urlsafe(32),
            "kwok-controller": secrets.token_urlsafe(32),
        }
        (config / "tokens.csv").write_text(
            "".join(f'{token},{user},{user},"system:masters"\n' for user, token in identities.items())
        )
        (config / "tokens.csv").chmod(0o600)
        for user, token in identities.items():
            path = self.kubeconfig if user == "admin" else config / f"{user.split(':')[-1]}.kubeconfig"
            self.write_kubeconfig(path, user=user, token=token)

        client: dict[str, Any] = {"kubeconfig": str(config / "kube-scheduler.kubeconfig")}
        if self.client_qps is not None:
            client |= {"qps": self.client_qps, "burst": int(self.client_qps * 2)}
        (config / "scheduler.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": client,
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        log_file = self.state_dir / "kwok" / "fake-container.log"
        kwokconfig.write_fake_log(log_file)
        kwokconfig.write_config(config / "kwok.yaml", log_file=log_file)

    def _argv(self, name: str) -> list[str]:
        """The full command line of a component (its extra_args last, so they win)."""
        assert self.ports is not None
        p, s = self.ports, self.state_dir
        pki, config = s / "pki", s / "config"
        serving = [f"--tls-cert-file={pki / 'serving.crt'}", f"--tls-private-key-file={pki / 'serving.key'}"]
        qps = (
            []
            if self.client_qps is None
            else [
                f"--kube-api-qps={self.client_qps}",
                f"--kube-api-burst={int(self.client_qps * 2)}",
            ]
        )
        peer = f"http://127.0.0.1:{p.etcd_peer}"
        client = f"http://127.0.0.1:{p.etcd_client}"
        argv: dict[str, list[str]] = {
            ETCD: [
                "--name=jobgate-dev",
                f"--data-dir={s / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=jobgate-dev={peer}",
                # A throwaway cluster: losing the page cache on a machine crash is fine,
                # and without fsync etcd is not the bottleneck of benchmarks. (A killed
                # etcd process loses nothing: the kernel still holds its writes.)
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            APISERVER: [
                f"--etcd-servers={client}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p.apiserver}",
                f"--cert-dir={pki}",
                *serving,
                f"--client-ca-file={pki / 'ca.crt'}",
                # The front-proxy settings every real cluster has; without them the
                # scheduler and controller-manager log errors about a missing CA bundle.
                f"--requestheader-client-ca-file={pki / 'ca.crt'}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'serving.crt'}",
                f"--proxy-client-key-file={pki / 'serving.key'}",
                f"--token-auth-file={config / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # No real endpoints to advertise: the `kubernetes` service stays empty.
                "--endpoint-reconciler-type=none",
                # Fake nodes have just this address (127.0.0.1, kwok's port).
                "--kubelet-preferred-address-types=InternalIP",
                "--allow-privileged=true",
            ],
            CONTROLLER_MANAGER: [
                f"--kubeconfig={config / 'kube-controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={config / 'kube-controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={config / 'kube-controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.controller_manager}",
                *serving,
                "--leader-elect=false",
                "--controllers=*",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                *qps,
            ],
            SCHEDULER: [
                f"--config={config / 'scheduler.yaml'}",
                f"--authentication-kubeconfig={config / 'kube-scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={config / 'kube-scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.scheduler}",
                *serving,
            ],
            KWOK: [
                f"--kubeconfig={config / 'kwok-controller.kubeconfig'}",
                f"--config={config / 'kwok.yaml'}",
                f"--manage-nodes-with-annotation-selector={pools.KWOK_ANNOTATION}={pools.KWOK_ANNOTATION_VALUE}",
                "--node-lease-duration-seconds=40",
                "--node-ip=127.0.0.1",
                f"--node-port={p.kwok}",
                # Without this kwok would listen on 0.0.0.0:<node-port>.
                f"--server-address=127.0.0.1:{p.kwok}",
                f"--cidr={POD_CIDR}",
                *serving,
            ],
        }
        return [str(self.bin_dir / name), *argv[name], *self.extra_args.get(name, [])]

    def _save_state(self) -> None:
        if self.ports is None:
            return
        state = {
            "bin_dir": str(self.bin_dir),
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": asdict(self.ports),
            "admin_token": self.admin_token,
            "start_seconds": self.start_seconds,
            "supervisor": self.supervisor,
            "node_names": self._node_names,
            "expected_taints": self._expected_taints,
            "real_node": realnode.record_of(self.real_node),
            "processes": {n: p.record() for n, p in self.processes.items()},
        }
        path = self.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)

    # ----- processes and waiting ------------------------------------------------------------

    def _refuse_if_running(self) -> None:
        try:
            other = LocalCluster.attach(self.state_dir)
        except (ClusterError, KeyError, ValueError, TypeError):
            return  # no (readable) record: nothing of ours can be running there
        if alive := other.running():
            raise ClusterError(
                f"a cluster is already running in {self.state_dir} ({', '.join(alive)}); "
                f"use it (kubeconfig {other.kubeconfig}) or stop it first: "
                f"python -m jobgate.devcluster down --state-dir {self.state_dir}"
            )

    def _process(self, name: str) -> procs.ManagedProcess:
        try:
            return self.processes[name]
        except KeyError:
            raise ClusterError(f"no process named {name!r} (have {sorted(self.processes)})") from None

    def _spawn(self, name: str) -> None:
        env = {"KWOK_WORKDIR": str(self.state_dir / "kwok")} if name == KWOK else None
        proc = procs.ManagedProcess(name=name, argv=self._argv(name), log_path=self.log_path(name), env=env)
        self.processes[name] = proc
        proc.start()
        self._save_state()

    def _await_ports_free(self, name: str) -> None:
        """Until the ports a component listens on can be bound again: the same port is its
        address, and a socket its stopped process held can linger a moment (a restart then
        failed with EADDRINUSE once, after etcd's fault, with kwok serving followed logs).
        `ClusterError` naming the port and its holder if it stays taken."""
        deadline = time.monotonic() + PORT_RELEASE_TIMEOUT
        for port in self._ports_of(name):
            while not _bindable(port):
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{name}'s port {port} is still taken {PORT_RELEASE_TIMEOUT:.0f}s after it stopped: "
                        f"{_port_holder(port)}"
                    )
                time.sleep(0.1)

    def _ports_of(self, name: str) -> tuple[int, ...]:
        """The ports a control-plane component listens on (none known for another process)."""
        if self.ports is None:
            return ()
        p = self.ports
        return {
            ETCD: (p.etcd_client, p.etcd_peer),
            APISERVER: (p.apiserver,),
            CONTROLLER_MANAGER: (p.controller_manager,),
            SCHEDULER: (p.scheduler,),
            KWOK: (p.kwok,),
        }.get(name, ())

    def _health_url(self, name: str) -> tuple[str, bool]:
        """(URL answering 200 when the component is healthy, whether it needs TLS + token)."""
        assert self.ports is not None
        p = self.ports
        return {
            ETCD: (f"http://127.0.0.1:{p.etcd_client}/health", False),
            APISERVER: (f"https://127.0.0.1:{p.apiserver}/readyz", True),
            CONTROLLER_MANAGER: (f"https://127.0.0.1:{p.controller_manager}/healthz", True),
            SCHEDULER: (f"https://127.0.0.1:{p.scheduler}/healthz", True),
            KWOK: (f"http://127.0.0.1:{p.kwok}/healthz", False),
        }[name]

    def _wait_healthy(self, name: str, *, watch: Sequence[str] = COMPONENTS) -> None:
        if name not in COMPONENTS:
            return  # spawned extras have no known health check
        url, tls = self._health_url(name)
        ca, token = (self.ca_file, self.admin_token) if tls else (None, None)
        self._wait(
            f"{name} to answer {url}",
            lambda: probe(url, ca_file=ca, token=token),
            component=name,
            watch=watch,
        )

    def _wait(
        self, what: str, check: Callable[[], bool], *, component: str, watch: Sequence[str] = COMPONENTS
    ) -> None:
        """Poll `check` until true; fail fast (with the log's end) if a watched process died."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            for name in watch:
                proc = self.processes.get(name)
                if proc is not None and not proc.alive():
                    raise ClusterError(
                        f"{name} exited (status {proc.exit_code()}) while waiting for {what}; "
                        f"from {self.log_path(name)}:\n{procs.failure_excerpt(self.log_path(name))}"
                    )
            if check():
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out after {self.ready_timeout:.0f}s waiting for {what}; "
                    f"from {self.log_path(component)}:\n{procs.failure_excerpt(self.log_path(component))}"
                )
            time.sleep(0.1)

    def _exists(self, path: str) -> bool:
        try:
            self.api.get(path)
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        except OSError:
            return False
        return True

    # ----- nodes ----------------------------------------------------------------------

    def _create_nodes(self) -> None:
        assert self.ports is not None
        pool_list = pools.load_pools(self.pools_file)
        nodes = pools.all_nodes(pool_list, kubelet_port=self.ports.kwok, extra_nodes=self.extra_nodes)
        self._node_names = [n["metadata"]["name"] for n in nodes]
        self._expected_taints = {n["metadata"]["name"]: len(n["spec"].get("taints", [])) for n in nodes}
        api = self.api
        # Threads only pay off for benchmark-sized pools; a few nodes go one by one.
        with ThreadPoolExecutor(max_workers=8 if len(nodes) > 16 else 1) as pool:
            list(pool.map(lambda n: api.create("/api/v1/nodes", n), nodes))
        self._save_state()

    def _nodes_problems(self) -> dict[str, str]:
        items = self.api.get("/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
        seen = {n["metadata"]["name"]: n for n in items}
        problems: dict[str, str] = {}
        for name in self._node_names:
            node = seen.get(name)
            problem = "missing" if node is None else _node_problems(node, self._expected_taints.get(name, 0))
            if problem:
                problems[name] = problem
        return problems

    def _wait_nodes_ready(self) -> None:
        last: dict[str, str] = {}

        def ready() -> bool:
            nonlocal last
            last = self._nodes_problems()
            return not last

        try:
            self._wait("every fake node to be Ready and untainted", ready, component=KWOK)
        except ClusterError as err:
            sample = dict(list(last.items())[:5])
            raise ClusterError(f"{err}\nnodes not ready yet (first {len(sample)}): {sample}") from None
