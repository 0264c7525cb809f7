"""Job spec -> pod manifest: a pure function, the whole of what a job's pod looks like.

The pod runs the entrypoint through `sh -c` in the working directory, after init containers
fetched the working_dir and each py_module (see `workdir`) and another installed the pip
requirements (and the py_modules' wheels) into the job's own directory.
It asks for exactly the job's resources (requests = limits, see `resources`), lands on a
node of one of the job's pools (see `node_affinity`), never restarts, runs as an ordinary
user (`JOBGATE_JOB_USER`) with no Linux capability and no service-account token, and is
owned by its Job (deleting the Job deletes the pod).
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

from jobgate.core import jobs
from jobgate.crds import fetch_working_dir, models, names, policy, profiles, validation, workdir

MAIN_CONTAINER: Final = "job"
FETCH_CONTAINER: Final = "fetch-working-dir"
WORKSPACE: Final = "/jobgate"  # an emptyDir: the working directory and pip's requirements file
WORKING_DIR: Final = f"{WORKSPACE}/working_dir"
_WORKSPACE_VOLUME: Final = "jobgate"
SOURCE_VOLUME: Final = "working-dir-source"

PY_MODULES: Final = f"{WORKSPACE}/py_modules"  # py_modules[i] is unpacked into PY_MODULES/i
WHEELS: Final = f"{WORKSPACE}/wheels"  # the py_modules that are wheels, as fetched, for pip
_PY_MODULE_CONTAINER: Final = "fetch-py-module-"

PACKAGE_PATIENCE: Final = 60  # seconds an uploaded package's download is tried again
INSTALL_CONTAINER: Final = "install-requirements"
SITE_PACKAGES: Final = f"{WORKSPACE}/site-packages"  # the job's own: pip installs there, Python finds it
# $1 is the entrypoint: data, never spliced into the script. The console scripts pip
# installed (runtime_env.pip) come before the image's own PATH.
RUN_SCRIPT: Final = f"""\
if [ -d {SITE_PACKAGES}/bin ]; then PATH="{SITE_PACKAGES}/bin:$PATH"; export PATH; fi
exec /bin/sh -c "$1"
"""
# $1 the pip requirements, one per line as in a requirements file (so options such as
# --extra-index-url work too). Into the job's own directory (--target), not the image's
# Python (Debian's refuses: PEP 668), in an init container: a failure is the runtime
# environment's, and its last lines say why (terminationMessagePolicy).
INSTALL_SCRIPT: Final = f"""\
printf '%s\\n' "$1" > {WORKSPACE}/requirements.txt
exec python3 -m pip install --no-cache-dir --disable-pip-version-check --no-warn-script-location \\
  --no-input --progress-bar off --target {SITE_PACKAGES} -r {WORKSPACE}/requirements.txt
"""
# The init container runs the module's own source (stdlib only), so it needs no jobgate install.
FETCH_SCRIPT: Final = pathlib.Path(fetch_working_dir.__file__).read_text()


# Every container of a job: no privilege to gain (setuid binaries, file capabilities), no
# capability at all (raw sockets, chown, mknod, ...), and the runtime's default seccomp
# filter (`_pod_security`: as the deployment's ordinary user, not the image's, root).
def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "privileged": False}


# Most images have no home for the job's user (it would be /, which it cannot write).
JOB_HOME: Final = "/tmp"


def _pod_security(user: int | None) -> dict[str, Any]:
    """The pod's security context: as `user` (uid and gid; its volumes' group too), or as
    the image's own user when None (a profile's `runAsImageUser`). Either way meets the
    `baseline` Pod Security Standard; as `user`, `restricted` too."""
    security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if user is not None:
        security |= {
            "runAsNonRoot": True,
            "runAsUser": user,
            "runAsGroup": user,
            "fsGroup": user,
            "fsGroupChangePolicy": "OnRootMismatch",  # a large claim volume is not walked each time
        }
    return security


# Preferred weights of pool labels, first to last; from the tenth label on they all weigh 10.
_FIRST_WEIGHT: Final = 100
_WEIGHT_STEP: Final = 10
_ANNOTATION_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def render_pod(
    *, job: jobs.JobRef, spec: models.JobSpec, attempt: int, config: policy.JobPolicy, created_at: str
) -> dict[str, Any]:
    """The pod of a job's attempt (1, 2, ...), made at `created_at` (RFC 3339).

    Raises `SpecError` when the spec cannot run here."""
    checked = validation.check_spec(spec, rules=config, namespace=job.namespace)
    quantities, source = checked.quantities, checked.source
    profile = profiles.for_job(config.pod_profiles, spec, quantities)
    image = spec.runtime_env.image_uri or profile.image or config.image
    user = None if profile.run_as_image_user else config.job_user
    job_env = dict(spec.runtime_env.env_vars)
    if user is not None:
        job_env.setdefault("HOME", JOB_HOME)
    env = dict(job_env)
    requirements = [
        *spec.runtime_env.pip,
        *(f"{WHEELS}/{module.wheel}" for module in checked.modules if module.wheel),
    ]
    # The py_modules first (as Ray puts them), then what pip installed (its console scripts
    # are on PATH too: see RUN_SCRIPT), then the job's own.
    python_path = [
        f"{PY_MODULES}/{index}" for index, module in enumerate(checked.modules) if not module.wheel
    ]
    python_path += [SITE_PACKAGES] if requirements else []
    if python_path:
        env["PYTHONPATH"] = ":".join(filter(None, (*python_path, env.get("PYTHONPATH"))))
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", RUN_SCRIPT, "jobgate", spec.entrypoint],
        "env": [{"name": name, "value": value} for name, value in env.items()],
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
        "securityContext": _pod_security(user),
        "containers": [container],
        "volumes": [{"name": _WORKSPACE_VOLUME, "emptyDir": {}}],
    }
    init: list[dict[str, Any]] = []
    if source:
        container["workingDir"] = WORKING_DIR
        init.append(
            _fetch_container(
                source, name=FETCH_CONTAINER, dest=WORKING_DIR, job=job, quantities=quantities, config=config
            )
        )
    for index, module in enumerate(checked.modules):
        dest = WHEELS if module.wheel else f"{PY_MODULES}/{index}"
        init.append(
            _fetch_container(
                module,
                name=py_module_container(index),
                dest=dest,
                job=job,
                quantities=quantities,
                config=config,
            )
        )
    # One node directory (the tenant's file:// root) serves every file:// source.
    if host_path := next((s.host_path for s in (source, *checked.modules) if s and s.host_path), None):
        pod_spec["volumes"].append(
            {"name": SOURCE_VOLUME, "hostPath": {"path": host_path, "type": "Directory"}}
        )
    if requirements:
        init.append(
            _install_container(
                requirements,
                image=image,
                env=job_env,
                quantities=quantities,
                config=config,
            )
        )
    if init:
        pod_spec["initContainers"] = init
    if affinity := node_affinity(spec.pool_labels):
        pod_spec["affinity"] = affinity
    _apply_profile(profile, pod_spec=pod_spec, container=container)
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


def _apply_profile(
    profile: profiles.PodProfile, *, pod_spec: dict[str, Any], container: dict[str, Any]
) -> None:
    """What the cluster operator adds to the pods of the job's pools and resources (`profiles`)."""
    if profile.tolerations:
        pod_spec["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in profile.tolerations
        ]
    if profile.node_selector:
        pod_spec["nodeSelector"] = dict(profile.node_selector)
    optional = {
        "priorityClassName": profile.priority_class_name,
        "runtimeClassName": profile.runtime_class_name,
        "serviceAccountName": profile.service_account_name,  # its token stays unmounted
    }
    pod_spec.update({key: value for key, value in optional.items() if value})
    if profile.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in profile.image_pull_secrets]
    if profile.shm_size:
        # In memory, so it counts toward the container's memory limit, as the job's own pages do.
        pod_spec["volumes"].append(
            {"name": profiles.SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": profile.shm_size}}
        )
        container["volumeMounts"].append({"name": profiles.SHM_VOLUME, "mountPath": profiles.SHM_PATH})
    for volume in profile.volumes:
        pod_spec["volumes"].append(
            {
                "name": volume.name,
                "persistentVolumeClaim": {"claimName": volume.claim_name, "readOnly": volume.read_only},
            }
        )
        container["volumeMounts"].append(
            {"name": volume.name, "mountPath": volume.mount_path, "readOnly": volume.read_only}
        )


def py_module_container(index: int) -> str:
    """The init container that fetches `py_modules[index]`."""
    return f"{_PY_MODULE_CONTAINER}{index}"


def setup_failure(container: str) -> str | None:
    """What the failure of this init container of a job's pod means (None: it sets nothing up)."""
    if container == FETCH_CONTAINER:
        return "the working_dir could not be fetched"
    if container == INSTALL_CONTAINER:
        return "runtime_env.pip could not be installed"
    index = container.removeprefix(_PY_MODULE_CONTAINER)
    if container.startswith(_PY_MODULE_CONTAINER) and index.isdigit():
        return f"runtime_env.py_modules[{index}] could not be fetched"
    return None


def fetches(container: str) -> bool:
    """Whether the container is one that fetches the working_dir or a py_module (the fetch image's)."""
    return container == FETCH_CONTAINER or container.startswith(_PY_MODULE_CONTAINER)


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
    source: workdir.Source,
    *,
    name: str,
    dest: str,
    job: jobs.JobRef,
    quantities: Mapping[str, str],
    config: policy.JobPolicy,
) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [{"name": _WORKSPACE_VOLUME, "mountPath": WORKSPACE}]
    within = []
    if source.host_path:
        mounts.append({"name": SOURCE_VOLUME, "mountPath": workdir.MOUNTED_SOURCE, "readOnly": True})
        within = ["--within", workdir.MOUNTED_SOURCE]  # the path must resolve inside the root
    strip = ["--strip-top-dir"] if source.strip_top_dir else []
    # A package's server, one API replica of several, may not have seen the Job yet.
    patience = ["--patience", str(PACKAGE_PATIENCE)] if source.package else []
    limits = config.working_dir.unpack_limits
    bounds = ["--max-bytes", str(limits.max_bytes), "--max-entries", str(limits.max_entries)]
    field = [] if source.loc == workdir.LOC else ["--field", source.field]
    keep = ["--keep-file", source.wheel] if source.wheel else []
    return {
        "name": name,
        "image": config.fetch_image,
        "command": [
            "python3",
            "-c",
            FETCH_SCRIPT,
            source.for_job(namespace=job.namespace, name=job.name, uid=job.uid),
            dest,
            *strip,
            *within,
            *bounds,
            *patience,
            *field,
            *keep,
        ],
        # The same as the job's, so that the init container never raises the pod's request.
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "volumeMounts": mounts,
        "securityContext": _container_security(),
        # Its last log lines (it says why it failed, on stderr) become its termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _install_container(
    requirements: Sequence[str],
    *,
    image: str,
    env: Mapping[str, str],
    quantities: Mapping[str, str],
    config: policy.JobPolicy,
) -> dict[str, Any]:
    """pip, in the job's own image (its Python is the one the entrypoint runs), with the
    job's environment (a proxy, PIP_* settings), and the deployment's index over it.
    `requirements`: runtime_env.pip's, then the paths of the py_modules' wheels."""
    settings = dict(env)
    if config.pip_index_url:
        settings["PIP_INDEX_URL"] = config.pip_index_url
        parts = urllib.parse.urlsplit(config.pip_index_url)
        if parts.scheme == "http":  # pip ignores a plain-http index unless its host is trusted
            settings["PIP_TRUSTED_HOST"] = parts.netloc
    index = [{"name": name, "value": value} for name, value in settings.items()]
    return {
        "name": INSTALL_CONTAINER,
        "image": image,
        "command": ["/bin/sh", "-c", INSTALL_SCRIPT, "jobgate", "\n".join(requirements)],
        "env": index,
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "volumeMounts": [{"name": _WORKSPACE_VOLUME, "mountPath": WORKSPACE}],
        "securityContext": _container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
