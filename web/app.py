"""The ASGI app: ``uvicorn web.app:app``. Same settings as the command line."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="reportcycle", docs_url=None, redoc_url=None, openapi_url=None)
    return app


app = create_app()
