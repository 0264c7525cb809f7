"""What a failed attempt leads to: the job's podFailurePolicy, and the back-off (pure).

As batch/v1's Job: the rules are matched in order, the first that matches decides, and a
failure that none matches is retried. Exit-code rules look at the entrypoint's exit code
only (a working_dir that could not be fetched, an evicted or lost pod have none); pod
condition rules at the failed pod's conditions as last seen (the apiserver sets
DisruptionTarget on a pod it evicts, preempts or drains).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final

from jobgate.crds import models
from jobgate.operator import pods

# Between a failed attempt and the next: the base doubled per counted failure, at most this
# (the Job controller's 10 s and 6 min).
MAX_BACKOFF: Final = datetime.timedelta(minutes=6)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Verdict:
    action: models.RetryAction
    rule: int | None  # the rule that matched (1-based); None: no rule did


def verdict(policy: models.PodFailurePolicy | None, outcome: pods.Outcome) -> Verdict:
    for number, rule in enumerate(policy.rules if policy else (), start=1):
        if _matches(rule, outcome):
            return Verdict(action=rule.action, rule=number)
    return Verdict(action=models.RetryAction.RETRY, rule=None)


def backoff(counted_failures: int, *, base_seconds: float) -> datetime.timedelta:
    """How long to wait before the next attempt, after `counted_failures` (>= 1)."""
    if base_seconds <= 0:
        return datetime.timedelta()
    doubled = base_seconds * 2 ** min(max(counted_failures - 1, 0), 16)
    return min(datetime.timedelta(seconds=doubled), MAX_BACKOFF)


def _matches(rule: models.PodFailureRule, outcome: pods.Outcome) -> bool:
    if rule.on_exit_codes is not None:
        if outcome.reason != models.Reason.FAILED or outcome.exit_code is None:
            return False
        listed = outcome.exit_code in rule.on_exit_codes.values
        return listed if rule.on_exit_codes.operator == models.ExitCodeOperator.IN else not listed
    return any(
        outcome.conditions.get(wanted.type) == wanted.status for wanted in rule.on_pod_conditions or ()
    )
