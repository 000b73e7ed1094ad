"""The FastAPI app `outreach run` serves: provider webhooks, the JSON API and the pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..engine import Engine
from ..errors import WebhookRejected
from . import api, auth, pages, queue_pages, unsubscribe, webhooks


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="outreach", version="0.1.0",
                  description="Nurture and multichannel outreach engine: JSON API and provider webhooks.")
    app.state.engine = engine

    @app.exception_handler(WebhookRejected)
    async def _rejected(_request: Request, exc: WebhookRejected) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    auth.install(app, engine)  # sessions, static files, error pages
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(queue_pages.router)
    return app
