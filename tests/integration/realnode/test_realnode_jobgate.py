"""jobgate Jobs on the real node: the operator (`python -m jobgate.operator`, run here as a
subprocess against the real-node cluster) turns Job resources with `poolLabels:
["real"]` into pods that really run: through a shell, in the working directory the
init container unpacked, with the job's env vars, and with its exit code, OOM kill and logs
reported as they happened. Nothing is faked."""

from __future__ import annotations

import asyncio
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
import pytest
import yaml
from apiprocess import ApiServer, delete_tenant_namespace
from kubernetes import client
from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient
from waiting import eventually

from jobgate.crds import models, names
from jobgate.devcluster import LocalCluster, nodeimages, realnode
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
    """Where file:// working dirs live on the node (the real node sees the host's files)."""
    return tmp_path_factory.mktemp("workdirs")


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


@pytest.fixture(scope="module")
def api_server(real_cluster: LocalCluster, workdir_root: Path) -> ApiServer:
    """The API on the real-node cluster (started by `real_api`), configured as the operator
    is; pods reach it through a relay at the node's address, on its port."""
    server = ApiServer(
        name="realnode",
        kubeconfig=real_cluster.kubeconfig,
        workdir=real_cluster.state_dir / "logs",
        env={"JOBGATE_FILE_URI_ROOT": str(workdir_root)},
    )
    server.env["JOBGATE_PACKAGE_BASE_URL"] = f"http://{realnode.NODE_IP}:{server.port}"
    return server


@pytest.fixture(scope="module")
def real_operator(
    real_cluster: LocalCluster,
    real_kube: client.ApiClient,
    workdir_root: Path,
    api_server: ApiServer,
    pip_index: str,
) -> Iterator[None]:
    """The operator, its jobs defaulting to the real node's image, file:// dirs enabled."""
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
    custom = client.CustomObjectsApi(kube)
    name = f"job-{uuid.uuid4().hex[:8]}"
    body = {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": name},
        "spec": {"poolLabels": [realnode.POOL_SELECTOR_LABEL], **spec},
    }
    custom.create_namespaced_custom_object(models.GROUP, models.VERSION, namespace, models.PLURAL, body)

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


def test_a_job_runs_without_capabilities_or_a_way_to_gain_privileges(
    real_kube: client.ApiClient, real_namespace: str, real_operator: None
) -> None:
    # Root in the image, but an ordinary user in effect: no capability, no_new_privs, and the
    # runtime's seccomp filter (mode 2). chown needs CAP_CHOWN, which root here has not.
    job = _run_job(
        real_kube,
        real_namespace,
        entrypoint="grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
        "touch /tmp/f && chown 1:1 /tmp/f || echo chown refused",
    )
    assert job["status"]["state"] == "SUCCEEDED", job["status"]
    logs = _job_log(real_kube, real_namespace, job)
    said = dict(line.split(":\t", 1) for line in logs.splitlines() if ":\t" in line)
    assert said == {
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
