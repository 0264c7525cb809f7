"""The `X-Pool-Label` header: node label keys (or `key=value`), comma-separated (pure)."""

from __future__ import annotations

import re

from jobgate.crds import models


def parse(header: str) -> tuple[str, ...]:
    """The labels of a header value, in order; whitespace around them is trimmed.

    Empty items are skipped. Flags such as `unUseAntiOtherLabels` are kept: the operator
    knows them and does not turn them into affinity. ValueError names a bad item.
    """
    labels = tuple(label.strip() for label in header.split(",") if label.strip())
    for label in labels:
        if not re.fullmatch(models.POOL_LABEL_PATTERN, label):
            raise ValueError(
                f"{label!r} is not a node label key (like pool-gpu or example.com/pool) or key=value"
            )
    return labels
