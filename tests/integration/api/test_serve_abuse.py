"""Bad input and abuse, against the API process and the real cluster.

Each bad input gets a 4xx whose message names the problem, and the cluster holds exactly what
it held before (Jobs, pods, namespaces). Shell metacharacters in an entrypoint or a pip list
are the job's own business: accepted, passed to its pod as data, never run by the API or the
operator. And with tokens pinned to two tenants, no sequence of one tenant's calls, in either
dialect, whatever X-Tenant-Id it sends, ever returns, stops, deletes or logs the other's job.
(Field bounds and the plainer body errors are in test_serve_validation.py.)
"""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import stat
import struct
import tarfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
from apiprocess import (
    UNPACKED_BYTES,
    UNPACKED_ENTRIES,
    ApiServer,
    ApiServers,
    delete_tenant_namespace,
    wait_status,
)
from hypothesis import strategies
from kubernetes import client
from waiting import eventually
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jobgate.api import config, serving
from jobgate.crds import names
from jobgate.operator import podspec

JOB: dict[str, Any] = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}}
LIMIT = config.DEFAULT_MAX_BODY_BYTES


# -- what the cluster holds ---------------------------------------------------------------


def cluster_objects(kube: client.ApiClient) -> dict[tuple[str, str, str], str]:
    """Every Job (uid and generation: a stop changes it), pod and namespace, by (kind,
    namespace, name); what is being deleted already (a previous test's namespace) is left out."""
    core = client.CoreV1Api(kube)
    leaving = {ns.metadata.name for ns in core.list_namespace().items if ns.metadata.deletion_timestamp}
    objects = {
        ("namespace", "", ns.metadata.name): ns.metadata.uid
        for ns in core.list_namespace().items
        if ns.metadata.name not in leaving
    }
    jobs = client.CustomObjectsApi(kube).list_cluster_custom_object("jobgate.io", "v1alpha1", "jobs")["items"]
    for job in jobs:
        meta = job["metadata"]
        if meta["namespace"] not in leaving and "deletionTimestamp" not in meta:
            objects["job", meta["namespace"], meta["name"]] = f"{meta['uid']}/{meta['generation']}"
    for pod in core.list_pod_for_all_namespaces().items:
        meta = pod.metadata
        if meta.namespace not in leaving and not meta.deletion_timestamp:
            objects["pod", meta.namespace, meta.name] = meta.uid
    return objects


@pytest.fixture
def unchanged(kube: client.ApiClient) -> Iterator[None]:
    """The test must leave the cluster holding exactly what it held before."""
    before = cluster_objects(kube)
    yield
    after = cluster_objects(kube)
    assert {key: after[key] for key in after.keys() - before.keys()} == {}, "created"
    assert {key: before[key] for key in before.keys() - after.keys()} == {}, "gone"
    assert {key for key in before.keys() & after.keys() if before[key] != after[key]} == set(), "changed"


def message(response: httpx.Response) -> str:
    """The error's text in either dialect: a JSON string (the seed's) or plain text (Ray's)."""
    if response.headers.get("content-type", "").startswith("application/json"):
        text: str = response.json()
        return text
    return response.text


DIALECTS = ["/api/jobs", "/ray/api/jobs/"]


# -- bodies -------------------------------------------------------------------------------

VALID_PART = b'"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}'


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.parametrize(
    ("body", "content_type", "status", "problem"),
    [
        (b'{"entrypoint": "' + b"x" * (10 << 20) + b'"}', "application/json", 413, f"at most {LIMIT} bytes"),
        (
            b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "application/json",
            400,
            "nested too deeply",
        ),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json", 400, "nested too deeply"),
        (b'{"entrypoint": "\xff\xfe"}', "application/json", 400, "not UTF-8 at byte 16"),
        (b'{"\xc3\x28": 1}', "application/json", 400, "not UTF-8 at byte 2"),
        (b'{"entrypoint_memory": 1' + b"0" * 5000 + b"}", "application/json", 400, "digits"),
        (b"{" + VALID_PART + b"}", "text/plain", 400, "sent with Content-Type: application/json"),
        (b"{" + VALID_PART + b"}", "application/xml", 400, "sent with Content-Type: application/json"),
        (b"{" + VALID_PART + b"}", "multipart/form-data; boundary=x", 400, "Content-Type: application/json"),
    ],
    ids=[
        "10MB",
        "deep-array",
        "deep-object",
        "bad-utf8-value",
        "bad-utf8-key",
        "huge-int",
        "text",
        "xml",
        "form",
    ],
)
def test_bodies_that_cannot_be_a_job(
    api: ApiServer,
    tenant: str,
    unchanged: None,
    path: str,
    body: bytes,
    content_type: str,
    status: int,
    problem: str,
) -> None:
    with api.client(tenant, **{"Content-Type": content_type}) as http:
        response = http.post(path, content=body)
    assert response.status_code == status, response.text[:300]
    assert problem in message(response)


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"entrypoint_num_gpus": 1e300}, "entrypoint_num_gpus must be less than or equal to 1024"),
        ({"entrypoint_resources": {"NPU": 5000}}, "entrypoint_resources.NPU must be less than or equal"),
        (
            {"runtime_env": {"working_dir": "https://example.com/job.zip", "env_vars": {"A=B": "1"}}},
            'runtime_env.env_vars has the key "A=B": an environment variable\'s name is 1 to 256 printable',
        ),
        ({"metadata": {"k": "v" * 300_000}}, "metadata.k must have at most 4096 characters"),
        ({"metadata": {f"k{i}": "v" for i in range(33)}}, "metadata must have at most 32 entries"),
        ({"entrypoint": "x" * 70_000}, "entrypoint must have at most 65536 characters"),
    ],
    ids=["gpus-1e300", "npu-5000", "env-name", "metadata-300KB", "metadata-entries", "entrypoint-70KB"],
)
def test_fields_past_what_a_pod_can_hold_are_refused_before_anything_is_stored(
    api: ApiServer, tenant: str, unchanged: None, path: str, extra: dict[str, Any], problem: str
) -> None:
    body = {"entrypoint": "true", "runtime_env": {"working_dir": "https://example.com/job.zip"}, **extra}
    with api.client(tenant) as http:
        response = http.post(path, json=body)
    assert response.status_code == 400, response.text[:300]
    assert problem in message(response)


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant_id", "pool_label", "problem"),
    [
        ("tab\there", None, "X-Tenant-Id: a tenant id is 1 to 253 printable characters"),
        ("x" * 254, None, "X-Tenant-Id: a tenant id is 1 to 253 printable characters"),
        (None, "pool a", "X-Pool-Label: 'pool a' is not a node label key"),
        (None, "ok,,-bad", "X-Pool-Label: '-bad' is not a node label key"),
        (None, "a/b/c", "X-Pool-Label: 'a/b/c' is not a node label key"),
        (None, "p" * 64, "X-Pool-Label: 'ppp"),
        (None, "a" * 254 + "/pool", "a prefix of at most 253 characters"),
        (None, "a" * 64 + ".example.com/pool", "is not a node label key"),
        (None, "pool=" + "v" * 64, "is not a node label key"),
        (None, "k=v=w", "X-Pool-Label: 'k=v=w' is not a node label key"),
        (None, "=v", "X-Pool-Label: '=v' is not a node label key"),
        (None, "pool;rm -rf /", "X-Pool-Label: 'pool;rm -rf /' is not a node label key"),
        (None, "x" * 8000, "X-Pool-Label: 'xxx"),
        # A node's own label would pin the job to a node of the tenant's choosing.
        (
            None,
            "pool-cpu, kubernetes.io/hostname=cpu-a-0",
            "X-Pool-Label: 'kubernetes.io/hostname=cpu-a-0' is a Kubernetes label of the node itself",
        ),
    ],
    ids=lambda value: value[:16] if isinstance(value, str) else "",
)
@pytest.mark.parametrize("path", DIALECTS)
def test_headers_that_cannot_be_a_tenant_or_a_pool(
    api: ApiServer,
    tenant: str,
    unchanged: None,
    path: str,
    tenant_id: str | None,
    pool_label: str | None,
    problem: str,
) -> None:
    headers = {"X-Tenant-Id": tenant_id or tenant} | ({"X-Pool-Label": pool_label} if pool_label else {})
    with httpx.Client(base_url=api.url, headers=headers, trust_env=False) as http:
        response = http.post(path, json=JOB)
    assert response.status_code == 400
    assert problem in message(response)
    assert len(message(response)) < 400  # a huge header is not echoed back whole


@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"del\x7fete", b"a\nX-Injected: 1\r\n\r\n"])
def test_control_characters_in_headers_never_reach_the_api(
    api: ApiServer, unchanged: None, value: bytes
) -> None:
    """httpx refuses to send them: a raw request, which the HTTP server itself refuses."""
    body = b"{" + VALID_PART + b"}"
    request = (
        b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Tenant-Id: " + value + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as raw:
        raw.sendall(request)
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


@pytest.mark.parametrize(
    ("path", "head", "kind"),
    [
        ("/api/jobs", b"X-Big: " + b"x" * (serving.MAX_HEAD_BYTES + (64 << 10)), b"application/json"),
        (
            "/ray/api/jobs/",
            b"".join(b"X-Many-%d: 1\r\n" % i for i in range(serving.MAX_HEADERS + 1)),
            b"text/plain",
        ),
    ],
    ids=["one-huge-header", "too-many-headers"],
)
def test_a_request_head_past_its_bound_is_431_before_it_is_all_read(
    api: ApiServer, unchanged: None, path: str, head: bytes, kind: bytes
) -> None:
    """The head is not even finished: the API answers once the bound is passed, and closes."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as raw:
        raw.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + head)
        answer = raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"content-type: " + kind in answer
    assert b"request headers too large: at most 65536 bytes and 100 fields" in answer


def test_a_head_within_its_bounds_is_served(api: ApiServer, tenant: str) -> None:
    headers = {f"X-Extra-{i}": "y" * 500 for i in range(serving.MAX_HEADERS - 10)}
    with api.client(tenant, **headers) as http:
        assert http.get("/api/jobs").status_code == 200


def test_tenant_ids_with_commas_and_spaces_are_tenants_of_their_own(
    stored_api: ApiServer, kube: client.ApiClient
) -> None:
    """`a, b` is neither `a` nor `b`: its own hashed namespace, seen by no one else."""
    base = uuid.uuid4().hex[:6]
    odd, first, edge = f"{base}, {base}-b", base, "E" * 253
    try:
        with stored_api.client(odd) as http:
            assert http.post("/api/jobs", json={**JOB, "submission_id": "odd"}).status_code == 200
        for other in (first, f"{base}-b", odd.replace(", ", ","), odd.replace(" ", "  ")):
            with stored_api.client(other) as http:
                assert http.get("/api/jobs/app-odd").status_code == 404
        with stored_api.client(edge) as http:  # the longest tenant id
            assert http.post("/api/jobs", json=JOB).status_code == 200
        namespace = client.CoreV1Api(kube).read_namespace(
            names.tenant_namespace(odd, prefix=names.DEFAULT_NAMESPACE_PREFIX)
        )
        assert namespace.metadata.annotations["jobgate.io/tenant"] == odd
    finally:
        for name in (odd, edge):
            delete_tenant_namespace(kube, name)


# -- ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"submission_id": "R" * 65}, "submission_id must match ^[A-Za-z0-9_-]{1,64}$"),
        ({"submission_id": "a.b"}, "submission_id must match"),
        ({"submission_id": "../../x"}, "submission_id must match"),
        ({"submission_id": "a b"}, "submission_id must match"),
        ({"job_id": "J" * 65}, "must match ^[A-Za-z0-9_-]{1,64}$"),
    ],
    ids=lambda value: str(value)[:24],
)
def test_ray_ids_over_their_bound(
    api: ApiServer, tenant: str, unchanged: None, fields: dict[str, Any], problem: str
) -> None:
    with api.client(tenant) as http:
        response = http.post("/ray/api/jobs/", json={"entrypoint": "true", **fields})
    assert response.status_code == 400
    assert problem in response.text


def test_ray_ids_at_their_bound(stored_api: ApiServer, tenant: str) -> None:
    longest = "R_-" + "a" * 61
    with stored_api.client(tenant) as http:
        assert (
            http.post("/ray/api/jobs/", json={"entrypoint": "true", "submission_id": longest}).status_code
            == 200
        )
        assert http.get(f"/api/jobs/{longest}").status_code == 200  # the seed sees it by the same id


@pytest.mark.parametrize(
    "job_id",
    [
        "a" * 65,
        "x" * 5000,
        "..",
        "..%2F..%2Fhealthz",
        "%2e%2e%2fmetrics",
        "a%00b",
        "app-%E2%80%8Bx",
        "A" * 64,
    ],
    ids=lambda value: value[:16],
)
@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/stop"), ("DELETE", ""), ("GET", "/logs")]
)
@pytest.mark.parametrize("base", ["/api/jobs/", "/ray/api/jobs/"])
def test_ids_in_paths_over_every_bound_are_no_job(
    api: ApiServer, tenant: str, unchanged: None, base: str, method: str, suffix: str, job_id: str
) -> None:
    with api.client(tenant) as http:
        response = http.request(method, base + job_id + suffix)
    # No such job (or no such route, for ids that are not one path segment): never a 2xx or a 5xx.
    assert response.status_code in (400, 404, 405), (response.status_code, response.text[:200])


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"status": "BOGUS"}, "status"),
        ({"continue": "../../etc/passwd"}, "continue must be the X-Continue header"),
        (
            {"continue": base64.urlsafe_b64encode(b"[" * 5000).decode()},
            "continue must be the X-Continue header",
        ),
    ],
    ids=lambda value: str(value)[:24],
)
@pytest.mark.parametrize("path", DIALECTS)
def test_list_queries_over_their_bounds(
    api: ApiServer, tenant: str, path: str, query: dict[str, str], problem: str
) -> None:
    with api.client(tenant) as http:
        response = http.get(path, params=query)
        assert http.get(path, params={"limit": "10000"}).status_code == 200  # the edge
    assert response.status_code == 400
    assert problem in message(response)


# -- packages -----------------------------------------------------------------------------


def archive(*entries: tuple[str, bytes, int]) -> bytes:
    """A zip of (name, data, Unix file type) entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as packed:
        for name, data, kind in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = (kind | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            packed.writestr(info, data)
    return buffer.getvalue()


def tar_link(name: str, target: str, kind: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as packed:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        packed.addfile(info)
    return buffer.getvalue()


def declaring(data: bytes, size: int) -> bytes:
    """The one-entry zip `data`, its central directory claiming `size` bytes unpacked."""
    header = data.rindex(b"PK\x01\x02")
    return data[: header + 24] + struct.pack("<I", size) + data[header + 28 :]


FILE = stat.S_IFREG


@pytest.mark.parametrize(
    ("package", "problem"),
    [
        (
            archive(("ok.py", b"", FILE), ("../escape.py", b"x", FILE)),
            "entry '../escape.py' leaves the working",
        ),
        (archive(("a/../../escape", b"x", FILE)), "entry 'a/../../escape' leaves the working directory"),
        (archive(("/etc/cron.d/evil", b"x", FILE)), "entry '/etc/cron.d/evil' is an absolute path"),
        (archive(("link", b"/etc/passwd", stat.S_IFLNK)), "entry 'link' is a symbolic link"),
        (tar_link("link", "/etc", tarfile.SYMTYPE), "entry 'link' is a symbolic link"),
        (tar_link("hard", "/etc/shadow", tarfile.LNKTYPE), "entry 'hard' is a hard link"),
        (archive(("zeros", bytes(UNPACKED_BYTES + 1), FILE)), f"unpacks to more than {UNPACKED_BYTES} bytes"),
        (
            declaring(archive(("bomb", b"x", FILE)), 0xFFFFFFFF),
            f"unpacks to more than {UNPACKED_BYTES} bytes",
        ),
        (archive(*((f"f{n}", b"", FILE) for n in range(UNPACKED_ENTRIES + 1))), "holds more than 10 entries"),
        (b"#!/bin/sh\nrm -rf /\n", "is not a zip or tar archive"),
        (b"PK\x03\x04" + bytes(100), "is not a zip or tar archive"),
    ],
    ids=[
        "dotdot",
        "dotdot-inside",
        "absolute",
        "zip-symlink",
        "tar-symlink",
        "tar-hardlink",
        "deflate-bomb",
        "declared-bomb",
        "entries",
        "script",
        "fake-zip",
    ],
)
def test_packages_a_job_could_not_safely_unpack_are_refused_and_not_kept(
    limited_api: ApiServer, unchanged: None, package: bytes, problem: str
) -> None:
    name = f"_ray_pkg_{uuid.uuid4().hex[:16]}.zip"
    with limited_api.client() as http:
        response = http.put(f"/ray/api/packages/gcs/{name}", content=package)
        assert response.status_code == 400
        assert response.text.startswith("package ")
        assert problem in response.text
        assert http.get(f"/ray/api/packages/gcs/{name}").status_code == 404
    assert not list(limited_api.package_dir.glob("*/.upload-*"))  # the temporary file is gone too
    assert not list(limited_api.package_dir.glob(f"*/{name}"))


def test_a_package_within_the_limits_is_kept(limited_api: ApiServer) -> None:
    package = archive(
        ("src/", b"", stat.S_IFDIR), ("src/main.py", b"print(1)", FILE), ("z", bytes(1000), FILE)
    )
    with limited_api.client() as http:
        assert http.put("/ray/api/packages/gcs/_ray_pkg_fine.zip", content=package).status_code == 200
        assert http.get("/ray/api/packages/gcs/_ray_pkg_fine.zip").status_code == 200
    (kept,) = limited_api.package_dir.glob("*/_ray_pkg_fine.zip")
    assert kept.read_bytes() == package


# -- shell metacharacters: the job's own business, passed as data -------------------------


def test_shell_metacharacters_reach_the_pod_as_data_and_run_nowhere_here(
    stored_api: ApiServer, tenant: str, kube: client.ApiClient
) -> None:
    markers = [Path(f"/tmp/jobgate-abuse-{uuid.uuid4().hex}") for _ in range(6)]
    entrypoint = f"touch {markers[0]}; $(touch {markers[1]}) && `touch {markers[2]}` | sh -c 'exit 0' #"
    pip = [f"requests; touch {markers[3]}", f"$(touch {markers[4]})", "--index-url=http://127.0.0.1:9/ `id`"]
    env = {"EVIL": f"$(touch {markers[5]})", "QUOTE": "'\";\n"}
    working_dir = "https://example.com/$(reboot)/job.zip?a=1&b=`id`"
    job = {"entrypoint": entrypoint, "runtime_env": {"working_dir": working_dir, "pip": pip, "env_vars": env}}
    with stored_api.client(tenant) as http:
        response = http.post("/api/jobs", json={**job, "submission_id": "shell"})
        assert response.status_code == 200, response.text
        details = wait_status(http, "/api/jobs/app-shell", "SUCCEEDED", "FAILED")
    assert details["entrypoint"] == entrypoint
    namespace = names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    (pod,) = client.CoreV1Api(kube).list_namespaced_pod(namespace).items
    (container,) = pod.spec.containers
    assert container.command == ["/bin/sh", "-c", podspec.RUN_SCRIPT, "jobgate", entrypoint]
    assert {var.name: var.value for var in container.env} == {
        **env,
        "HOME": podspec.JOB_HOME,
        "PYTHONPATH": podspec.SITE_PACKAGES,
    }
    fetch, install = pod.spec.init_containers
    assert fetch.command[:5] == ["python3", "-c", podspec.FETCH_SCRIPT, working_dir, podspec.WORKING_DIR]
    assert install.command == ["/bin/sh", "-c", podspec.INSTALL_SCRIPT, "jobgate", "\n".join(pip)]
    # The API and the operator ran on this machine; fake nodes run nothing: no marker exists.
    assert [marker for marker in markers if marker.exists()] == []


# -- tenant isolation under fuzzing -------------------------------------------------------

TOKEN_A, TOKEN_B = f"token-a-{uuid.uuid4().hex}", f"token-b-{uuid.uuid4().hex}"
TENANT_A, TENANT_B = f"iso-a-{uuid.uuid4().hex[:6]}", f"Iso_B.{uuid.uuid4().hex[:6]}"  # B's is hashed
B_JOBS = {"app-b-running": "600s", "app-b-done": "0s"}


@pytest.fixture(scope="module")
def two_tenants(
    api_servers: ApiServers, tmp_path_factory: pytest.TempPathFactory, kube: client.ApiClient
) -> Iterator[ApiServer]:
    """An API with a token pinned to each of two tenants; B holds a running and a finished job,
    A one finished job of its own."""
    tokens = tmp_path_factory.mktemp("two-tenants") / "tokens"
    tokens.write_text(f"{TOKEN_A} {TENANT_A}\n{TOKEN_B} {TENANT_B}\n")
    server = api_servers.start(
        "two-tenants", JOBGATE_API_TOKENS_FILE=str(tokens), JOBGATE_SUBMIT_WAIT="stored"
    )
    with server.client(Authorization=f"Bearer {TOKEN_B}") as b:
        for submission_id, duration in B_JOBS.items():
            job = {**JOB, "submission_id": submission_id, "metadata": {"fake-duration": duration}}
            assert b.post("/api/jobs", json=job).status_code == 200
        wait_status(b, "/api/jobs/app-b-running", "RUNNING")
        wait_status(b, "/api/jobs/app-b-done", "SUCCEEDED")
    with server.client(Authorization=f"Bearer {TOKEN_A}") as a:
        assert a.post("/api/jobs", json={**JOB, "submission_id": "a-own"}).status_code == 200
        wait_status(a, "/api/jobs/app-a-own", "SUCCEEDED")
    try:
        yield server
    finally:
        for name in (TENANT_A, TENANT_B):
            delete_tenant_namespace(kube, name)


def b_jobs(kube: client.ApiClient) -> dict[str, tuple[str, int, bool]]:
    """B's Jobs as the cluster holds them: name -> (uid, generation, stop)."""
    namespace = names.tenant_namespace(TENANT_B, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    items = client.CustomObjectsApi(kube).list_namespaced_custom_object(
        "jobgate.io", "v1alpha1", namespace, "jobs"
    )
    return {
        job["metadata"]["name"]: (
            job["metadata"]["uid"],
            job["metadata"]["generation"],
            bool(job["spec"].get("stop")),
        )
        for job in items["items"]
    }


CALLS = strategies.sampled_from(
    [
        ("GET", "{base}/{id}"),
        ("POST", "{base}/{id}/stop"),
        ("DELETE", "{base}/{id}"),
        ("GET", "{base}/{id}/logs"),
        ("GET", "{base}"),
    ]
)
B_IDS = strategies.sampled_from(
    [*B_JOBS, "b-running", "b-done", "APP-B-RUNNING", "app-b-running/", "app-b-done%20"]
)
SPOOFED = strategies.sampled_from([None, TENANT_B, TENANT_B.lower(), "", TENANT_A, "default"])
BASES = strategies.sampled_from(["/api/jobs", "/ray/api/jobs"])
SEQUENCES = strategies.lists(strategies.tuples(CALLS, B_IDS, SPOOFED, BASES), min_size=1, max_size=6)


@hypothesis.settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)
@hypothesis.given(calls=SEQUENCES)
def test_no_call_of_a_ever_touches_bs_jobs(
    two_tenants: ApiServer, kube: client.ApiClient, calls: list[tuple[tuple[str, str], str, str | None, str]]
) -> None:
    before = b_jobs(kube)
    assert set(before) == set(B_JOBS)
    for (method, template), job_id, spoofed, base in calls:
        headers = {"Authorization": f"Bearer {TOKEN_A}"} | (
            {"X-Tenant-Id": spoofed} if spoofed is not None else {}
        )
        with httpx.Client(
            base_url=two_tenants.url, headers=headers, trust_env=False, follow_redirects=True
        ) as a:
            response = a.request(method, template.format(base=base, id=job_id))
        if "{id}" in template:
            assert response.status_code in (404, 405), (method, response.request.url, response.text[:200])
        else:
            assert response.status_code == 200
            assert [job["submission_id"] for job in response.json()] == ["app-a-own"]
        assert "fake job output" not in response.text  # never B's logs
    assert b_jobs(kube) == before  # nothing stopped, deleted or changed
    with two_tenants.client(Authorization=f"Bearer {TOKEN_B}") as b:
        assert b.get("/api/jobs/app-b-running").json()["status"] == "RUNNING"


def test_a_cannot_tail_bs_logs_whatever_it_claims(two_tenants: ApiServer) -> None:
    url = two_tenants.url.replace("http://", "ws://") + "/ray/api/jobs/app-b-running/logs/tail"
    for spoofed in (TENANT_B, TENANT_A):
        headers = {"Authorization": f"Bearer {TOKEN_A}", "X-Tenant-Id": spoofed}
        with pytest.raises(InvalidStatus) as refused, connect(url, additional_headers=headers, proxy=None):
            pass
        assert refused.value.response.status_code == 404  # as for a job nobody has
    # B's own token opens it: the job is there, only not A's.
    with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN_B}"}, proxy=None):
        pass


def test_log_tails_are_capped_per_tenant_and_per_process(
    api_servers: ApiServers, kube: client.ApiClient
) -> None:
    server = api_servers.start(
        "tails", JOBGATE_MAX_LOG_TAILS_PER_TENANT="2", JOBGATE_MAX_LOG_TAILS="3", JOBGATE_SUBMIT_WAIT="stored"
    )
    tenants = [f"tails-{n}-{uuid.uuid4().hex[:6]}" for n in range(2)]
    for tenant in tenants:
        with server.client(tenant) as http:
            job = {**JOB, "submission_id": "long", "metadata": {"fake-duration": "600s"}}
            assert http.post("/api/jobs", json=job).status_code == 200
            wait_status(http, "/api/jobs/app-long", "RUNNING")
    url = server.url.replace("http://", "ws://") + "/ray/api/jobs/app-long/logs/tail"

    def tail(tenant: str) -> contextlib.AbstractContextManager[Any]:
        return connect(url, additional_headers={"X-Tenant-Id": tenant}, proxy=None)

    def refused(tenant: str) -> str:
        with pytest.raises(InvalidStatus) as refusal, tail(tenant):
            pass
        assert refusal.value.response.status_code == 429
        return refusal.value.response.body.decode()

    try:
        with contextlib.ExitStack() as held:
            first = held.enter_context(tail(tenants[0]))
            held.enter_context(tail(tenants[0]))
            assert "follows 2 logs already" in refused(tenants[0])
            held.enter_context(tail(tenants[1]))  # another tenant's first: the process has room
            assert "this API process follows 3 logs already" in refused(tenants[1])
            first.close()
            eventually(lambda: _opens(tail, tenants[0]), message="a closed tail's slot to be free again")
    finally:
        for tenant in tenants:
            delete_tenant_namespace(kube, tenant)


def _opens(tail: Callable[[str], contextlib.AbstractContextManager[Any]], tenant: str) -> bool:
    try:
        with tail(tenant):
            return True
    except InvalidStatus:
        return False


# -- a page in the user's browser ---------------------------------------------------------


@pytest.mark.parametrize("path", DIALECTS)
@pytest.mark.usefixtures("unchanged")
def test_a_cross_site_page_cannot_submit_stop_or_tail(api: ApiServer, tenant: str, path: str) -> None:
    """What a page on another site can make a browser send: refused before anything is read."""
    evil = {"Origin": "http://evil.example", "X-Tenant-Id": tenant}
    body = b"{" + VALID_PART + b"}"
    with httpx.Client(base_url=api.url, trust_env=False) as browser:
        for headers in (evil, {**evil, "Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "cross-site"}):
            submitted = browser.post(path, content=body, headers=headers)  # no Content-Type, as a form may
            assert submitted.status_code == 403, submitted.text
            assert "refused" in message(submitted)
        stopped = browser.post(f"{path.rstrip('/')}/app-anything/stop", headers=evil)
        assert stopped.status_code == 403
    url = api.url.replace("http://", "ws://") + "/ray/api/jobs/app-anything/logs/tail"
    with pytest.raises(InvalidStatus) as refused, connect(url, origin="http://evil.example", proxy=None):
        pass
    assert refused.value.response.status_code == 403
