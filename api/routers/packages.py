"""working_dir packages: Ray's client uploads them, the job's init container downloads them.

    GET /ray/api/packages/{protocol}/{name}   Ray's "is it there?": 200 (empty) or 404
    PUT /ray/api/packages/{protocol}/{name}   Ray's upload (the zip as the body), size-limited (`limits`)
    GET /api/packages/gcs/{name}              the package's bytes, for the init container

Uploads need a bearer token when tokens are configured. The download does not: the init
container has none (it runs with the job's rights, and a package's name is the hash of its
contents). See README.md, "Packages".
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request, Response, responses

from jobgate.api import deps, errors, models

_TEXT: Final = {"text/plain": {"schema": {"type": "string"}}}


router = APIRouter(tags=["packages"])


@router.get(
    models.RAY_PREFIX + "/api/packages/{protocol}/{package_name}",
    dependencies=[deps.Authenticated],
    responses={404: {"description": "Not uploaded yet", "content": _TEXT}},
)
async def package_exists(protocol: str, package_name: str, packages: deps.Packages) -> Response:
    if packages.find(protocol, package_name) is None:
        raise errors.MissingError(f"Package {protocol}://{package_name} does not exist")
    return Response()


@router.put(
    models.RAY_PREFIX + "/api/packages/{protocol}/{package_name}",
    dependencies=[deps.Authenticated],
    responses={413: {"description": "Larger than the deployment allows", "content": _TEXT}},
)
async def upload_package(
    protocol: str, package_name: str, request: Request, packages: deps.Packages
) -> Response:
    await packages.save(protocol, package_name, request.stream())
    return Response()


@router.get(
    "/api/packages/{protocol}/{package_name}",
    response_class=responses.FileResponse,
    responses={404: {"description": "No such package", "model": str}},
)
async def download_package(
    protocol: str, package_name: str, packages: deps.Packages
) -> responses.FileResponse:
    path = packages.find(protocol, package_name)
    if path is None:
        raise errors.MissingError(f"no package {protocol}://{package_name}")
    return responses.FileResponse(path, media_type="application/zip")
