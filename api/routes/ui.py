"""GET / and GET /static/{file}: the web UI's static files from the `ui` package directory."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

import ui

router = APIRouter(include_in_schema=False)
UI_DIR = Path(ui.__file__).resolve().parent
SERVED_SUFFIXES = {".html", ".css", ".js", ".svg"}
PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>hmm-local-updater</title></head>
<body><h1>hmm-local-updater</h1><p>The web UI is not installed. API: <a href="/docs">/docs</a>,
<a href="/health">/health</a>, <a href="/jobs">/jobs</a>,
<a href="/containers">/containers</a>.</p></body></html>
"""


@router.get("/")
def index() -> Response:
    page = UI_DIR / "index.html"
    return FileResponse(page) if page.is_file() else HTMLResponse(PLACEHOLDER)


@router.get("/static/{path:path}")
def static_file(path: str) -> FileResponse:
    target = (UI_DIR / path).resolve()
    if not target.is_relative_to(UI_DIR) or target.suffix not in SERVED_SUFFIXES or not target.is_file():
        raise HTTPException(404, "Not found")
    return FileResponse(target)
