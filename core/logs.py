"""Log lines as text (the default) or as one JSON object per line (`JOBGATE_LOG_FORMAT=json`).

Both processes use it: the operator and the API. A JSON line is

    {"time": "2025-01-02T03:04:05.678Z", "level": "INFO", "logger": "...", "message": "...",
     "job": "<namespace>/<name>"}                  # the operator, while it handles a job
     "submission_id": "<id>"                       # the API, in a request about one job
     "exception": "Traceback ..."                  # when there is one

The job's fields come from a context variable set around the work on one job (`job_scope`),
so every line written meanwhile carries them, whichever module writes it: the operator's own
lines, kopf's, uvicorn's access line, and lines of threads started with `asyncio.to_thread`
(which copies the context). Nothing has to pass the id down to each logging call.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import enum
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, TypeVar

import pydantic

from jobgate.core import jobs

T = TypeVar("T")


class Format(enum.StrEnum):
    """`JOBGATE_LOG_FORMAT`: text (the default) or json."""

    TEXT = "text"
    JSON = "json"


# A settings field of either process: any case is accepted (`JSON`, `Text`).
FormatSetting = Annotated[Format, pydantic.BeforeValidator(lambda value: str(value).strip().lower())]


# The fields of the job being worked on. A dict, not a value: a scope opened by an outer layer
# (the API's middleware) is filled in by an inner one once it knows the id (`bind`), and the
# outer layer's own lines (the access line) see it, being the same dict.
_JOB: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("jobgate_log_job", default=None)


@contextlib.contextmanager
def job_scope(**fields: str) -> Iterator[None]:
    """Lines logged inside carry `fields` (more may be added with `bind`)."""
    token = _JOB.set(dict(fields))
    try:
        yield
    finally:
        _JOB.reset(token)


def bind(**fields: str) -> None:
    """Add fields to the current scope (nothing happens outside one)."""
    current = _JOB.get()
    if current is not None:
        current.update(fields)


def per_job(handle: Callable[[jobs.JobRef, T], None]) -> Callable[[jobs.JobRef, T], None]:
    """`handle(job, ...)` in a scope naming the job (`<namespace>/<name>`)."""

    def scoped(job: jobs.JobRef, trigger: T) -> None:
        with job_scope(job=str(job)):
            handle(job, trigger)

    return scoped


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= _object_fields(record)
        line |= _JOB.get() or {}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _object_fields(record: logging.LogRecord) -> dict[str, str]:
    """kopf's per-object lines carry the object (`k8s_ref`): a Job's is the job."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, Mapping):
        return {}
    name = f"{ref.get('namespace')}/{ref.get('name')}" if ref.get("namespace") else str(ref.get("name"))
    return {"job": name} if ref.get("kind") == "Job" else {"object": f"{ref.get('kind')} {name}"}


def install(fmt: Format) -> None:
    """Give the root logger's handlers (set up by the process beforehand) the chosen format."""
    if fmt is Format.JSON:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
