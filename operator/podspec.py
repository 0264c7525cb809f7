"""Job spec -> pod manifest: a pure function, the whole of what a job's pod looks like.

The pod runs the entrypoint through `sh -c` in the working directory, after an init
container fetched the working_dir (see `workdir`) and after pip installed the requirements.
It asks for exactly the job's resources (requests = limits, see `resources`), lands on a
node of one of the job's pools (see `node_affinity`), never restarts, gets no
service-account token and no Linux capability, and is owned by its Job (deleting the Job
deletes the pod).
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from jobgate.core import jobs
from jobgate.crds import fetch_working_dir, models, names, policy, validation, workdir

MAIN_CONTAINER: Final = "job"
FETCH_CONTAINER: Final = "fetch-working-dir"
WORKSPACE: Final = "/jobgate"  # an emptyDir: the working directory and pip's requirements file
WORKING_DIR: Final = f"{WORKSPACE}/working_dir"
_WORKSPACE_VOLUME: Final = "jobgate"
SOURCE_VOLUME: Final = "working-dir-source"

# $1 is the entrypoint, $2 the pip requirements (one per line, as in a requirements file, so
# that options like --index-url work too). Both are data, never spliced into the script.
RUN_SCRIPT: Final = f"""\
if [ -n "$2" ]; then
  printf '%s\\n' "$2" > {WORKSPACE}/requirements.txt
  python3 -m pip install --no-cache-dir --disable-pip-version-check -r {WORKSPACE}/requirements.txt || exit
fi
exec /bin/sh -c "$1"
"""
# The init container runs the module's own source (stdlib only), so it needs no jobgate install.
FETCH_SCRIPT: Final = pathlib.Path(fetch_working_dir.__file__).read_text()


# Every container of a job: no privilege to gain (setuid binaries, file capabilities), no
# capability at all (raw sockets, chown, mknod, ...), and the runtime's default seccomp
# filter. The image's user stays: most job images run as root, which these make ordinary.
def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False}


# Preferred weights of pool labels, first to last; from the tenth label on they all weigh 10.
_FIRST_WEIGHT: Final = 100
_WEIGHT_STEP: Final = 10
_ANNOTATION_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def render_pod(
    *, job: jobs.JobRef, spec: models.JobSpec, attempt: int, config: policy.JobPolicy, created_at: str
) -> dict[str, Any]:
    """The pod of a job's attempt (1, 2, ...), made at `created_at` (RFC 3339).

    Raises `SpecError` when the spec cannot run here."""
    checked = validation.check_spec(spec, rules=config)
    quantities, source = checked.quantities, checked.source
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": spec.runtime_env.image_uri or config.image,
        "command": ["/bin/sh", "-c", RUN_SCRIPT, "jobgate", spec.entrypoint, "\n".join(spec.runtime_env.pip)],
        "env": [{"name": name, "value": value} for name, value in spec.runtime_env.env_vars.items()],
        "resources": {"requests": quantities, "limits": quantities},
        "volumeMounts": [{"name": _WORKSPACE_VOLUME, "mountPath": WORKSPACE}],
        "securityContext": _container_security(),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # no service env vars mixed into the job's environment
        # The pod's pause process is then PID 1, not the job's shell: the kernel ignores
        # SIGTERM sent to a PID 1 without a handler, so without this a stop would always
        # wait out the whole grace period and end in SIGKILL.
        "shareProcessNamespace": True,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": _WORKSPACE_VOLUME, "emptyDir": {}}],
    }
    if source:
        container["workingDir"] = WORKING_DIR
        pod_spec["initContainers"] = [_fetch_container(source, job=job, quantities=quantities, config=config)]
        if source.host_path:
            pod_spec["volumes"].append(
                {
                    "name": SOURCE_VOLUME,
                    "hostPath": {"path": source.host_path, "type": "Directory"},
                }
            )
    if affinity := node_affinity(spec.pool_labels):
        pod_spec["affinity"] = affinity
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": names.pod_name(job.name, attempt),
            "namespace": job.namespace,
            "labels": _labels(job=job, spec=spec, attempt=attempt),
            "annotations": {**_annotations(job=job, spec=spec), models.ANNOTATION_CREATED_AT: created_at},
            "ownerReferences": [
                {
                    "apiVersion": models.API_VERSION,
                    "kind": models.KIND,
                    "name": job.name,
                    "uid": job.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": pod_spec,
    }


def node_affinity(pool_labels: Sequence[str]) -> dict[str, Any] | None:
    """Required: the node carries at least one pool label; preferred: earlier labels first.

    A label is a node label key ("Exists"), or `key=value` ("In [value]"). Flags such as
    `unUseAntiOtherLabels` are not labels and are skipped. Preferences are written only
    when there are several labels to order (weights 100, 90, ..., then 10 for the rest).
    """
    labels = [label.strip() for label in pool_labels if label.strip() not in models.POOL_LABEL_FLAGS]
    requirements = [_requirement(label) for label in dict.fromkeys(labels) if label]
    if not requirements:
        return None
    affinity: dict[str, Any] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [requirement]} for requirement in requirements]
        }
    }
    if len(requirements) > 1:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {
                "weight": max(_FIRST_WEIGHT - _WEIGHT_STEP * index, _WEIGHT_STEP),
                "preference": {"matchExpressions": [requirement]},
            }
            for index, requirement in enumerate(requirements)
        ]
    return {"nodeAffinity": affinity}


def _requirement(label: str) -> dict[str, Any]:
    key, equals, value = label.partition("=")
    if equals:
        return {"key": key, "operator": "In", "values": [value]}
    return {"key": key, "operator": "Exists"}


def _labels(*, job: jobs.JobRef, spec: models.JobSpec, attempt: int) -> dict[str, str]:
    labels = {
        models.LABEL_JOB_NAME: names.label_value(job.name),
        models.LABEL_SUBMISSION_ID: names.label_value(spec.submission_id or job.name),
        models.LABEL_ATTEMPT: str(attempt),
    }
    if spec.tenant:
        labels[models.LABEL_TENANT] = names.label_value(spec.tenant)
    return labels


def _annotations(*, job: jobs.JobRef, spec: models.JobSpec) -> dict[str, str]:
    annotations = {models.ANNOTATION_SUBMISSION_ID: spec.submission_id or job.name}
    if spec.tenant:
        annotations[models.ANNOTATION_TENANT] = spec.tenant
    # Keys that cannot be an annotation's name are left out (they stay in the Job's spec).
    annotations.update(
        {
            models.METADATA_ANNOTATION_PREFIX + key: value
            for key, value in spec.metadata.items()
            if len(key) <= names.MAX_LABEL and _ANNOTATION_NAME.fullmatch(key)
        }
    )
    return annotations


def _fetch_container(
    source: workdir.Source, *, job: jobs.JobRef, quantities: Mapping[str, str], config: policy.JobPolicy
) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": _WORKSPACE_VOLUME, "mountPath": WORKSPACE}]
    within = []
    if source.host_path:
        mounts.append({"name": SOURCE_VOLUME, "mountPath": workdir.MOUNTED_SOURCE, "readOnly": True})
        within = ["--within", workdir.MOUNTED_SOURCE]  # the path must resolve inside the root
    strip = ["--strip-top-dir"] if source.strip_top_dir else []
    limits = config.working_dir.unpack_limits
    bounds = ["--max-bytes", str(limits.max_bytes), "--max-entries", str(limits.max_entries)]
    return {
        "name": FETCH_CONTAINER,
        "image": config.fetch_image,
        "command": [
            "python3",
            "-c",
            FETCH_SCRIPT,
            source.for_job(namespace=job.namespace, name=job.name, uid=job.uid),
            WORKING_DIR,
            *strip,
            *within,
            *bounds,
        ],
        # The same as the job's, so that the init container never raises the pod's request.
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "volumeMounts": mounts,
        "securityContext": _container_security(),
        # Its last log lines (it says why it failed, on stderr) become its termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
