"""working_dir packages: Ray's client uploads them, the job's init container downloads them.

    GET /ray/api/packages/{protocol}/{name}   Ray's "is it there?": 200 (empty) or 404
    PUT /ray/api/packages/{protocol}/{name}   Ray's upload (the zip as the body), size-limited (`limits`)
    GET /api/packages/gcs/{name}              the package's bytes, for the init container

Uploads need a bearer token when tokens are configured. The download does not: the init
container has none (it runs with the job's rights, and a package's name is the hash of its
contents). See README.md, "Packages".
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response, responses

from jobgate.api import deps, errors, models

_TEXT: Final = {"text/plain": {"schema": {"type": "string"}}}
_BAD_NAME: Final = "The protocol is not `gcs`, or the name is not a package name"
_TOKEN: Final[dict[int | str, dict[str, Any]]] = {
    401: {"description": "Bearer token required", "content": _TEXT},
    403: {"description": "Bearer token not valid", "content": _TEXT},
}
_EMPTY_OK: Final[dict[str, Any]] = {"description": "Done (an empty body)", "content": {}}
_ARCHIVE_BODY: Final = {
    "requestBody": {
        "required": True,
        # Ray's client sends the zip with no Content-Type; any is accepted.
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


router = APIRouter(tags=["packages"])


@router.get(
    models.RAY_PREFIX + "/api/packages/{protocol}/{package_name}",
    dependencies=[deps.Authenticated],
    response_class=Response,
    responses={
        200: _EMPTY_OK,
        400: {"description": _BAD_NAME, "content": _TEXT},
        **_TOKEN,
        404: {"description": "Not uploaded yet", "content": _TEXT},
    },
)
async def package_exists(protocol: str, package_name: str, packages: deps.Packages) -> Response:
    if packages.find(protocol, package_name) is None:
        raise errors.MissingError(f"Package {protocol}://{package_name} does not exist")
    return Response()


@router.put(
    models.RAY_PREFIX + "/api/packages/{protocol}/{package_name}",
    dependencies=[deps.Authenticated],
    response_class=Response,
    responses={
        200: _EMPTY_OK,
        400: {
            "description": f"{_BAD_NAME}; or the body is not a zip or tar archive a job could unpack "
            "(an entry leaving the working directory, a link, too many or too large entries)",
            "content": _TEXT,
        },
        **_TOKEN,
        413: {"description": "Larger than the deployment allows", "content": _TEXT},
    },
    openapi_extra=_ARCHIVE_BODY,  # the body is read as a stream, not by FastAPI
)
async def upload_package(
    protocol: str, package_name: str, request: Request, packages: deps.Packages
) -> Response:
    await packages.save(protocol, package_name, request.stream())
    return Response()


@router.get(
    "/api/packages/{protocol}/{package_name}",
    response_class=responses.FileResponse,
    responses={
        200: {"description": "The package's bytes", "content": {"application/zip": {}}},
        400: {"description": _BAD_NAME, "model": str},
        404: {"description": "No such package", "model": str},
    },
)
async def download_package(
    protocol: str, package_name: str, packages: deps.Packages
) -> responses.FileResponse:
    path = packages.find(protocol, package_name)
    if path is None:
        raise errors.MissingError(f"no package {protocol}://{package_name}")
    return responses.FileResponse(path, media_type="application/zip")
