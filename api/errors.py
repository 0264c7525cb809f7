"""What goes wrong, and how each dialect says it.

The seed dialect answers errors with a JSON string (`"not found app, submissionId: x"`), as
the reference server does; the Ray dialect with plain text, which Ray's client shows as it
is (`Request failed with status code 404: Job x does not exist.`). Handlers registered by
`install` turn every error into one of those, never into a stack trace.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import fastapi
from fastapi import exceptions, responses
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from jobgate.api import models
from jobgate.core import client, objectstore

log = logging.getLogger(__name__)
_SHOWN_INPUT = 80  # characters of a rejected value quoted back in a message
_WS_POLICY_VIOLATION = 1008
_DENIAL = "websocket.http.response"  # the ASGI extension that answers a websocket with HTTP
_WS_REASON_BYTES = 120  # a close frame's reason is at most 123 bytes


class ApiError(Exception):
    """An error with a status code and a message (the same in both dialects unless overridden)."""

    status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.text = message

    def message(self, dialect: models.Dialect) -> str:
        return self.text


class InvalidRequestError(ApiError):
    """A request refused as it is (400); the message names the field and what it allows."""

    status = 400


class TooLargeError(ApiError):
    status = 413  # a request body over its limit


class MissingError(ApiError):
    """Something other than a job is not there (a package)."""

    status = 404


class PackageTakenError(ApiError):
    """An upload of other bytes under a package name the tenant has already used."""

    status = 409

    def __init__(self, package: str) -> None:
        super().__init__(
            f"{package} exists with other contents: a package never changes (a changed "
            "working_dir gets a new name from Ray's client)"
        )


class UnauthenticatedError(ApiError):
    status = 401  # no bearer token, and the deployment requires one


class ForbiddenError(ApiError):
    """A bearer token that is not valid, or a namespace that is not the tenant's (403)."""

    status = 403


class CrossSiteError(ApiError):
    """A browser's request from another site, to a route that changes something (see crosssite)."""

    status = 403


class TooManyTailsError(ApiError):
    """A log tail past the caps of its tenant or of the process (429: close one, or wait)."""

    status = 429


class UnavailableError(ApiError):
    """Kubernetes cannot be reached, or the job cache is not filled yet: try again."""

    status = 503


class RefusedByKubernetesError(ApiError):
    """Kubernetes refused a request the API did not expect it to refuse (e.g. RBAC: the API's
    service account may not create namespaces): a 502 with the apiserver's own explanation."""

    status = 502


class _JobError(ApiError):
    """An error about one job, which each dialect words its own way."""

    wording: ClassVar[Mapping[models.Dialect, str]]

    def __init__(self, submission_id: str) -> None:
        super().__init__(submission_id)
        self.submission_id = submission_id

    def message(self, dialect: models.Dialect) -> str:
        return self.wording[dialect].format(id=self.submission_id)


class JobNotFoundError(_JobError):
    status = 404
    wording = {
        models.Dialect.SEED: "not found app, submissionId: {id}",
        models.Dialect.RAY: "Job {id} does not exist",
    }


class DuplicateJobError(_JobError):
    status = 400
    wording = {
        models.Dialect.SEED: "submit job has already exist, submissionId: {id}",
        # Ray's own server's words.
        models.Dialect.RAY: "Job with submission_id {id} already exists. "
        "Please use a different submission_id.",
    }


class SubmitFailedError(ApiError):
    """The Job was stored but cannot run (e.g. not schedulable in time): the seed's 500."""

    def __init__(self, submission_id: str, reason: str) -> None:
        super().__init__(f"create app failed, submissionId:[{submission_id}], err: \n{reason}")


class NotTerminalError(ApiError):
    """Ray's client may only delete a finished job."""

    status = 400

    def __init__(self, submission_id: str, state: str) -> None:
        super().__init__(  # Ray's own words, which its users match on; then what to do
            f"Attempted to delete job '{submission_id}', but it is in a non-terminal state {state}. "
            "Stop it first."
        )


class LogsGoneError(ApiError):
    """The job exists, but the pod that held its logs does not any more."""

    status = 410

    def __init__(self, submission_id: str, pod: str, *, archived: bool) -> None:
        why = (
            "and its log is not in the log archive: the operator copies a log as its pod ends (or once "
            "the object store is back), and a pod that went before that took its log with it"
            if archived
            else "and this deployment keeps no copy of pod logs (it has no object store: JOBGATE_S3_BUCKET)"
        )
        super().__init__(
            f"the logs of job {submission_id} are gone: its pod {pod} no longer exists "
            f"(deleted, or removed after the job finished), {why}"
        )


def dialect_of(path: str) -> models.Dialect:
    return models.Dialect.RAY if path.startswith(models.RAY_PREFIX + "/") else models.Dialect.SEED


def response(connection: HTTPConnection, error: ApiError) -> responses.Response:
    dialect = dialect_of(connection.url.path)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, UnauthenticatedError) else None
    if dialect is models.Dialect.RAY:
        return responses.PlainTextResponse(error.message(dialect), status_code=error.status, headers=headers)
    return responses.JSONResponse(error.message(dialect), status_code=error.status, headers=headers)


def describe(errors: Sequence[Any], *, model: type[Any] | None = None) -> str:
    """pydantic/FastAPI validation errors as one message that names each field.

    `entrypoint_num_cpus must be in [0.3, 16], got 0.29`; `runtime_env.working_dir is
    required`; `X-Tenant-Id ...`. `model` is the body's model, to list the known fields
    when an unknown one is sent.
    """
    return "; ".join(_describe_one(error, model=model) for error in errors)


def _describe_one(error: Any, *, model: type[Any] | None) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    where = loc[0] if loc else ""
    path = loc[1:] if where in ("body", "query", "path", "header") else loc
    field = ".".join(path)
    if where == "header":
        field = "-".join(word.capitalize() for word in field.split("-"))
    kind = error.get("type", "")
    if kind == "json_invalid":
        return f"request body is not valid JSON: {error.get('ctx', {}).get('error', 'decode error')}"
    if not field:
        if kind == "missing":
            return "request body is required: a JSON object"
        return "request body must be a JSON object (sent with Content-Type: application/json)"
    got = f", got {_shown(error.get('input'))}"
    if kind == "missing":
        return f"{field} is required"
    if kind == "extra_forbidden":
        known = f" (allowed: {', '.join(model.model_fields)})" if model is not None and len(path) == 1 else ""
        return f"{field} is not a known field{known}"
    phrase = _PHRASES.get(kind)
    if phrase is None:  # pydantic's own words: "Input should be ..." -> "must be ..."
        phrase = re.sub(_SHOULD, "must", str(error.get("msg", "is invalid")))
        phrase = re.sub(r"^Value error, ", "", phrase).replace(_ITEMS, " entries")
    if path[-1:] == ["[key]"]:  # a map's key, e.g. ("runtime_env", "env_vars", "A=B", "[key]")
        return f"{'.'.join(path[:-2])} has the key {_shown(path[-2])}: {phrase}"
    return f"{field} {phrase}{got}"


_SHOULD = r"^(Input|String|Dictionary|List) should\b"
_ITEMS = " items after validation, not more"  # of a dict: "at most 32 items after validation, ..."
_PHRASES = {
    "string_type": "must be a string",
    "float_type": "must be a number",
    "int_type": "must be an integer",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
    "int_parsing": "must be an integer",
    "float_parsing": "must be a number",
}


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_INPUT else text[: _SHOWN_INPUT - 3] + "..."


def install(app: fastapi.FastAPI) -> None:
    """Register the handlers that shape every error the app can raise."""

    async def api_error(connection: HTTPConnection, error: Exception) -> responses.Response | None:
        assert isinstance(error, ApiError)
        if isinstance(connection, WebSocket):
            if _DENIAL in connection.scope.get("extensions", {}):
                # Refused before it is accepted, with an HTTP answer (its status and text), as
                # Ray's server does: 404 for a job that is not there, 429 past the caps.
                await connection.send_denial_response(response(connection, error))
                return None
            # Otherwise a close before the websocket is accepted refuses it (HTTP 403).
            reason = error.message(dialect_of(connection.url.path)).encode()[:_WS_REASON_BYTES]
            await connection.close(code=_WS_POLICY_VIOLATION, reason=reason.decode(errors="ignore"))
            return None
        return response(connection, error)

    async def kubernetes_error(connection: HTTPConnection, error: Exception) -> responses.Response | None:
        unreachable = isinstance(error, client.UnreachableError)
        failure = UnavailableError(str(error)) if unreachable else RefusedByKubernetesError(str(error))
        return await api_error(connection, failure)

    async def store_error(connection: HTTPConnection, error: Exception) -> responses.Response | None:
        failure = UnavailableError(f"{error}; try again shortly")
        return await api_error(connection, failure)

    async def invalid_request(request: fastapi.Request, error: Exception) -> responses.Response:
        assert isinstance(error, exceptions.RequestValidationError)
        found = error.errors()
        said = describe(found, model=_body_model(request))
        if dialect_of(request.url.path) is models.Dialect.RAY and (unknown := _unknown_field(found)):
            # Ray's server builds its request with JobSubmitRequest(**body): Python's words.
            said = f"JobSubmitRequest.__init__() got an unexpected keyword argument '{unknown}': {said}"
        return response(request, InvalidRequestError(said))

    async def http_error(request: fastapi.Request, error: Exception) -> responses.Response:
        # Starlette's own: unknown paths (404), wrong methods (405); and FastAPI's 400 for a
        # body json.loads could not read, whose own words do not say why.
        assert isinstance(error, StarletteHTTPException)
        unreadable = error.status_code == 400 and error.__cause__ is not None
        failure = ApiError(_unreadable_body(error.__cause__) if unreadable else str(error.detail))
        failure.status = error.status_code
        shaped = response(request, failure)
        shaped.headers.update(error.headers or {})
        return shaped

    async def unexpected(request: fastapi.Request, error: Exception) -> responses.Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return response(request, ApiError(f"internal error: {type(error).__name__}"))

    # Starlette calls one handler for both kinds of connection; its types want one each.
    app.add_exception_handler(ApiError, cast(Any, api_error))
    app.add_exception_handler(client.RefusedError, cast(Any, kubernetes_error))
    app.add_exception_handler(client.UnreachableError, cast(Any, kubernetes_error))
    app.add_exception_handler(objectstore.UnavailableError, cast(Any, store_error))
    app.add_exception_handler(exceptions.RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def _unreadable_body(cause: BaseException | None) -> str:
    """Why a request body is not JSON, when it is not even text JSON can parse."""
    if isinstance(cause, UnicodeDecodeError):
        why = f"not UTF-8 at byte {cause.start} ({cause.reason})"
    elif isinstance(cause, RecursionError):
        why = "nested too deeply"
    else:  # e.g. an integer of more digits than Python converts; what follows ";" is advice to Python users
        why = str(cause).split(";")[0]
    return f"request body is not valid JSON: {why}"


def _unknown_field(errors: Sequence[Any]) -> str | None:
    """The first unknown top-level field of the body, if one was sent."""
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "extra_forbidden" and len(loc) == 2 and loc[0] == "body":
            return str(loc[1])
    return None


def _body_model(request: fastapi.Request) -> type[Any] | None:
    """The pydantic model of the matched route's body, if it has one."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    body = getattr(getattr(field, "field_info", None), "annotation", None)
    return body if isinstance(body, type) else None
