"""Log lines as JSON, naming the job being handled (jobgate.core.logs)."""

from __future__ import annotations

import json
import logging

import pytest

from jobgate.core import jobs, logs
from jobgate.crds import policy
from jobgate.operator import config


def _line(logger: logging.Logger, message: str, *args: object) -> dict[str, object]:
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, message, args, None)
    parsed: dict[str, object] = json.loads(logs.JsonFormatter().format(record))
    return parsed


def test_a_line_in_a_job_scope_names_the_job_and_bind_adds_fields() -> None:
    logger = logging.getLogger("test")
    assert "job" not in _line(logger, "outside")
    with logs.job_scope(job="ns/app-1"):
        logs.bind(submission_id="app-1")
        line = _line(logger, "created pod %s", "p\n1")
    assert line["message"] == "created pod p\n1"  # one line: JSON escapes the newline
    assert (line["job"], line["submission_id"], line["level"], line["logger"]) == (
        "ns/app-1",
        "app-1",
        "INFO",
        "test",
    )
    logs.bind(job="nothing happens outside a scope")
    assert "job" not in _line(logger, "after")


def test_per_job_opens_a_scope_around_each_handling() -> None:
    seen: list[dict[str, object]] = []
    handle = logs.per_job(lambda key, trigger: seen.append(_line(logging.getLogger("w"), "handled")))
    handle(jobs.JobRef(namespace="tenant-ns", name="app-2", uid="u"), None)
    assert seen[0]["job"] == "tenant-ns/app-2"


@pytest.mark.parametrize(
    ("value", "expected"), [("", logs.Format.TEXT), ("JSON", logs.Format.JSON), ("text", logs.Format.TEXT)]
)
def test_the_format_comes_from_the_environment(
    value: str, expected: logs.Format, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBGATE_LOG_FORMAT", value)
    assert policy.load(config.Config).log_format is expected


def test_an_unknown_format_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBGATE_LOG_FORMAT", "xml")
    with pytest.raises(policy.SettingsError, match="JOBGATE_LOG_FORMAT='xml': "):
        policy.load(config.Config)
