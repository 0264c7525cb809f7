"""Names of the objects jobgate makes, and label values: one rule for making any text fit.

Kubernetes bounds names and label values in length and characters. A text that fits is
used as it is; one that does not becomes a readable part of it plus a hash of the whole
text (`bounded`), so that two different texts never share a name. Every derived name goes
through here: the Job's name for a submission id, an attempt's pod, label values, and a
tenant's namespace (`tenant_namespace`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

MAX_NAME: Final = 253  # a DNS subdomain: most objects' names
MAX_LABEL: Final = 63  # a DNS label (namespaces) and a label value
DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_NOT_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DIGEST: Final = 8


def bounded(
    text: str,
    *,
    limit: int,
    fits: re.Pattern[str] | None,
    readable: str,
) -> str:
    """`text` if `fits` matches it whole within `limit` characters; else the start of
    `readable` (text in the allowed characters), a dash and a hash of `text`
    (`fits` None: always the hashed form)."""
    if fits is not None and len(text) <= limit and fits.fullmatch(text):
        return text
    hashed = digest(text)
    start = readable[: limit - 1 - len(hashed)].strip("-_.")
    return f"{start}-{hashed}" if start else hashed


def digest(text: str, *, length: int = _DIGEST) -> str:
    """The hash that keeps a shortened name unique: hex of sha256 of the whole text."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


DEFAULT_NAMESPACE_PREFIX: Final = "jobgate-t-"
_TENANT_HASH: Final = 12


def tenant_namespace(tenant: str, *, prefix: str) -> str:
    """The namespace of the tenant's jobs: `<prefix><tenant>` (`jobgate-t-acme`) when the
    tenant id is a DNS label that fits, else `<prefix><readable part>--<12 hex of
    sha256(tenant)>` (`ACME Corp` -> `jobgate-t-acme-corp--27de7f296039`). A readable name
    never holds `--`, a hashed one always does: two tenants never share a namespace."""
    if "--" not in tenant and DNS_LABEL.fullmatch(tenant) and len(prefix + tenant) <= MAX_LABEL:
        return prefix + tenant
    hashed = digest(tenant, length=_TENANT_HASH)
    room = MAX_LABEL - len(prefix) - len(hashed) - 2
    readable = re.sub(r"[^a-z0-9]+", "-", tenant.lower())[:room].strip("-")
    return f"{prefix}{readable}--{hashed}"


def job_name(submission_id: str) -> str:
    """The Job object's name for a submission id.

    Seed ids (`[a-z0-9-]`, starting and ending alphanumeric) are used as they are. Ray's
    (`raysubmit_AbC…`) are lower-cased with `_` turned to `-`, plus a hash of the id, so that
    two ids differing only in case or `_` never share a name.
    """
    return bounded(
        submission_id, limit=MAX_LABEL, fits=DNS_LABEL, readable=_NOT_DNS.sub("-", submission_id.lower())
    )


def pod_name(job_name: str, attempt: int) -> str:
    """The pod of an attempt: `<job>-<attempt>`, the same every time, so that creating it is
    idempotent; the attempt is all digits, so two jobs' pod names never collide."""
    suffix = f"-{attempt}"
    if len(job_name) + len(suffix) <= MAX_NAME:
        return job_name + suffix
    return bounded(job_name, limit=MAX_NAME - len(suffix), fits=None, readable=job_name) + suffix


def label_value(text: str) -> str:
    """`text` when it is a valid label value, else a readable prefix plus a hash of it."""
    return bounded(text, limit=MAX_LABEL, fits=_LABEL_VALUE, readable=_NOT_LABEL_VALUE.sub("-", text))


# -- the object store's keys (under the deployment's JOBGATE_S3_PREFIX) ---------------------

LOGS: Final = "logs/"  # every archived log's key starts so


def log_folder(namespace: str, job: str, uid: str) -> str:
    """Where a Job's archived logs are: `logs/<namespace>/<job>/<uid>/`, one object per
    attempt. The uid keeps a namesake (the Job deleted and created again) apart."""
    return f"{LOGS}{namespace}/{job}/{uid}/"


def log_key(namespace: str, job: str, uid: str, attempt: int) -> str:
    """An attempt's archived log: `<folder>/<attempt>.log`."""
    return f"{log_folder(namespace, job, uid)}{attempt}.log"


def log_owner_uid(key: str) -> str | None:
    """The uid of the Job whose archived log `key` is (None: not such a key)."""
    parts = key.removeprefix(LOGS).split("/") if key.startswith(LOGS) else []
    return parts[2] if len(parts) == 4 and all(parts) else None
