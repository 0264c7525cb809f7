"""Small pure helpers on a Job's status: timestamps, conditions, and the patch between two."""

from __future__ import annotations

import datetime
from typing import Any

from jobgate.crds import models


def timestamp(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with milliseconds (the API reports milliseconds): 2025-01-02T03:04:05.678Z."""
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


def set_condition(
    status: models.JobStatus,
    *,
    kind: models.ConditionType,
    true: bool,
    reason: str,
    message: str,
    now: datetime.datetime,
    restart: bool = False,
) -> None:
    """Set a condition; its transition time moves only when its status flips (or on `restart`)."""
    value = models.ConditionStatus.TRUE if true else models.ConditionStatus.FALSE
    old = status.condition(kind)
    since = old.last_transition_time if old and old.status == value and not restart else timestamp(now)
    new = models.Condition(
        type=kind, status=value, reason=reason, message=message, last_transition_time=since
    )
    others = [c for c in status.conditions if c.type != kind]
    # In place when present, so that the list keeps its order (Scheduled before Finished).
    status.conditions = [new if c.type == kind else c for c in status.conditions] if old else [*others, new]


def patch(old: models.JobStatus, new: models.JobStatus) -> dict[str, Any]:
    """A JSON merge patch taking `old` to `new` (top-level fields; None deletes a field)."""
    before = old.model_dump(by_alias=True, mode="json")
    after = new.model_dump(by_alias=True, mode="json")
    return {key: value for key, value in after.items() if before.get(key) != value}
