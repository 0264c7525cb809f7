"""The `X-Pool-Label` header: node label keys (or `key=value`), comma-separated (pure)."""

from __future__ import annotations

import re
from typing import Final

from jobgate.crds import models

# A label key's prefix is a DNS subdomain: lengths the pattern does not bound (Kubernetes
# refuses the pod's node affinity beyond them, after the job was accepted).
_MAX_PREFIX: Final = 253
_MAX_DNS_LABEL: Final = 63


def parse(header: str) -> tuple[str, ...]:
    """The labels of a header value, in order; whitespace around them is trimmed.

    Empty items are skipped. Flags such as `unUseAntiOtherLabels` are kept: the operator
    knows them and does not turn them into affinity. ValueError names a bad item.
    """
    labels = tuple(label.strip() for label in header.split(",") if label.strip())
    for label in labels:
        prefix = label.partition("=")[0].rpartition("/")[0]
        too_long = len(prefix) > _MAX_PREFIX or any(len(part) > _MAX_DNS_LABEL for part in prefix.split("."))
        if too_long or not re.fullmatch(models.POOL_LABEL_PATTERN, label):
            raise ValueError(
                f"{label[:80]!r} is not a node label key (like pool-gpu or example.com/pool, a prefix of "
                f"at most {_MAX_PREFIX} characters) or key=value"
            )
    return labels
