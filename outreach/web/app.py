"""The FastAPI app `outreach run` serves: provider webhooks, the JSON API and the pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from outreach.engine import Engine
from outreach.errors import WebhookRejected
from outreach.web import (
    account_pages,
    api,
    dashboard,
    error_pages,
    experiment_pages,
    inbox,
    meeting_pages,
    pages,
    profile,
    queue_pages,
    saved_dashboards,
    target_pages,
    tracking,
    unsubscribe,
    webhooks,
)
from outreach.web.guards import BodyLimit, ClientAddress, SecurityHeaders, networks

SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"
MAX_PAGE_BODY = 1024 * 1024  # a page's form, a sign-in
MAX_API_BODY = 2 * 1024 * 1024  # a JSON API call


def body_limit(path: str) -> int:
    """The most bytes a request to `path` may send: the webhooks' own limits, else the API's or a page's."""
    if path.startswith(f"{webhooks.PREFIX}/sendgrid/inbound"):
        return webhooks.MAX_INBOUND
    if path.startswith(f"{webhooks.PREFIX}/"):
        return webhooks.MAX_BODY
    return MAX_API_BODY if path.startswith("/api/") else MAX_PAGE_BODY


def create_app(engine: Engine) -> FastAPI:
    app = FastAPI(title="outreach", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Nurture and multichannel outreach engine: JSON API and provider webhooks.")
    app.state.engine = engine
    _offline_docs(app)

    @app.exception_handler(WebhookRejected)
    async def _rejected(_request: Request, exc: WebhookRejected) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(tracking.router)
    error_pages.install(app, engine)  # sessions, static files, error pages
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(queue_pages.router)
    app.include_router(experiment_pages.router)
    app.include_router(dashboard.router)
    app.include_router(saved_dashboards.router)
    app.include_router(target_pages.router)
    app.include_router(account_pages.router)
    app.include_router(profile.router)
    app.include_router(inbox.router)
    app.include_router(meeting_pages.router)
    # the last added runs first: headers on every answer (a 413 too), then the body limit before any
    # route reads or authenticates, then the client's address for the sign-in limit
    server = engine.settings.server
    app.add_middleware(ClientAddress, trusted=networks(server.trusted_proxies))
    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(SecurityHeaders, https=server.public_url.startswith("https://"))
    return app


def _offline_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the copy vendored in static/swagger-ui (FastAPI's default loads it from a
    CDN). It is swagger-ui-dist 5: older bundles refuse the OpenAPI 3.1 document FastAPI serves."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/docs-static", StaticFiles(directory=SWAGGER_UI), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="outreach API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")
