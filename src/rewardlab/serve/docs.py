"""``/docs`` (Swagger UI) and ``/redoc`` served with no network: FastAPI's defaults load their JavaScript and CSS
from a CDN, so on an offline machine both pages are blank. The assets come from the PyPI package
``fastapi-offline`` (in the ``serve`` extra), served under ``/docs-assets``; without it both pages say how to get
them and where the schema is (``/openapi.json`` always works).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

ASSETS_URL = "/docs-assets"
PACKAGE = "fastapi_offline"


def assets_dir() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)  # find, don't import: only its static files are used
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(spec.submodule_search_locations[0]) / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
    return static if all((static / f).is_file() for f in needed) else None


MISSING_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<h1>{title}</h1><p>The interactive API docs need the assets of the PyPI package <code>fastapi-offline</code>
(<code>pip install fastapi-offline</code>, part of the base install; nothing is loaded from a CDN). The OpenAPI schema is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>"""


def add_offline_docs(app: FastAPI) -> bool:
    """Add ``/docs`` and ``/redoc`` to an app created with ``docs_url=None, redoc_url=None``; True when the pages
    are the real ones (the assets were found)."""
    from fastapi.staticfiles import StaticFiles

    static = assets_dir()
    title = app.title + " — API docs"
    if static is None:

        @app.get("/docs", include_in_schema=False)
        async def docs_missing():
            return HTMLResponse(MISSING_PAGE.format(title=title))

        @app.get("/redoc", include_in_schema=False)
        async def redoc_missing():
            return HTMLResponse(MISSING_PAGE.format(title=title))

        return False
    app.mount(ASSETS_URL, StaticFiles(directory=str(static)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        return get_redoc_html(
            openapi_url=app.openapi_url,
            title=title,
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    return True
