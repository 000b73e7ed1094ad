"""How the web app answers a refusal: a page for a browser (sign in, forbidden, not found, invalid,
conflict), JSON for the API and for the pages' own fetch calls. Also installs sessions and static files."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from outreach.engine import Engine
from outreach.errors import DatabaseUnavailable, InvalidInput, InvalidTransition, NotFound
from outreach.web.render import render_page
from outreach.web.sessions import Forbidden, LoginRequired, LoginThrottle, derived_key

STATIC_DIR = Path(__file__).parent / "static"
SESSION_HOURS = 12


def install(app: FastAPI, engine: Engine) -> None:
    """Sessions, static files, the sign-in throttle and the error pages; create_app calls this once."""
    app.state.login_throttle = LoginThrottle(engine.db)
    app.add_middleware(SessionMiddleware, secret_key=derived_key(engine.settings.server.secret_key, "session"),
                       session_cookie="outreach_session", max_age=SESSION_HOURS * 3600, same_site="lax",
                       https_only=engine.settings.server.public_url.startswith("https://"))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.headers.get("x-requested-with") == "fetch"

    def error(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        return render_page(request, "error.html", {"status": status, "message": message}, status=status)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("x-requested-with") == "fetch":
            return JSONResponse({"detail": "sign in again"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return error(request, 403, str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        return error(request, 422, str(exc))

    @app.exception_handler(InvalidTransition)
    async def _conflict(request: Request, exc: InvalidTransition) -> Response:
        return error(request, 409, str(exc))

    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        return error(request, 503, str(exc))
