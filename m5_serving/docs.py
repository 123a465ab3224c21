"""The API's documentation pages, served with their scripts and styles from the installed package.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN (and ReDoc its fonts
from Google): on a machine without internet they are blank pages. ``fastapi-offline`` ships the
same assets, which are mounted here; nothing on these pages is fetched from another host.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
# The one thing the ReDoc bundle fetches from another host: Redocly's logo in its footer (hidden
# when it fails to load). The copy served here has no address for it, so nothing is requested.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _redoc_script() -> str:
    return (ASSETS / "redoc.standalone.js").read_text(encoding="utf-8").replace(REDOC_LOGO, "")


def add_offline_docs(app: FastAPI, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve Swagger UI at ``docs_url`` and ReDoc at ``redoc_url`` from the package's own assets
    (``app`` made with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")
    redirect_url = f"{docs_url}/oauth2-redirect"

    def under_root(request: Request, path: str) -> str:
        """``path`` as the browser must ask for it (behind a proxy's root path, if any)."""
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=under_root(request, str(app.openapi_url)),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=under_root(request, redirect_url),
            swagger_js_url=under_root(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
            swagger_css_url=under_root(request, f"{ASSETS_URL}/swagger-ui.css"),
            swagger_favicon_url=under_root(request, f"{ASSETS_URL}/favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(f"{docs_url}/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        return Response(_redoc_script(), media_type="application/javascript")

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=under_root(request, str(app.openapi_url)),
            title=f"{app.title} - ReDoc",
            redoc_js_url=under_root(request, f"{docs_url}/redoc.standalone.js"),
            redoc_favicon_url=under_root(request, f"{ASSETS_URL}/favicon.png"),
            with_google_fonts=False,
        )
