"""`/docs` served whole by this server: Swagger UI from a package, no CDN.

FastAPI's own `/docs` page loads Swagger UI's script and stylesheet from a CDN, so it is
blank offline or behind a strict proxy. The `swagger-ui-bundle-v2` package ships Swagger UI
5 (which reads OpenAPI 3.1, as FastAPI writes it; the older `swagger-ui-bundle` ships 4,
which does not); its three files are served under `/docs/assets/`. Nothing on the page
points elsewhere: the favicon is the package's, and the online validator is off.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "docs_router"]

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""The files of the package the page uses, and their media types."""
PREFIX = "/docs/assets"


def docs_router(*, title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} — API",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/docs/oauth2-redirect")
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get(PREFIX + "/{name}")
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise HTTPException(404, "Not found.")
        return FileResponse(
            swagger_ui_path / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router
