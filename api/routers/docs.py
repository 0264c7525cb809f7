"""The API's interactive docs (Swagger UI), served from here: no CDN.

GET /docs            Swagger UI on /openapi.json
GET /docs/assets/*   its scripts and styles, from the swagger-ui-bundle-v2 package
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, FastAPI, Request, responses
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from jobgate.api import crosssite

ASSETS: Final = f"{crosssite.DOCS_PREFIX}/assets"

router = APIRouter(include_in_schema=False)


@router.get(crosssite.DOCS_PREFIX)
async def swagger_ui(request: Request) -> responses.HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
