"""Hostile tenants: the attacks of the security review (issue 15), tried against a live
jobgate and counted.

    python -m jobgate.bench.abuse           # part of make faults: bench/results/abuse.json
    python -m jobgate.bench.abuse --quick   # part of make faults-quick (CI): bench/results/quick/

One fresh local control plane, the object store, the operator and an API set up as deploy/
runs them: bearer tokens pinned to two tenants (`acme` and `beta`), JOBGATE_TENANTS listing
only them, and `make dev`'s `file://` root. Tenant `beta` attacks `acme` and the cluster:
every try ends *refused* (the documented answer: 400, 401/403, 404, 413, 431, ...),
*leaked* (the attacker got what it wanted: a job stored, another tenant's package or job
touched, a pod as root) or *failed* (any other answer: a 500, no answer). The run writes
bench/results/abuse.json (quick: bench/results/quick/) and exits 1 if anything leaked or
failed. The test suite tries each attack too (tests/integration/api/test_serve_abuse.py,
test_serve_tenancy.py, the real-node suite); this reports them as one table.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import gzip
import io
import json
import secrets
import sys
import tarfile
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
from kubernetes import client
from kubernetes import config as kube_config

from jobgate.bench import measure, stack
from jobgate.crds import models, names
from jobgate.devcluster import LocalCluster, objectstore

TENANTS: Final = ("acme", "beta")
FILE_ROOT: Final = "/usr1/deploy"
RUNTIME_ENV: Final[dict[str, Any]] = {"working_dir": "https://example.com/job.zip"}
JOB: Final[dict[str, Any]] = {"entrypoint": "python main.py", "runtime_env": RUNTIME_ENV}


class Outcome(enum.StrEnum):
    REFUSED = "refused"
    LEAKED = "leaked"
    FAILED = "failed"


@dataclasses.dataclass
class Attack:
    """One kind of attack (a finding of the review), tried in several ways."""

    finding: int  # its number in the review
    name: str
    tries: list[Callable[[], Outcome]]


def refused_if(response: httpx.Response, *refusals: int) -> Outcome:
    """Refused if the answer is one of `refusals`; leaked if it is a success; else failed."""
    if response.status_code in refusals:
        return Outcome.REFUSED
    return Outcome.LEAKED if response.is_success else Outcome.FAILED


class Attacker:
    def __init__(self, jobgate: stack.Stack, tokens: dict[str, str], kube: client.ApiClient) -> None:
        self.base = jobgate.url("api")
        self.tokens = tokens
        self.objects = client.CustomObjectsApi(kube)
        self.core = client.CoreV1Api(kube)

    def http(self, tenant: str, **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {self.tokens[tenant]}"}
        return httpx.Client(base_url=self.base, headers=auth | headers, timeout=30, trust_env=False)

    def submit(self, tenant: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        with self.http(tenant, **headers) as http:
            return http.post("/api/jobs", json={**JOB, "submission_id": f"x{uuid.uuid4().hex[:12]}", **body})

    def victim_job(self) -> str:
        """A job of acme that runs for a long while: what beta goes after."""
        answer = self.submit("acme", {"metadata": {"fake-duration": "1h"}})
        answer.raise_for_status()
        return str(answer.json()["submission_id"])

    def job_of(self, tenant: str, submission_id: str) -> Any:
        namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
        return self.objects.get_namespaced_custom_object(
            models.GROUP, models.VERSION, namespace, models.PLURAL, names.job_name(submission_id)
        )

    # -- the attacks ------------------------------------------------------------------------

    def attacks(self) -> list[Attack]:
        victim = self.victim_job()
        package = self._acme_package()
        return [
            Attack(
                1,
                "file:// working_dir outside the tenant's root",
                [
                    self._submits({"runtime_env": {"working_dir": uri}})
                    for uri in (
                        "file:///var/lib/kubelet",
                        "file:///",
                        f"file://{FILE_ROOT}/../../etc/x.zip",
                        f"file://{FILE_ROOT}/a\x00b.zip",
                    )
                ],
            ),
            Attack(
                2,
                "another tenant's package: learn of it, fetch it, replace it",
                [
                    lambda: self._beta_asks("GET", f"/ray/api/packages/gcs/{package.name}", 404),
                    lambda: self._beta_asks("GET", f"/api/packages/gcs/{package.name}", 404),
                    lambda: self._beta_asks(
                        "GET",
                        f"/api/packages/gcs/{package.name}?namespace={package.space}&job=x&uid=guessed",
                        404,
                    ),
                    self._replaces_package(package),
                ],
            ),
            Attack(
                3,
                "an archive whose headers take the API's memory or CPU",
                [
                    self._uploads(_gzipped_tar_with_long_name(1 << 20)),
                    self._uploads(_zip_claiming_4_gib()),
                ],
            ),
            Attack(
                4,
                "headers past their bounds",
                [
                    lambda: self._beta_asks("GET", "/api/jobs", 431, headers={"X-Big": "x" * (256 << 10)}),
                    lambda: self._beta_asks(
                        "GET", "/api/jobs", 431, headers={f"X-Many-{n}": "x" for n in range(200)}
                    ),
                ],
            ),
            Attack(
                5,
                "a cross-site page submitting or stopping",
                [
                    lambda: refused_if(self.submit("beta", {}, Origin="http://evil.example"), 403),
                    lambda: self._beta_asks(
                        "POST", f"/api/jobs/{victim}/stop", 403, headers={"Origin": "http://evil.example"}
                    ),
                ],
            ),
            Attack(
                6,
                "no token, a wrong token, or one tenant's token claiming the other",
                [
                    lambda: refused_if(_bare(self.base).get("/api/jobs"), 401),
                    lambda: refused_if(
                        _bare(self.base).get("/api/jobs", headers={"Authorization": "Bearer " + "a" * 40}),
                        403,
                    ),
                    self._claims_acme,
                ],
            ),
            Attack(
                7,
                "an image from elsewhere, or a job's pod as root",
                [
                    self._submits({"runtime_env": {**RUNTIME_ENV, "image_uri": "evil.example/miner:1"}}),
                    self._runs_as_root,
                ],
            ),
            Attack(
                8,
                "inputs that would break the pod later",
                [
                    self._submits({"entrypoint_num_gpus": 1e300}),
                    self._submits({"entrypoint_num_cpus": 1000}),
                    self._submits({"runtime_env": {**RUNTIME_ENV, "env_vars": {"A=B": "x"}}}),
                    self._submits(
                        {"metadata": {f"k{n}": "v" * 4000 for n in range(80)}}, refusals=(400, 413)
                    ),
                ],
            ),
            Attack(
                10,
                "a pool that is a node's own label",
                [
                    self._submits({}, headers={"X-Pool-Label": "kubernetes.io/hostname=cpu-a-0"}),
                    self._submits({}, headers={"X-Pool-Label": "node-role.kubernetes.io/control-plane"}),
                ],
            ),
            Attack(
                11,
                "another tenant's job: read, stop, delete, logs",
                [
                    lambda: self._beta_asks("GET", f"/api/jobs/{victim}", 404),
                    lambda: self._beta_asks("GET", f"/api/jobs/{victim}/logs", 404),
                    lambda: self._beta_asks("POST", f"/api/jobs/{victim}/stop", 404),
                    lambda: self._beta_asks("DELETE", f"/ray/api/jobs/{victim}", 404),
                    lambda: Outcome.REFUSED if self._untouched(victim) else Outcome.LEAKED,
                ],
            ),
        ]

    def _submits(
        self,
        body: dict[str, Any],
        *,
        refusals: tuple[int, ...] = (400,),
        headers: dict[str, str] | None = None,
    ) -> Callable[[], Outcome]:
        return lambda: refused_if(self.submit("beta", body, **(headers or {})), *refusals)

    def _beta_asks(
        self, method: str, path: str, *refusals: int, headers: dict[str, str] | None = None
    ) -> Outcome:
        with self.http("beta") as http:
            return refused_if(http.request(method, path, headers=headers), *refusals)

    def _uploads(self, data: bytes) -> Callable[[], Outcome]:
        def upload() -> Outcome:
            with self.http("beta") as http:
                name = f"_ray_pkg_{uuid.uuid4().hex[:16]}.zip"
                return refused_if(http.put(f"/ray/api/packages/gcs/{name}", content=data), 400, 413)

        return upload

    def _claims_acme(self) -> Outcome:
        """beta's token, saying it is acme: the token's tenant wins, so acme's job is not there."""
        victim = self.victim_job()
        with self.http("beta", **{"X-Tenant-Id": "acme"}) as http:
            return refused_if(http.get(f"/api/jobs/{victim}"), 404)

    def _runs_as_root(self) -> Outcome:
        answer = self.submit("beta", {"metadata": {"fake-duration": "1h"}})
        if not answer.is_success:
            return Outcome.FAILED
        namespace = names.tenant_namespace("beta", prefix=names.DEFAULT_NAMESPACE_PREFIX)
        pod_name = names.pod_name(names.job_name(answer.json()["submission_id"]), 1)
        pod = _pod(self.core, namespace, pod_name)
        security = pod.spec.security_context
        return Outcome.REFUSED if security.run_as_non_root and security.run_as_user else Outcome.LEAKED

    def _acme_package(self) -> Package:
        data = _zipped({"main.py": "print('acme')"})
        name = f"_ray_pkg_{uuid.uuid4().hex[:16]}.zip"
        with self.http("acme") as http:
            http.put(f"/ray/api/packages/gcs/{name}", content=data).raise_for_status()
        return Package(
            name=name, data=data, space=names.tenant_namespace("acme", prefix=names.DEFAULT_NAMESPACE_PREFIX)
        )

    def _replaces_package(self, package: Package) -> Callable[[], Outcome]:
        """beta uploads other bytes under acme's name (its own package, then); acme's job
        must still fetch acme's bytes."""

        def replace() -> Outcome:
            with self.http("beta") as http:
                http.put(f"/ray/api/packages/gcs/{package.name}", content=_zipped({"main.py": "evil()"}))
            answer = self.submit(
                "acme",
                {
                    "runtime_env": {"working_dir": f"gcs://{package.name}"},
                    "metadata": {"fake-duration": "1h"},
                },
            )
            if not answer.is_success:
                return Outcome.FAILED
            job = self.job_of("acme", answer.json()["submission_id"])
            identity = {
                "namespace": package.space,
                "job": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
            }
            fetched = _bare(self.base).get(f"/api/packages/gcs/{package.name}", params=identity)
            if not fetched.is_success:
                return Outcome.FAILED
            return Outcome.REFUSED if fetched.content == package.data else Outcome.LEAKED

        return replace

    def _untouched(self, victim: str) -> bool:
        job = self.job_of("acme", victim)
        return not job["spec"].get("stop") and job["status"].get("state") in ("PENDING", "RUNNING")


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    data: bytes
    space: str


def _pod(core: client.CoreV1Api, namespace: str, name: str) -> Any:
    """The pod, once it exists."""
    found: list[Any] = []

    def created() -> bool:
        try:
            found.append(core.read_namespaced_pod(name, namespace))
        except client.ApiException as e:
            if e.status != 404:
                raise
            return False
        return True

    measure.wait(f"pod {name}", created, bound=60, poll=0.1)
    return found[-1]


def _bare(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=30, trust_env=False)


def _zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def _gzipped_tar_with_long_name(length: int) -> bytes:
    """A tar.gz of a few KB whose one entry's GNU long-name header is `length` bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        archive.addfile(tarfile.TarInfo("a" * length))
    return gzip.compress(raw.getvalue())


def _zip_claiming_4_gib() -> bytes:
    """A zip of one one-byte entry whose central directory claims 4 GiB unpacked."""
    data = bytearray(_zipped({"bomb": "x"}))
    header = data.rindex(b"PK\x01\x02")
    data[header + 24 : header + 28] = (0xFFFFFFFF).to_bytes(4, "little")  # its uncompressed size
    return bytes(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="for CI: the results go to results/quick/")
    args = parser.parse_args(argv)
    out = measure.results_dir(quick=args.quick)
    began = time.monotonic()
    tokens = {tenant: secrets.token_urlsafe(32) for tenant in TENANTS}
    with tempfile.TemporaryDirectory(prefix="jobgate-abuse-") as state, LocalCluster(Path(state)) as cluster:
        tokens_file = Path(state) / "tokens"
        tokens_file.write_text("".join(f"{token} {tenant}\n" for tenant, token in tokens.items()))
        store = objectstore.start(cluster)
        settings = {
            "JOBGATE_FILE_URI_ROOT": FILE_ROOT,
            # Where pods would fetch packages (kwok's fetch nothing): gcs:// working dirs are on.
            "JOBGATE_PACKAGE_BASE_URL": "http://jobgate-api.jobgate-system.svc:8265",
            **store.env(),
        }
        jobgate = stack.Stack(
            cluster,
            operator_env=settings,
            apis={
                "api": {
                    **settings,
                    "JOBGATE_SUBMIT_WAIT": "stored",
                    "JOBGATE_API_TOKENS_FILE": str(tokens_file),
                    "JOBGATE_TENANTS": ",".join(TENANTS),
                }
            },
        )
        jobgate.start()
        kube = kube_config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        rows = []
        for attack in Attacker(jobgate, tokens, kube).attacks():
            outcomes = [_tried(attempt) for attempt in attack.tries]
            rows.append(
                {
                    "finding": attack.finding,
                    "attack": attack.name,
                    "tried": len(outcomes),
                    **{outcome.value: outcomes.count(outcome) for outcome in Outcome},
                }
            )
            print(f"  {rows[-1]}", flush=True)
    figures = {"attacks": rows, "run_seconds": round(time.monotonic() - began, 1)}
    (out / "abuse.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {out / 'abuse.json'} in {figures['run_seconds']:.0f} s")
    print(_table(rows))
    return 0 if all(row["leaked"] == row["failed"] == 0 for row in rows) else 1


def _tried(attempt: Callable[[], Outcome]) -> Outcome:
    try:
        return attempt()
    except (httpx.HTTPError, client.ApiException, TimeoutError) as e:
        print(f"    failed: {type(e).__name__}: {e}", flush=True)
        return Outcome.FAILED


def _table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| finding | attack | tried | refused | leaked | failed |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['finding']} | {r['attack']} | {r['tried']} | {r['refused']} | {r['leaked']} | {r['failed']} |"
        for r in rows
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
