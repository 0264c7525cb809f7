"""jobgate Jobs on the real node: the operator (`python -m jobgate.operator`, run here as a
subprocess against the real-node cluster) turns Job resources with `poolLabels:
["real"]` into pods that really run: through a shell, in the working directory the
init container unpacked, with the job's env vars, and with its exit code, OOM kill and logs
reported as they happened. Nothing is faked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import archives
import botocore.exceptions
import pytest
import yaml
from apiprocess import ApiServer, delete_tenant_namespace
from kubernetes import client
from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient
from waiting import eventually

from jobgate.crds import models, names, policy
from jobgate.devcluster import LocalCluster, nodeimages, objectstore, realnode
from jobgate.operator import podspec

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = REPO_ROOT / "crds" / "jobgate.io_jobs.yaml"
BOUND = 120.0  # seconds for a job to finish: real containers start on the real node
START_TIMEOUT = 10  # the operator's JOBGATE_START_TIMEOUT_SECONDS here (120 by default)
# A tenant whose file:// root is not on the node: its pods cannot mount it.
GHOST_TENANT, GHOST_ROOT = "ghost", "/nonexistent/jobgate-root"
# Nothing listens there: a pull fails at once, without reaching past this machine.
ABSENT_IMAGE = "127.0.0.1:9/jobgate/absent:1"
SWEEP_SECONDS = 3  # the operator's log archive sweep, here (10 min by default)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _install_crd(kube: client.ApiClient) -> None:
    manifest = yaml.safe_load(CRD_FILE.read_text())
    api = client.ApiextensionsV1Api(kube)
    try:
        api.create_custom_resource_definition(manifest)
    except client.ApiException as err:
        if err.status != 409:
            raise

    def established() -> bool:
        status = api.read_custom_resource_definition(manifest["metadata"]["name"]).status
        return any(
            c.type == "Established" and c.status == "True" for c in (status and status.conditions) or []
        )

    eventually(established, message="the Job CRD to be Established")


@pytest.fixture(scope="module")
def workdir_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where file:// working dirs live on the node (the real node sees the host's files),
    readable by the jobs' user, as a cluster operator makes it (pytest's are the owner's only)."""
    root = tmp_path_factory.mktemp("workdirs")
    root.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def pip_index(real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A package index of one wheel (PEP 503, served from a directory on loopback and
    relayed to the node's address): runtime_env.pip's mirror here, offline."""
    root = tmp_path_factory.mktemp("pip-index")
    module = "GREETING = 'hello from pip'\n\ndef main() -> None:\n    print('hello from its script')\n"
    name, data = archives.wheel(
        "jobgate-hello",
        "1.0",
        {"jobgate_hello/__init__.py": module},
        scripts="jobgate-hello = jobgate_hello:main",
    )
    (root / name).write_bytes(data)
    (root / "simple" / "jobgate-hello").mkdir(parents=True)
    (root / "simple" / "jobgate-hello" / "index.html").write_text(f'<a href="../../{name}">{name}</a>\n')
    port = _free_port()
    served = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)]
    server = real_cluster.spawn(f"pip-index-{port}", served)
    relay = real_cluster.spawn(f"pip-index-relay-{port}", realnode.relay_argv(port))
    try:
        yield f"http://{realnode.NODE_IP}:{port}/simple/"
    finally:
        relay.stop()
        server.stop()


def _api_replica(
    name: str, real_cluster: LocalCluster, workdir_root: Path, real_store: objectstore.Store
) -> ApiServer:
    """An API process on the real-node cluster, configured as the operator is, keeping its
    packages in the store; pods would reach it through a relay at the node's address."""
    server = ApiServer(
        name=name,
        kubeconfig=real_cluster.kubeconfig,
        workdir=real_cluster.state_dir / "logs",
        env={"JOBGATE_FILE_URI_ROOT": str(workdir_root), **real_store.env()},
    )
    server.env["JOBGATE_PACKAGE_BASE_URL"] = f"http://{realnode.NODE_IP}:{server.port}"
    return server


@pytest.fixture(scope="module")
def api_server(real_cluster: LocalCluster, workdir_root: Path, real_store: objectstore.Store) -> ApiServer:
    """The API on the real-node cluster (started by `real_api`): the one the pods reach."""
    return _api_replica("realnode", real_cluster, workdir_root, real_store)


@pytest.fixture(scope="module")
def real_operator(
    real_cluster: LocalCluster,
    real_kube: client.ApiClient,
    workdir_root: Path,
    api_server: ApiServer,
    pip_index: str,
    real_store: objectstore.Store,
) -> Iterator[None]:
    """The operator, its jobs defaulting to the real node's image, file:// dirs enabled, the
    pods' logs archived in the store (swept every few seconds)."""
    try:
        import jobgate.operator.__main__  # noqa: F401  (is the operator there yet?)
    except ModuleNotFoundError as err:
        pytest.skip(f"the operator is not in this tree yet: {err}")
    _install_crd(real_kube)
    port = _free_port()
    log_path = real_cluster.state_dir / "logs" / "test-operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(real_cluster.kubeconfig),
        "PYTHONSAFEPATH": "1",
        "JOBGATE_IMAGE": nodeimages.job_image_ref(),
        "JOBGATE_FILE_URI_ROOT": str(workdir_root),
        "JOBGATE_FILE_URI_ROOTS": f"{GHOST_TENANT}={GHOST_ROOT}",
        "JOBGATE_START_TIMEOUT_SECONDS": str(START_TIMEOUT),
        "JOBGATE_ALLOWED_IMAGES": "*",  # the start-failure tests name images of any registry
        "JOBGATE_PACKAGE_BASE_URL": api_server.env["JOBGATE_PACKAGE_BASE_URL"],
        "JOBGATE_PIP_INDEX_URL": pip_index,
        "JOBGATE_OPERATOR_LIVENESS": f"http://127.0.0.1:{port}/healthz",
        "JOBGATE_LOG_ARCHIVE_SWEEP_SECONDS": str(SWEEP_SECONDS),
        "JOBGATE_RETRY_BACKOFF_SECONDS": "1",  # 10 s, 20 s, ... by default
        **real_store.env(),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobgate.operator"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log
        )

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the operator exited at start; see {log_path}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)

    # OSError: the liveness endpoint does not answer yet.
    eventually(ready, ignoring=(OSError,), message=f"the operator to be ready; see {log_path}")
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _run_job(kube: client.ApiClient, namespace: str, **spec: Any) -> dict[str, Any]:
    return _finished_job(kube, namespace, _create_job(kube, namespace, **spec))


def _create_job(kube: client.ApiClient, namespace: str, **spec: Any) -> str:
    """A Job on the real node's pool, created with kubectl's powers; its name."""
    name = f"job-{uuid.uuid4().hex[:8]}"
    body = {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": {"poolLabels": [realnode.POOL_SELECTOR_LABEL], **spec},
    }
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        models.GROUP, models.VERSION, namespace, models.PLURAL, body
    )
    return name


def _finished_job(kube: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The Job once it finished."""
    custom = client.CustomObjectsApi(kube)

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = custom.get_namespaced_custom_object(
            models.GROUP, models.VERSION, namespace, models.PLURAL, name
        )
        return job if job.get("status", {}).get("state") in ("SUCCEEDED", "FAILED", "STOPPED") else None

    return eventually(finished, timeout=BOUND, message=f"job {name} to finish")


def _job_log(kube: client.ApiClient, namespace: str, job: dict[str, Any]) -> str:
    """The log of the job's entrypoint (its pod's main container)."""
    log: str = client.CoreV1Api(kube).read_namespaced_pod_log(
        job["status"]["podName"], namespace, container=podspec.MAIN_CONTAINER
    )
    return log


def test_a_job_runs_its_entrypoint_in_its_working_dir_with_its_env(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None, workdir_root: Path
) -> None:
    package = workdir_root / "hello"
    package.mkdir()
    (package / "script.py").write_text(
        "import os, sys\nprint('cwd', os.getcwd())\nprint('greeting', os.environ['GREETING'])\n"
        "sys.stdout.flush()\nprint(42, file=sys.stderr)\n"
    )
    job = _run_job(
        real_kube,
        real_namespace,
        entrypoint="python script.py && echo done",
        runtimeEnv={"working_dir": f"file://{package}", "env_vars": {"GREETING": "hello world"}},
    )
    status = job["status"]
    assert status["state"] == "SUCCEEDED", status
    assert status["exitCode"] == 0
    assert status["nodeName"] == realnode.NODE_NAME
    logs = _job_log(real_kube, real_namespace, job)
    # stdout in order; stderr's line is in the log too (the two streams are not ordered).
    lines = logs.splitlines()
    assert [line for line in lines if line != "42"] == [
        "cwd /jobgate/working_dir",
        "greeting hello world",
        "done",
    ]
    assert "42" in lines


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("kubelet", "working_dir kubelet: leaves the root of the file:// working dirs (a symbolic link)"),
        ("absent.zip", "working_dir absent.zip: no such file or directory under the root"),
    ],
)
def test_a_file_working_dir_never_reaches_past_its_root_on_the_node(
    real_kube: client.ApiClient,
    real_namespace: str,
    real_operator: None,
    workdir_root: Path,
    name: str,
    why: str,
) -> None:
    """A link under the root to the node's kubelet directory: the job fails saying so, and
    copies nothing of the node."""
    link = workdir_root / "kubelet"
    if not link.is_symlink():
        link.symlink_to("/var/lib/kubelet")
    job = _run_job(
        real_kube,
        real_namespace,
        entrypoint="ls -la",
        runtimeEnv={"working_dir": f"file://{workdir_root / name}"},
    )
    status = job["status"]
    assert (status["state"], status["errorType"]) == ("FAILED", "StartFailed"), status
    assert status["message"].startswith(f"the working_dir could not be fetched: {why}"), status


def test_runtime_env_pip_installs_into_the_jobs_own_environment(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    entrypoint = "python -c 'import jobgate_hello; print(jobgate_hello.GREETING)' && jobgate-hello"
    job = _run_job(
        real_kube, real_namespace, entrypoint=entrypoint, runtimeEnv={"pip": ["jobgate-hello==1.0"]}
    )
    assert job["status"]["state"] == "SUCCEEDED", job["status"]
    logs = _job_log(real_kube, real_namespace, job)
    assert logs == "hello from pip\nhello from its script\n"  # its module, and its console script


def test_requirements_pip_cannot_install_fail_the_start_with_pips_reason(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    job = _run_job(real_kube, real_namespace, entrypoint="true", runtimeEnv={"pip": ["jobgate-absent==9"]})
    status = job["status"]
    assert (status["state"], status["errorType"]) == ("FAILED", "StartFailed"), status
    assert status["message"] == (
        "runtime_env.pip could not be installed: ERROR: No matching distribution found for jobgate-absent==9"
    ), status


def test_a_failing_job_reports_its_exit_code(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    job = _run_job(real_kube, real_namespace, entrypoint="python -c 'import sys; sys.exit(7)'")
    assert job["status"]["state"] == "FAILED", job["status"]
    assert job["status"]["exitCode"] == 7


def test_a_job_runs_as_an_ordinary_user_without_capabilities_or_a_way_to_gain_privileges(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    # Root in the image, but the job's user here (uid and gid 1000, HOME writable), with no
    # capability, no_new_privs, and the runtime's seccomp filter (mode 2). chown needs
    # CAP_CHOWN, which the job has not.
    job = _run_job(
        real_kube,
        real_namespace,
        entrypoint="grep -E '^(Uid|Gid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
        "touch ~/f && chown 1:1 ~/f || echo chown refused",
    )
    assert job["status"]["state"] == "SUCCEEDED", job["status"]
    logs = _job_log(real_kube, real_namespace, job)
    said = dict(line.split(":\t", 1) for line in logs.splitlines() if ":\t" in line)
    assert said == {
        "Uid": "1000\t1000\t1000\t1000",
        "Gid": "1000\t1000\t1000\t1000",
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }
    assert "chown refused" in logs


def test_a_job_past_its_memory_is_oom_killed_and_failed(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    hog = "python -c 'held = []\nwhile True: held.append(bytearray(8 << 20))'"
    job = _run_job(real_kube, real_namespace, entrypoint=hog, resources={"memory": 128 * 1024 * 1024})
    status = job["status"]
    assert status["state"] == "FAILED", status
    assert status["exitCode"] == 137
    assert "OOMKilled" in status["message"]


def _pod_gone(kube: client.ApiClient, namespace: str, name: str) -> bool:
    try:
        pod = client.CoreV1Api(kube).read_namespaced_pod(name, namespace)
    except client.ApiException as err:
        if err.status == 404:
            return True
        raise
    return pod.metadata.deletion_timestamp is not None


def test_an_image_that_cannot_be_pulled_fails_the_job_within_the_start_timeout(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    job = _run_job(real_kube, real_namespace, entrypoint="true", runtimeEnv={"image_uri": ABSENT_IMAGE})
    status = job["status"]
    assert (status["state"], status["errorType"]) == ("FAILED", "StartFailed"), status
    assert status["message"].startswith(
        f"the job could not start within {START_TIMEOUT} s: "
        f"runtime_env.image_uri: image {ABSENT_IMAGE} cannot be pulled: "
    ), status
    started = next(c for c in status["conditions"] if c["type"] == "Started")
    assert (started["status"], started["reason"]) == ("False", "ImagePullBackOff")
    eventually(lambda: _pod_gone(real_kube, real_namespace, status["podName"]), message="the pod to go")


def test_an_invalid_image_name_fails_the_job_at_once(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    job = _run_job(real_kube, real_namespace, entrypoint="true", runtimeEnv={"image_uri": "Not:A:Valid:Name"})
    status = job["status"]
    assert (status["state"], status["errorType"]) == ("FAILED", "StartFailed"), status
    said = "runtime_env.image_uri: image Not:A:Valid:Name cannot be used (InvalidImageName)"
    assert status["message"].startswith(f"the job cannot start: {said}"), status


def test_a_file_root_missing_on_the_node_fails_the_job_naming_the_path(
    real_kube: client.ApiClient, real_operator: None
) -> None:
    # In the tenant's own namespace: a Job's spec.tenant is its namespace's tenant.
    namespace = names.tenant_namespace(GHOST_TENANT, prefix=names.DEFAULT_NAMESPACE_PREFIX)
    client.CoreV1Api(real_kube).create_namespace({"metadata": {"name": namespace}})
    try:
        job = _run_job(
            real_kube,
            namespace,
            entrypoint="true",
            tenant=GHOST_TENANT,
            runtimeEnv={"working_dir": f"file://{GHOST_ROOT}/file.zip"},
        )
    finally:
        delete_tenant_namespace(real_kube, GHOST_TENANT)
    status = job["status"]
    assert (status["state"], status["errorType"]) == ("FAILED", "StartFailed"), status
    prefix = f"the job could not start within {START_TIMEOUT} s: runtime_env.working_dir: waiting for volume "
    assert status["message"].startswith(prefix), status
    assert GHOST_ROOT in status["message"], status


@pytest.fixture(scope="module")
def real_api(real_cluster: LocalCluster, real_operator: None, api_server: ApiServer) -> Iterator[ApiServer]:
    relay = real_cluster.spawn(f"api-relay-{api_server.port}", realnode.relay_argv(api_server.port))
    api_server.start()
    try:
        yield api_server
    finally:
        api_server.stop()
        relay.stop()


def _ray_client(api: ApiServer, tenant: str) -> JobSubmissionClient:
    """Ray's own client, as the tenant, for the real node's pool."""
    return JobSubmissionClient(
        f"{api.url}/ray", headers={"X-Tenant-Id": tenant, "X-Pool-Label": realnode.POOL_SELECTOR_LABEL}
    )


def _ray_job_ended(ray: JobSubmissionClient, submission_id: str) -> JobDetails:
    """The job's details once Ray's client sees it ended."""

    def ended() -> JobDetails | None:
        info = ray.get_job_info(submission_id)
        return info if info.status.is_terminal() else None

    return eventually(ended, timeout=BOUND, message=f"job {submission_id} to end")


def test_ray_uploads_a_working_dir_and_the_job_runs_it_on_the_node(
    real_api: ApiServer, real_kube: client.ApiClient, tmp_path: Path
) -> None:
    """`ray job submit --working-dir`: the real init container fetches the tenant's package
    with its Job's identity, through the relay, and the entrypoint runs in it."""
    (tmp_path / "script.py").write_text("print('hello from the package')\n")
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(
            entrypoint="python script.py", runtime_env={"working_dir": str(tmp_path)}
        )
        info = _ray_job_ended(ray, submission_id)
        assert info.status == JobStatus.SUCCEEDED, info.message
        assert ray.get_job_logs(submission_id).endswith(
            f"Running entrypoint for job {submission_id}: python script.py\nhello from the package\n"
        )
    finally:
        delete_tenant_namespace(real_kube, tenant)


def test_a_package_uploaded_through_one_replica_runs_a_job_submitted_through_another(
    real_api: ApiServer,
    real_cluster: LocalCluster,
    real_kube: client.ApiClient,
    workdir_root: Path,
    real_store: objectstore.Store,
    tmp_path: Path,
) -> None:
    """No shared volume: Ray's client uploads the working_dir through replica B (into the
    store), the job goes through replica A, whose package download (from the store) the
    real init container uses."""
    (tmp_path / "script.py").write_text("print('hello from the other replica')\n")
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    other = _api_replica("realnode-b", real_cluster, workdir_root, real_store)
    other.start()
    try:
        runtime_env: dict[str, Any] = {"working_dir": str(tmp_path)}
        _ray_client(other, tenant)._upload_working_dir_if_needed(runtime_env)
    finally:
        other.stop()
    assert runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    assert not list(other.package_dir.rglob("_ray_pkg_*"))  # kept in the store, not on B's disk
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(entrypoint="python script.py", runtime_env=runtime_env)
        info = _ray_job_ended(ray, submission_id)
        assert info.status == JobStatus.SUCCEEDED, info.message
        assert ray.get_job_logs(submission_id).endswith("hello from the other replica\n")
    finally:
        delete_tenant_namespace(real_kube, tenant)


def test_ray_uploads_py_modules_and_the_job_imports_them_on_the_node(
    real_api: ApiServer, real_kube: client.ApiClient, tmp_path: Path
) -> None:
    """Ray's `py_modules`: a local directory (uploaded zipped, the directory inside) is on
    the entrypoint's PYTHONPATH; a local wheel (uploaded as it is) is installed by pip, and
    so is `pip`'s requirement (from the deployment's index)."""
    module = tmp_path / "test_module"
    module.mkdir()
    (module / "__init__.py").write_text("GREETING = 'hello from a py_module'\n")
    wheel_name, wheel_bytes = archives.wheel(
        "jobgate-wheeled", "1.0", {"wheeled.py": "WORD = 'and a wheel'\n"}
    )
    (tmp_path / wheel_name).write_bytes(wheel_bytes)
    entrypoint = (
        "python3 -c 'import test_module, wheeled, jobgate_hello as h; "
        "print(test_module.GREETING, wheeled.WORD, h.GREETING)'"
    )
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(
            entrypoint=entrypoint,
            runtime_env={
                "py_modules": [str(module), str(tmp_path / wheel_name)],
                "pip": ["jobgate-hello==1.0"],
            },
        )
        info = _ray_job_ended(ray, submission_id)
        assert info.status == JobStatus.SUCCEEDED, info.message
        assert ray.get_job_logs(submission_id).endswith("hello from a py_module and a wheel hello from pip\n")
        uris = info.runtime_env["py_modules"]  # as Ray's client sent them: its package URIs
        assert uris[0].startswith("gcs://_ray_pkg_")
        assert uris[1] == f"gcs://{wheel_name}"
    finally:
        delete_tenant_namespace(real_kube, tenant)


@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # inside Ray's client
def test_a_job_that_ends_at_once_shows_its_output_once_tailed_and_read(
    real_api: ApiServer, real_kube: client.ApiClient
) -> None:
    """`ray job submit -- echo hello` tails the log of a job that may be over before the
    tail begins: each line once, the tail and the final read alike."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(entrypoint="echo hello")

        async def tail() -> str:
            return "".join([lines async for lines in ray.tail_job_logs(submission_id)])

        whole = f"Runtime env is setting up.\nRunning entrypoint for job {submission_id}: echo hello\nhello\n"
        assert asyncio.run(asyncio.wait_for(tail(), BOUND)) == whole
        assert ray.get_job_status(submission_id) == JobStatus.SUCCEEDED
        assert ray.get_job_logs(submission_id) == whole
    finally:
        delete_tenant_namespace(real_kube, tenant)


def test_both_dialects_say_why_a_job_could_not_start(
    real_api: ApiServer, real_kube: client.ApiClient
) -> None:
    """Ray's client sees Ray's own error type; the seed dialect the operator's reason."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(entrypoint="true", runtime_env={"image_uri": "Not:A:Valid:Name"})
        info = _ray_job_ended(ray, submission_id)
        assert (info.status, info.error_type) == (JobStatus.FAILED, "RUNTIME_ENV_SETUP_FAILURE")
        assert "image Not:A:Valid:Name cannot be used (InvalidImageName)" in (info.message or "")
        with real_api.client(tenant) as seed:
            job = seed.get(f"/api/jobs/{submission_id}").json()
        assert (job["status"], job["error_type"]) == ("FAILED", "StartFailed")
        # Ray's words for a runtime env that could not be set up, then the same reason.
        assert (
            info.message
            == f"runtime_env setup failed: Failed to set up runtime environment.\n{job['message']}"
        )
    finally:
        delete_tenant_namespace(real_kube, tenant)


# -- logs outlive their pods: the operator archives them in the object store -------------------


def _archived(store: objectstore.Store, key: str) -> bytes | None:
    """The archived log under `key` (relative to the deployment's prefix), if it is there."""
    try:
        answer = store.client().get_object(Bucket=store.bucket, Key=policy.DEFAULT_S3_PREFIX + key)
    except botocore.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    data: bytes = answer["Body"].read()
    return data


def _archive_keys(store: objectstore.Store, folder: str) -> list[str]:
    listed = store.client().list_objects_v2(Bucket=store.bucket, Prefix=policy.DEFAULT_S3_PREFIX + folder)
    return [item["Key"] for item in listed.get("Contents", ())]


def _delete_pod_for_good(kube: client.ApiClient, namespace: str, name: str) -> None:
    """Delete the pod at once (if it is not gone already), and wait until it is gone."""
    core = client.CoreV1Api(kube)
    with contextlib.suppress(client.exceptions.NotFoundException):
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def absent() -> bool:
        try:
            core.read_namespaced_pod(name, namespace)
        except client.ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    eventually(absent, timeout=BOUND, message=f"pod {name} to be gone")


def _job_of(kube: client.ApiClient, tenant: str, submission_id: str) -> dict[str, Any]:
    job: dict[str, Any] = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        models.GROUP,
        models.VERSION,
        names.tenant_namespace(tenant, prefix=names.DEFAULT_NAMESPACE_PREFIX),
        models.PLURAL,
        names.job_name(submission_id),
    )
    return job


def _log_key(job: dict[str, Any], attempt: int = 1) -> str:
    meta = job["metadata"]
    return names.log_key(meta["namespace"], meta["name"], meta["uid"], attempt)


def test_a_jobs_log_outlives_its_pod_the_same_in_both_dialects(
    real_api: ApiServer, real_kube: client.ApiClient, real_store: objectstore.Store
) -> None:
    """Read before and after its pod is deleted: the same bytes, through Ray's client and
    the seed dialect; the Job's status says where the archive is."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(entrypoint="for i in 1 2 3; do echo line $i; done")
        assert _ray_job_ended(ray, submission_id).status == JobStatus.SUCCEEDED
        with real_api.client(tenant) as seed:

            def both() -> tuple[str, str]:
                answer = seed.get(f"/api/jobs/{submission_id}/logs")
                assert answer.status_code == 200, answer.text
                return ray.get_job_logs(submission_id), answer.json()["logs"]

            before = both()
            assert before[0].endswith("line 1\nline 2\nline 3\n")
            job = _job_of(real_kube, tenant, submission_id)
            meta = job["metadata"]
            folder = names.log_folder(meta["namespace"], meta["name"], meta["uid"])
            assert job["status"]["logRef"] == f"s3://{real_store.bucket}/{policy.DEFAULT_S3_PREFIX}{folder}"
            eventually(lambda: _archived(real_store, _log_key(job)), message="the log to be archived")
            _delete_pod_for_good(real_kube, meta["namespace"], job["status"]["podName"])
            assert both() == before
    finally:
        delete_tenant_namespace(real_kube, tenant)


@pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # inside Ray's client
def test_a_stopped_jobs_tail_and_archive_end_with_its_last_lines(
    real_api: ApiServer, real_kube: client.ApiClient, real_store: objectstore.Store
) -> None:
    """`ray job stop` while `ray job logs --follow` runs: the tail ends with what the job
    printed on its way out, not an error; the archive (followed from before the pod's
    delete) has it too, and serves it once the pod is gone."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    entrypoint = "trap 'echo stopped at last; exit 143' TERM; echo started; while :; do sleep 0.2; done"
    try:
        submission_id = ray.submit_job(entrypoint=entrypoint)

        async def tail_and_stop() -> str:
            seen, stopped = "", False
            async for lines in ray.tail_job_logs(submission_id):
                seen += lines
                if "started" in seen and not stopped:
                    stopped = await asyncio.to_thread(ray.stop_job, submission_id)
            return seen

        tailed = asyncio.run(asyncio.wait_for(tail_and_stop(), BOUND))
        assert tailed.endswith("started\nstopped at last\n")
        assert _ray_job_ended(ray, submission_id).status == JobStatus.STOPPED
        job = _job_of(real_kube, tenant, submission_id)
        archived = eventually(lambda: _archived(real_store, _log_key(job)), message="the log to be archived")
        assert archived == b"started\nstopped at last\n"
        _delete_pod_for_good(real_kube, job["metadata"]["namespace"], job["status"]["podName"])
        assert ray.get_job_logs(submission_id) == tailed
    finally:
        delete_tenant_namespace(real_kube, tenant)


TTL = 10  # seconds: time enough to see the Job finished and its log archived before it goes


def test_a_deleted_jobs_archive_goes_with_it_by_the_api_a_ttl_or_the_sweep(
    real_api: ApiServer, real_kube: client.ApiClient, real_namespace: str, real_store: objectstore.Store
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ray = _ray_client(real_api, tenant)
    try:
        submission_id = ray.submit_job(entrypoint="echo bye")
        assert _ray_job_ended(ray, submission_id).status == JobStatus.SUCCEEDED
        job = _job_of(real_kube, tenant, submission_id)
        eventually(lambda: _archived(real_store, _log_key(job)), message="the log to be archived")
        assert ray.delete_job(submission_id)
        meta = job["metadata"]
        assert _archive_keys(real_store, names.log_folder(meta["namespace"], meta["name"], meta["uid"])) == []
    finally:
        delete_tenant_namespace(real_kube, tenant)
    # A Job's TTL: the operator deletes it, and its archive (archived first, as it ended).
    name = _create_job(real_kube, real_namespace, entrypoint="echo bye", ttlSecondsAfterFinished=TTL)
    job = _finished_job(real_kube, real_namespace, name)
    folder = names.log_folder(real_namespace, name, job["metadata"]["uid"])
    eventually(lambda: _archived(real_store, _log_key(job)), message="the log to be archived")
    eventually(
        lambda: _archive_keys(real_store, folder) == [], timeout=BOUND, message="the TTL to take the archive"
    )
    # A Job deleted while no operator looked (here: never existed): the sweep removes its logs.
    orphan = names.log_key(real_namespace, "gone", str(uuid.uuid4()), 1)
    real_store.client().put_object(Bucket=real_store.bucket, Key=policy.DEFAULT_S3_PREFIX + orphan, Body=b"x")
    eventually(lambda: _archived(real_store, orphan) is None, timeout=BOUND, message="the sweep to remove it")


def test_each_attempt_of_a_retried_job_has_its_own_archived_log(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None, real_store: objectstore.Store
) -> None:
    """Three attempts, each failing: three logs, each its own pod's (the pod's name is its
    host name), kept after the pods are gone."""
    name = _create_job(
        real_kube, real_namespace, entrypoint="echo attempt on $(hostname); exit 1", maxAttempts=3
    )
    job = _finished_job(real_kube, real_namespace, name)
    assert (job["status"]["state"], job["status"]["attempts"]) == ("FAILED", 3)
    for attempt in (1, 2, 3):
        archived = eventually(
            lambda attempt=attempt: _archived(real_store, _log_key(job, attempt)),
            message=f"attempt {attempt}'s log to be archived",
        )
        assert archived == f"attempt on {names.pod_name(name, attempt)}\n".encode()


def test_logs_of_jobs_that_end_while_the_store_is_down_are_archived_once_it_is_back(
    real_cluster: LocalCluster,
    real_kube: client.ApiClient,
    real_namespace: str,
    real_operator: None,
    real_store: objectstore.Store,
) -> None:
    """20 jobs end with the store killed: each is SUCCEEDED on time, and each log is archived,
    whole, once the store is back (the operator retries with back-off)."""
    real_cluster.kill(real_store.name)
    try:
        created = [_create_job(real_kube, real_namespace, entrypoint=f"echo job {i}") for i in range(20)]
        ended = [_finished_job(real_kube, real_namespace, name) for name in created]
        assert {job["status"]["state"] for job in ended} == {"SUCCEEDED"}
    finally:
        real_cluster.restart(real_store.name, wait=False)
        objectstore.await_writable(real_cluster, real_store)
    for i, job in enumerate(ended):
        archived = eventually(
            lambda job=job: _archived(real_store, _log_key(job)),
            timeout=BOUND,
            message="the log to be archived",
        )
        assert archived == f"job {i}\n".encode()
