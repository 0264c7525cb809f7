"""working_dir packages: Ray's client uploads them, the job's init container downloads them.

    GET /ray/api/packages/{protocol}/{name}   Ray's "is it there?": 200 (empty) or 404
    PUT /ray/api/packages/{protocol}/{name}   Ray's upload (the zip as the body), size-limited (`limits`)
    GET /api/packages/gcs/{name}?namespace=&job=&uid=   the package's bytes, for the init container

A package is the tenant's (see `packages`): the check and the upload act for the request's
tenant, and need a bearer token when tokens are configured. The init container has no token:
its credential is its Job's identity, uid included, which the operator puts in the URL. The
download answers only while that Job is unfinished and names that package as its
working_dir, so no one else (another tenant, or a job of the same tenant) can read it.
See README.md, "Packages".
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter, Request, Response, responses

from jobgate.api import deps, errors, index, models
from jobgate.api import packages as packages_store

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
        503: {"description": "The object store cannot be reached", "content": _TEXT},
    },
)
async def package_exists(
    protocol: str, package_name: str, packages: deps.Packages, space: deps.PackageSpace
) -> Response:
    if not await asyncio.to_thread(packages.exists, protocol, package_name, space=space):
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
        409: {"description": "The tenant has other bytes under that name", "content": _TEXT},
        413: {"description": "Larger than the deployment allows", "content": _TEXT},
        503: {"description": "The object store cannot be reached: nothing was kept", "content": _TEXT},
    },
    openapi_extra=_ARCHIVE_BODY,  # the body is read as a stream, not by FastAPI
)
async def upload_package(
    protocol: str, package_name: str, request: Request, packages: deps.Packages, space: deps.PackageSpace
) -> Response:
    await packages.save(protocol, package_name, request.stream(), space=space)
    return Response()


@router.get(
    "/api/packages/{protocol}/{package_name}",
    response_class=responses.StreamingResponse,
    responses={
        200: {"description": "The package's bytes", "content": {"application/zip": {}}},
        400: {"description": _BAD_NAME, "model": str},
        404: {"description": "No such package, or not for that job", "model": str},
        503: {"description": "The object store cannot be reached", "model": str},
    },
)
async def download_package(
    protocol: str,
    package_name: str,
    packages: deps.Packages,
    jobs: deps.Jobs,
    namespace: str = "",
    job: str = "",
    uid: str = "",
) -> responses.StreamingResponse:
    # The Job first: only then is `namespace` known to be one (and the package's space).
    fetching = protocol == packages_store.PROTOCOL and jobs.fetches(
        index.Key(namespace, job), uid=uid, package=package_name
    )
    chunks = (
        await asyncio.to_thread(packages.chunks, protocol, package_name, space=namespace)
        if fetching
        else None
    )
    if chunks is None:
        raise errors.MissingError(f"no package {protocol}://{package_name} for that job")
    # Read a chunk at a time (in a thread): memory stays bounded whatever the package's size.
    return responses.StreamingResponse(chunks, media_type="application/zip")
