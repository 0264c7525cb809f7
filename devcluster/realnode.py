"""One real node for the local control plane: kubelet + containerd + runc + CNI, opt-in.

`LocalCluster(state_dir, real_node=True)` (or `python -m jobgate.devcluster up --real-node`)
starts, beside kwok's fake nodes, a node that really runs containers:

    real-0   labels real="true", jobgate.io/pool=real, type=real   (no kwok annotation,
             so kwok never touches it)

Everything comes from Go modules pinned in hack/node/ (`bash hack/node/build.sh`, cached in
.cache/bin/node-<key>/) and from images built here without any registry (nodeimages.py):
the job image `jobgate.local/job-runtime:py3-<key>` (Debian + python3) and the sandbox image
`registry.k8s.io/pause:3.10`, imported into containerd with `ctr -n k8s.io images import`.
Pods use them with `imagePullPolicy: Never` or `IfNotPresent`.

How the node sits on the host (see README.md for the list of host changes and their undo):

- containerd and kubelet run in a mount namespace of their own (`unshare --mount
  --propagation shared`; the kubelet joins it with `nsenter`). Inside it `/` is shared (what
  kubelet and mount propagation need), and the state directory's `node/host-run` and
  `node/host-log` are bind-mounted over `/run` and `/var/log`, and `/var/lib` is an overlay
  whose writes go to `node/var-lib/upper`, so the shims' sockets, `/var/log/pods`,
  `/var/log/containers`, kubelet's fixed `/var/lib/kubelet/device-plugins` and libcni's
  `/var/lib/cni` never touch the host. Every container mount lives and dies with that
  namespace: the host's mount table is never changed. The machine-wide kernel settings
  kubelet would rewrite (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops, ...) are
  masked there by files holding the values it wants, so the host keeps its own.
- Pods get addresses on the bridge `jgbr0` (10.244.0.0/24) that this module creates with the
  address 10.244.0.1, which is also the node's InternalIP (kubelet refuses loopback). The
  CNI bridge plugin runs with isGateway=false and ipMasq=false and pods get no default route:
  no IP forwarding, no NAT, no iptables rule; pod traffic never leaves this machine.
- Pod cgroups live under `jobgate-realnode/` in every cgroup hierarchy (kubelet's cgroupRoot,
  cgroupfs driver; cgroup v1 is accepted with failCgroupV1=false).
- kubelet authenticates to the apiserver with a client certificate from the dev CA
  (`system:node:real-0` in `system:nodes`, served by the Node authorizer); the apiserver
  reaches the kubelet (logs, exec) with the dev CA's serving certificate, bound to
  `system:kubelet-api-admin`; the kubelet accepts only certificates of that CA or tokens.

Only one real node can run on a machine at a time (the bridge, subnet and cgroup root are
machine-wide); `/run/jobgate-realnode.json` names the state directory that owns them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import nodeimages, procs
from .kubeapi import ApiError

if TYPE_CHECKING:
    from .cluster import LocalCluster

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
NODE_BUILD_SCRIPT: Final = REPO_ROOT / "hack" / "node" / "build.sh"

NODE_NAME: Final = "real-0"
POOL: Final = "real"
POOL_SELECTOR_LABEL: Final = POOL  # what jobgate's poolLabels name: `X-Pool-Label: real`
NODE_LABELS: Final = {POOL_SELECTOR_LABEL: "true", "jobgate.io/pool": POOL, "type": POOL}
BRIDGE: Final = "jgbr0"
POD_SUBNET: Final = "10.244.0.0/24"
NODE_IP: Final = "10.244.0.1"  # the bridge's address: the node's InternalIP and kubelet's
CGROUP_ROOT: Final = "jobgate-realnode"
CGROUP_MOUNT: Final = Path("/sys/fs/cgroup")
OWNER_FILE: Final = Path("/run/jobgate-realnode.json")

# What kubelet's container manager insists on (setupKernelTunables in pkg/kubelet/cm): any
# other value it finds, it writes into the host's kernel. These are machine-wide settings
# (kernel.panic_on_oops=1 with kernel.panic=10 reboots the machine on an oops), so inside
# the node's mount namespace each one that differs is masked by a file holding the value
# kubelet wants: kubelet sees its values, the host keeps its own.
KUBELET_KERNEL_TUNABLES: Final = {
    "vm/overcommit_memory": 1,
    "vm/panic_on_oom": 0,
    "kernel/panic": 10,
    "kernel/panic_on_oops": 1,
    "kernel/keys/root_maxkeys": 1000000,
    "kernel/keys/root_maxbytes": 25000000,
}
_PROC_SYS: Final = Path("/proc/sys")

CONTAINERD: Final = "containerd"
KUBELET: Final = "kubelet"
PROCESSES: Final = (CONTAINERD, KUBELET)
SHIM: Final = "containerd-shim-runc-v2"
BINARIES: Final = ("kubelet", "containerd", SHIM, "ctr", "runc", "bridge", "host-local", "loopback", "pause")
# The apiserver's identity towards kubelets: the dev CA's shared serving certificate (it has
# the clientAuth usage); its CN is what the kubelet authorizes.
APISERVER_KUBELET_CLIENT_CN: Final = "jobgate-devcluster"
_RBAC_BINDING: Final = "jobgate-devcluster:kubelet-api-admin"
# A unix socket path is at most 107 bytes; keep room for containerd's `.ttrpc` suffix.
_MAX_SOCKET_PATH: Final = 100
_VALIDITY: Final = datetime.timedelta(days=30)


class RealNodeError(RuntimeError):
    """The real node could not be set up, started or torn down; the message says why."""


# ----- binaries and machine support --------------------------------------------------------


def find_node_bin_dir() -> Path:
    """The node's binaries: $JOBGATE_NODE_BIN_DIR, else hack/node/build.sh's answer (it
    reuses its cache, or builds from the pinned modules, progress on our stderr)."""
    return procs.built(NODE_BUILD_SCRIPT, override="JOBGATE_NODE_BIN_DIR", error=RealNodeError)


def cgroup_version() -> int:
    """2 on a unified-only host, else 1 (legacy or hybrid: the v1 controllers are used)."""
    return 2 if (CGROUP_MOUNT / "cgroup.controllers").exists() else 1


def _v1_hierarchies() -> list[Path]:
    """Mount points of the cgroup v1 hierarchies (and the hybrid v2 one), from mountinfo."""
    found: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fstype = post.split()[0] if post else ""
        if fstype in ("cgroup", "cgroup2"):
            found.append(Path(pre.split()[4]))
    return found


def unsupported_reason() -> str | None:
    """Why this machine cannot run a real node (the missing feature), or None if it can.

    Checked without changing the host: root, the cgroup controllers kubelet needs, overlayfs,
    seccomp, and (in a throwaway network namespace) veth pairs and bridges.
    """
    if os.geteuid() != 0:
        return "not root: the real node needs root (mounts, cgroups, network devices)"
    filesystems = Path("/proc/filesystems").read_text()
    if "overlay" not in filesystems:
        return "no overlayfs in /proc/filesystems (containerd's overlayfs snapshotter needs it)"
    if "Seccomp:" not in Path("/proc/self/status").read_text():
        return "no seccomp in the kernel (runc applies kubelet's RuntimeDefault profile)"
    if cgroup_version() == 2:
        controllers = (CGROUP_MOUNT / "cgroup.controllers").read_text().split()
        missing = [c for c in ("cpu", "memory", "pids", "cpuset") if c not in controllers]
    else:
        mounted: set[str] = set()
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            _, _, post = line.partition(" - ")
            if post.startswith("cgroup "):  # "cgroup <source> <options, controllers among them>"
                mounted.update(post.split()[-1].split(","))
        missing = [c for c in ("cpu", "cpuacct", "cpuset", "memory", "pids") if c not in mounted]
    if missing:
        return f"cgroup controllers not available: {', '.join(missing)}"
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (bash hack/node/debian-packages.sh run)"
    probe = subprocess.run(
        [
            "unshare",
            "--net",
            "--",
            "sh",
            "-c",
            "ip link add jgprobe0 type veth peer name jgprobe1 && ip link add jgprobe2 type bridge",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create veth pairs or bridges: {probe.stderr.strip() or probe.stdout.strip()}"
    return None


# ----- ownership of the machine-wide pieces --------------------------------------------------


@dataclass(frozen=True)
class NodeRecord:
    """What a later process needs to tear the node down (also kept in cluster.json)."""

    state_dir: str
    bin_dir: str
    # The host's values of KUBELET_KERNEL_TUNABLES before the node: put back on teardown
    # should anything have changed them after all.
    kernel_tunables: dict[str, int]

    @property
    def node_dir(self) -> Path:
        return Path(self.state_dir) / "node"


def _read_owner() -> NodeRecord | None:
    try:
        data = json.loads(OWNER_FILE.read_text())
        return NodeRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def _owner_alive(record: NodeRecord) -> bool:
    """Whether the containerd or kubelet of the cluster in `record.state_dir` still runs."""
    try:
        state = json.loads((Path(record.state_dir) / "cluster.json").read_text())
    except (OSError, ValueError):
        return False
    for name in PROCESSES:
        proc = state.get("processes", {}).get(name)
        if proc and proc.get("pid") and procs.start_ticks(proc["pid"]) == proc.get("ticks"):
            return True
    return False


def _claim(record: NodeRecord) -> None:
    """Become the owner of the bridge, subnet and cgroup root; clean up after a dead owner."""
    previous = _read_owner()
    if previous is not None and previous.state_dir != record.state_dir and _owner_alive(previous):
        raise RealNodeError(
            f"another real node is running on this machine (state {previous.state_dir}); "
            f"stop it first: python -m jobgate.devcluster down --state-dir {previous.state_dir}"
        )
    if previous is not None:
        # A crashed run's leftovers (or our own state dir's): shims, containers, cgroups, bridge.
        if problems := teardown(previous):
            raise RealNodeError(f"could not clean up after the real node of {previous.state_dir}: {problems}")
    elif _bridge_exists():
        raise RealNodeError(
            f"network device {BRIDGE} exists but no real node owns it ({OWNER_FILE} is missing); "
            f"if it is a leftover, remove it with: ip link del {BRIDGE}"
        )
    OWNER_FILE.write_text(json.dumps(asdict(record)))


# ----- host set-up and teardown -----------------------------------------------------------


def _run(argv: list[str], *, what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=procs.child_env())
    if check and result.returncode != 0:
        raise RealNodeError(f"{what} failed: {' '.join(argv)}: {(result.stderr or result.stdout).strip()}")
    return result


def _bridge_exists() -> bool:
    return Path("/sys/class/net", BRIDGE).exists()


def _setup_bridge() -> None:
    """The pods' bridge, holding the node's address (host traffic to pods stays on it)."""
    if not _bridge_exists():
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"], what="creating the pod bridge")
    prefix = ipaddress.ip_network(POD_SUBNET).prefixlen
    addresses = _run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], what="reading the bridge").stdout
    if f"{NODE_IP}/{prefix}" not in addresses:
        _run(["ip", "addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE], what="addressing the bridge")
    _run(["ip", "link", "set", BRIDGE, "up"], what="bringing the bridge up")


def _cgroup_dirs() -> list[Path]:
    """Our cgroup root in every hierarchy (one path on a unified host)."""
    if cgroup_version() == 2:
        return [CGROUP_MOUNT / CGROUP_ROOT]
    return [h / CGROUP_ROOT for h in _v1_hierarchies()]


def _setup_cgroups() -> None:
    """kubelet's cgroupRoot must exist in every hierarchy it uses; cpuset needs cpus/mems."""
    for path in _cgroup_dirs():
        path.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            own, parent = path / name, path.parent / name
            if own.exists() and parent.exists() and not own.read_text().strip():
                own.write_text(parent.read_text())
    if cgroup_version() == 2:
        enabled = (CGROUP_MOUNT / "cgroup.subtree_control").read_text().split()
        wanted = [c for c in ("cpu", "cpuset", "memory", "pids", "io", "hugetlb") if c in enabled]
        own = CGROUP_MOUNT / CGROUP_ROOT / "cgroup.subtree_control"
        with contextlib.suppress(OSError):
            own.write_text(" ".join(f"+{c}" for c in wanted))


def _kill_cgroup_tree(root: Path) -> None:
    """SIGKILL every process in the cgroups under `root` (containers our containerd started)."""
    for dirpath, _dirs, files in os.walk(root):
        if "cgroup.procs" not in files:
            continue
        with contextlib.suppress(OSError):
            for pid in Path(dirpath, "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(pid), signal.SIGKILL)
        state = Path(dirpath, "freezer.state")
        if state.exists():  # a frozen process cannot die: thaw first
            with contextlib.suppress(OSError):
                state.write_text("THAWED")


def _remove_cgroup_tree(root: Path) -> bool:
    """rmdir the cgroups under `root`, deepest first; True if none is left."""
    if not root.exists():
        return True
    for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda w: -len(Path(w[0]).parts)):
        with contextlib.suppress(OSError):
            Path(dirpath).rmdir()
    return not root.exists()


def _our_shims(bin_dir: Path) -> list[int]:
    """Pids of the runc shims started from our binary (containerd detaches them)."""
    shim = str(bin_dir / SHIM)
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "exe") == shim:
                    pids.append(int(entry.name))
    return pids


def _read_tunables() -> dict[str, int]:
    values = {}
    for name in KUBELET_KERNEL_TUNABLES:
        with contextlib.suppress(OSError, ValueError):
            values[name] = int((_PROC_SYS / name).read_text())
    return values


def _restore_tunables(original: Mapping[str, int]) -> list[str]:
    problems = []
    current = _read_tunables()
    for name, value in original.items():
        if current.get(name) != value:
            try:
                (_PROC_SYS / name).write_text(str(value))
            except OSError as err:
                problems.append(f"could not restore {name.replace('/', '.')}={value}: {err}")
    return problems


def host_leftovers() -> list[str]:
    """What of a real node is still on this host (empty once every node was torn down)."""
    found = [f"network device {BRIDGE}"] if _bridge_exists() else []
    found += [f"cgroup {path}" for path in _cgroup_dirs() if path.exists()]
    if OWNER_FILE.exists():
        found.append(f"owner file {OWNER_FILE}")
    return found


def teardown(record: NodeRecord) -> list[str]:
    """Undo everything the node did to the host, once containerd and kubelet have stopped:
    kill its containers and shims, remove its cgroups, the bridge, the CNI cache if we made
    it, and the owner file. Idempotent; returns what could not be undone (empty if all)."""
    owner = _read_owner()
    if owner is None or owner.state_dir != record.state_dir:
        # Not ours (another node's, or nothing was ever set up: the owner file is written
        # before any host change): touch nothing.
        return []
    problems: list[str] = []
    bin_dir = Path(record.bin_dir)
    for pid in _our_shims(bin_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    roots = _cgroup_dirs()
    deadline = time.monotonic() + 15
    while True:
        for root in roots:
            _kill_cgroup_tree(root)
        if all(_remove_cgroup_tree(root) for root in roots) and not _our_shims(bin_dir):
            break
        if time.monotonic() > deadline:
            problems += [f"cgroup {r} could not be removed" for r in roots if r.exists()]
            problems += [f"shim pid {pid} is still running" for pid in _our_shims(bin_dir)]
            break
        time.sleep(0.2)
    if _bridge_exists():
        result = _run(["ip", "link", "del", BRIDGE], what="removing the bridge", check=False)
        if result.returncode != 0:
            problems.append(f"ip link del {BRIDGE}: {result.stderr.strip()}")
    problems += _restore_tunables(record.kernel_tunables)
    if not problems:
        OWNER_FILE.unlink(missing_ok=True)
    return problems


# ----- key material -----------------------------------------------------------------------


def _issue(
    *,
    ca_cert: Path,
    ca_key: Path,
    common_name: str,
    organizations: tuple[str, ...],
    usage: x509.ObjectIdentifier,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    out_cert: Path,
    out_key: Path,
) -> None:
    """A certificate signed by the dev CA (written by pki.py for the control plane)."""
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    signer = serialization.load_pem_private_key(ca_key.read_bytes(), password=None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        raise RealNodeError(f"{ca_key} is not the EC key pki.py writes")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    out_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    out_key.chmod(0o600)


def apiserver_args(state_dir: Path) -> list[str]:
    """kube-apiserver flags a real node needs: the client certificate it shows kubelets."""
    pki = state_dir.resolve() / "pki"
    return [
        f"--kubelet-client-certificate={pki / 'serving.crt'}",
        f"--kubelet-client-key={pki / 'serving.key'}",
    ]


# ----- the node ---------------------------------------------------------------------------


def _own_oom_score_adj() -> int:
    try:
        return int(Path("/proc/self/oom_score_adj").read_text())
    except (OSError, ValueError):
        return 0


def _free_port() -> int:
    from .cluster import free_ports  # cluster.py imports this module

    return free_ports(1)[0]


class RealNode:
    """The real node of one LocalCluster (started after its control plane is up)."""

    def __init__(self, cluster: LocalCluster, *, bin_dir: Path | None = None, ready_timeout: float = 120.0):
        self.cluster = cluster
        self.node_dir = cluster.state_dir / "node"
        self._bin_dir = bin_dir
        self.ready_timeout = ready_timeout
        self.images: list[nodeimages.ImageArchive] = []
        self.record: NodeRecord | None = None
        self.kubelet_port = 0
        self.healthz_port = 0

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_node_bin_dir()
        return self._bin_dir

    @property
    def socket(self) -> Path:
        return self.node_dir / "containerd.sock"

    @property
    def job_image(self) -> str:
        return nodeimages.job_image_ref()

    def ctr(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the built `ctr` against this node's containerd, namespace k8s.io."""
        result = subprocess.run(
            [str(self.bin_dir / "ctr"), f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=procs.child_env(),
        )
        if check and result.returncode != 0:
            raise RealNodeError(f"ctr {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}")
        return result

    def prepare(self) -> None:
        """Build (or find cached) binaries and images; nothing runs yet. Slow only when cold."""
        if reason := unsupported_reason():
            raise RealNodeError(f"this machine cannot run a real node: {reason}")
        missing = [b for b in BINARIES if not (self.bin_dir / b).exists()]
        if missing:
            raise RealNodeError(f"{self.bin_dir} lacks {missing}: run `bash {NODE_BUILD_SCRIPT}`")
        self.images = [nodeimages.pause_image(self.bin_dir), nodeimages.job_image()]

    def start(self) -> None:
        """Set the host up, start containerd, import the images, start kubelet, and return
        once the node is Ready and untainted. On failure, raise (the caller stops and tears
        down, as LocalCluster.start does)."""
        if not self.images:
            self.prepare()
        state_dir = self.cluster.state_dir
        for forbidden in (Path("/run"), Path("/var/log"), Path("/var/lib")):
            if state_dir == forbidden or forbidden in state_dir.parents:
                raise RealNodeError(f"the state directory {state_dir} must not be under {forbidden}")
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise RealNodeError(f"state directory path too long for a unix socket: {self.socket}")
        # A dead previous owner's teardown (in _claim) puts the kernel tunables back first.
        previous = _read_owner()
        self.record = NodeRecord(
            state_dir=str(state_dir),
            bin_dir=str(self.bin_dir),
            kernel_tunables=previous.kernel_tunables if previous else _read_tunables(),
        )
        _claim(self.record)
        if self.node_dir.exists():
            shutil.rmtree(self.node_dir)
        for sub in (
            "host-run",
            "host-log",
            "var-lib/upper",
            "var-lib/work",
            "sysctl-masks",
            "containerd",
            "kubelet/pki",
            "cni/net.d",
            "cni/ipam",
        ):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        _setup_bridge()
        _setup_cgroups()
        self._write_files()
        self._spawn_containerd()
        serving = lambda: self.ctr("version", check=False).returncode == 0  # noqa: E731
        self._wait("containerd to serve", serving, CONTAINERD)
        for image in self.images:
            self.ctr("images", "import", "--platform=linux/amd64", str(image.path), timeout=600)
            # Pinned: kubelet's image garbage collection never removes them.
            self.ctr("images", "label", image.ref, "io.cri-containerd.pinned=pinned")
        self._authorize_apiserver()
        self._spawn_kubelet()
        self._wait("node real-0 to be Ready and untainted", self._node_ready, KUBELET)

    # ----- files ----------------------------------------------------------------------

    def _write_files(self) -> None:
        nd, pki = self.node_dir, self.cluster.state_dir / "pki"
        ca_cert, ca_key = pki / "ca.crt", pki / "ca.key"
        kpki = nd / "kubelet" / "pki"
        _issue(
            ca_cert=ca_cert,
            ca_key=ca_key,
            common_name=f"system:node:{NODE_NAME}",
            organizations=("system:nodes",),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            out_cert=kpki / "client.crt",
            out_key=kpki / "client.key",
        )
        _issue(
            ca_cert=ca_cert,
            ca_key=ca_key,
            common_name=NODE_NAME,
            organizations=(),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            dns=(NODE_NAME,),
            ips=(NODE_IP,),
            out_cert=kpki / "serving.crt",
            out_key=kpki / "serving.key",
        )
        ca_data = base64.b64encode(ca_cert.read_bytes()).decode()
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "jobgate-dev",
                    "cluster": {"server": self.cluster.server, "certificate-authority-data": ca_data},
                }
            ],
            "users": [
                {
                    "name": NODE_NAME,
                    "user": {
                        "client-certificate": str(kpki / "client.crt"),
                        "client-key": str(kpki / "client.key"),
                    },
                }
            ],
            "contexts": [{"name": "node", "context": {"cluster": "jobgate-dev", "user": NODE_NAME}}],
            "current-context": "node",
        }
        (nd / "kubelet" / "kubeconfig").write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        (nd / "kubelet" / "kubeconfig").chmod(0o600)
        (nd / "cni" / "net.d" / "10-jobgate.conflist").write_text(json.dumps(self._cni_config(), indent=2))
        (nd / "containerd" / "config.toml").write_text(self._containerd_config())
        (nd / "kubelet" / "config.yaml").write_text(yaml.safe_dump(self._kubelet_config(), sort_keys=False))

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "jobgate-realnode",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    # No gateway, no masquerading, no default route in pods: no forwarding
                    # is enabled and nothing from a pod can leave this machine.
                    "isGateway": False,
                    "isDefaultGateway": False,
                    "ipMasq": False,
                    "hairpinMode": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET, "rangeStart": "10.244.0.10"}]],
                        "routes": [],
                        "dataDir": str(self.node_dir / "cni" / "ipam"),
                    },
                }
            ],
        }

    def _containerd_config(self) -> str:
        nd, ctd = self.node_dir, self.node_dir / "containerd"

        def q(value: object) -> str:
            return json.dumps(str(value))  # a TOML basic string

        return f"""\
# containerd of the jobgate dev cluster's real node (written by devcluster/realnode.py).
version = 3
root = {q(ctd / "root")}
state = {q(ctd / "state")}
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.blockfile",
                    "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = {q(self.socket)}

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = {q(ctd / "opt")}

  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = {q(ctd / "image-verifier")}

  [plugins.'io.containerd.cri.v1.images']
    snapshotter = "overlayfs"
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = {q(nodeimages.PAUSE_IMAGE)}

  [plugins.'io.containerd.cri.v1.runtime']
    # Never ask for an oom_score_adj below containerd's own: without CAP_SYS_RESOURCE (which
    # some VMs and sandboxes withhold, even from root) runc cannot lower it and every pod fails.
    restrict_oom_score_adj = true
    enable_cdi = false
    cdi_spec_dirs = []
    netns_mounts_under_state_dir = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = "runc"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          BinaryName = {q(os.environ.get("JOBGATE_REALNODE_RUNC") or self.bin_dir / "runc")}
          Root = {q(ctd / "runc")}
          SystemdCgroup = false
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [{q(self.bin_dir)}]
      conf_dir = {q(nd / "cni" / "net.d")}
      max_conf_num = 1

  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
"""

    def _kubelet_config(self) -> dict[str, Any]:
        kd, pki = self.node_dir / "kubelet", self.cluster.state_dir / "pki"
        self.kubelet_port, self.healthz_port = _free_port(), _free_port()
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "tlsCertFile": str(kd / "pki" / "serving.crt"),
            "tlsPrivateKeyFile": str(kd / "pki" / "serving.key"),
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{CGROUP_ROOT}",
            "cgroupsPerQOS": True,
            # kubelet 1.34 refuses cgroup v1 hosts unless told otherwise.
            "failCgroupV1": False,
            "failSwapOn": False,
            # kubelet's own oom_score_adj (default -999) and open-file limit (default 1000000):
            # lowering or raising past what we have needs CAP_SYS_RESOURCE, which may be missing.
            "oomScoreAdj": _own_oom_score_adj(),
            "maxOpenFiles": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
            # Nothing here needs kubelet's iptables chains; leave the host's tables alone.
            "makeIPTablesUtilChains": False,
            "seccompDefault": True,
            "volumePluginDir": str(kd / "volume-plugins"),
            "resolvConf": "/etc/resolv.conf",
            "serializeImagePulls": False,
            "maxPods": 110,
            # A shared dev machine: evict only when really short.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
                "imagefs.inodesFree": "1%",
            },
            "evictionPressureTransitionPeriod": "30s",
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 95,
            "nodeStatusReportFrequency": "10s",
            "containerLogMaxSize": "10Mi",
            "containerLogMaxFiles": 2,
        }

    # ----- processes ------------------------------------------------------------------

    def _spawn_containerd(self) -> None:
        nd = self.node_dir
        # In a mount namespace of its own, with / shared inside it, /run and /var/log bound to
        # the state directory, /var/lib overlaid, kubelet's kernel tunables masked;
        # kubelet joins it. Nothing mounted in it is seen by the host.
        # `mount -n`: no /run/mount/utab bookkeeping, which would land in the host's /run.
        mounts = [(nd / "host-run", Path("/run")), (nd / "host-log", Path("/var/log"))]
        current = _read_tunables()
        for name, wanted in KUBELET_KERNEL_TUNABLES.items():
            if current.get(name, wanted) != wanted:
                mask = nd / "sysctl-masks" / name.replace("/", ".")
                mask.write_text(f"{wanted}\n")
                mounts.append((mask, _PROC_SYS / name))
        binds = [f"mount -n --bind {shlex.quote(str(a))} {shlex.quote(str(b))}" for a, b in mounts]
        # /var/lib as an overlay whose writes land in the state directory: kubelet's fixed
        # /var/lib/kubelet/device-plugins and libcni's /var/lib/cni cache never reach the host,
        # while hostPath volumes still see the host's files.
        upper, work = nd / "var-lib" / "upper", nd / "var-lib" / "work"
        options = f"lowerdir=/var/lib,upperdir={upper},workdir={work}"
        binds.append(f"mount -n -t overlay -o {shlex.quote(options)} jobgate-var-lib /var/lib")
        script = f'set -e; {"; ".join(binds)}; exec "$@"'
        argv = [
            "unshare",
            "--mount",
            "--propagation=shared",
            "--",
            "sh",
            "-c",
            script,
            "jobgate-realnode",
            str(self.bin_dir / "containerd"),
            f"--config={nd / 'containerd' / 'config.toml'}",
            f"--log-level={os.environ.get('JOBGATE_REALNODE_LOG_LEVEL', 'info')}",
        ]
        path = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        self.cluster.spawn(CONTAINERD, argv, env={"PATH": path})

    def _spawn_kubelet(self) -> None:
        kd = self.node_dir / "kubelet"
        pid = self.cluster.processes[CONTAINERD].pid
        argv = [
            "nsenter",
            f"--mount=/proc/{pid}/ns/mnt",
            "--",
            str(self.bin_dir / "kubelet"),
            f"--config={kd / 'config.yaml'}",
            f"--kubeconfig={kd / 'kubeconfig'}",
            f"--root-dir={kd / 'root'}",
            f"--cert-dir={kd / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--node-labels={','.join(f'{k}={v}' for k, v in NODE_LABELS.items())}",
            "--v=2",
        ]
        path = f"{self.bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        self.cluster.spawn(KUBELET, argv, env={"PATH": path})

    def _authorize_apiserver(self) -> None:
        """Let the apiserver's kubelet-client identity use the kubelet API (logs, exec)."""
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": _RBAC_BINDING},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:kubelet-api-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": APISERVER_KUBELET_CLIENT_CN}
            ],
        }
        try:
            self.cluster.api.create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)
        except ApiError as err:
            if err.status != 409:
                raise

    def _node_ready(self) -> bool:
        try:
            node = self.cluster.api.get(f"/api/v1/nodes/{NODE_NAME}")
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        except OSError:
            return False
        conditions = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or []}
        return conditions.get("Ready") == "True" and not (node.get("spec") or {}).get("taints")

    def _wait(self, what: str, check: Callable[[], bool], component: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while not check():
            for name in PROCESSES:
                if name in self.cluster.processes and not self.cluster.alive(name):
                    raise RealNodeError(
                        f"{name} exited while waiting for {what}; from {self.cluster.log_path(name)}:\n"
                        f"{procs.failure_excerpt(self.cluster.log_path(name))}"
                    )
            if time.monotonic() > deadline:
                raise RealNodeError(
                    f"timed out after {self.ready_timeout:.0f}s waiting for {what}; from "
                    f"{self.cluster.log_path(component)}:\n"
                    f"{procs.failure_excerpt(self.cluster.log_path(component))}"
                )
            time.sleep(0.2)

    def teardown(self) -> list[str]:
        return [] if self.record is None else teardown(self.record)


def record_of(node: RealNode | None) -> dict[str, Any] | None:
    return None if node is None or node.record is None else asdict(node.record)


def from_record(cluster: LocalCluster, data: Mapping[str, Any] | None) -> RealNode | None:
    """A handle on the real node of an attached cluster (enough to tear it down)."""
    if not data:
        return None
    node = RealNode(cluster, bin_dir=Path(data["bin_dir"]))
    node.record = NodeRecord(**data)
    return node


# ----- a loopback service, reachable from pods ------------------------------------------


def relay_argv(port: int) -> list[str]:
    """The command of a relay from NODE_IP:port (what pods reach) to 127.0.0.1:port.

    Pods cannot reach the host's loopback, where the dev cluster's services listen (the
    jobgate API on 127.0.0.1:8265 serves the uploaded working_dir packages that a job's init
    container downloads). The relay listens on the bridge address only, never on eth0.
    """
    return [sys.executable, "-m", "jobgate.devcluster.nodectl", "relay", str(port)]
