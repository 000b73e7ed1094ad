"""/c/ and /t.js in a real browser (Debian's Chromium through Playwright): a click on an email link
lands on the marketer's site (another origin) with the visitor token, /t.js keeps it in that site's
localStorage and takes it out of the address bar, and the pricing page's view reaches the engine as
evidence, also on a later visit without the token.

Without /usr/bin/chromium this skips, unless OUTREACH_REQUIRE_BROWSER=1 makes that a failure."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach import db
from outreach.contacts import import_csv
from outreach.context import template_context
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Touch
from outreach.project import Project
from tests.support import at, make_project

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


def bound_socket() -> socket.socket:
    """A socket on a port the system picks, kept bound until a server listens on it (no probe race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def chromium() -> Iterator[Any]:
    why = None if os.path.exists(CHROMIUM) else f"{CHROMIUM} is missing (apt-get install chromium)"
    if why:
        if os.environ.get("OUTREACH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"OUTREACH_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def serve_engine(engine: Engine, sock: socket.socket) -> Any:
    import uvicorn

    from outreach.web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return server


def views(engine: Engine) -> list[str]:
    with session_scope(engine.db) as s:
        return list(s.execute(select(col(Evidence.type)).order_by(col(Evidence.id))).scalars())


def wait_for(engine: Engine, expected: list[str]) -> list[str]:
    deadline = time.monotonic() + 10
    while views(engine) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return views(engine)


def test_a_click_then_the_pricing_page_in_a_real_browser(chromium: Any, tmp_path: Path) -> None:
    # the site's server is bound first, the engine's socket held: both ports come from their own sockets
    engine_sock = bound_socket()
    site = tmp_path / "site"
    web = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(site)))
    site_port = web.server_address[1]
    engine_url = f"http://127.0.0.1:{engine_sock.getsockname()[1]}"
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'b.db'}", **{"server.public_url": engine_url})
    engine = Engine(Project.open(root))
    people = tmp_path / "p.csv"
    people.write_text("email\nada@example.org\n")
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=at("2026-03-02 09:00"))
        touch = Touch(contact_id=1, dedupe_key="t", stage="aware", rule="playbook:aware", step="welcome",
                      interaction="nurture", content="aware/welcome", channel="email", due_at=at("2026-03-02 09:00"))
        s.add(touch)
        s.flush()
        contact = s.get(Contact, 1)
        assert contact is not None
        # the marketer's site is another origin (localhost, not 127.0.0.1)
        link = template_context(engine.settings, touch, contact)["links"]["click"](
            f"http://localhost:{site_port}/pricing.html")
    site.mkdir()
    tag = f'<script src="{engine_url}/t.js" async></script>'
    for name in ("pricing", "about"):
        (site / f"{name}.html").write_text(f"<!doctype html><title>{name}</title><h1>{name}</h1>{tag}")
    threading.Thread(target=web.serve_forever, daemon=True).start()
    server = serve_engine(engine, engine_sock)
    try:
        page = chromium.new_context().new_page()
        page.goto(link)
        assert page.url.startswith(f"http://localhost:{site_port}/pricing.html")
        assert wait_for(engine, ["email.clicked", "pricing.viewed"]) == ["email.clicked", "pricing.viewed"]
        page.wait_for_function("!location.search.includes('oid=')")  # taken out of the address bar
        assert page.evaluate("localStorage.getItem('outreach_oid')")
        page.goto(f"http://localhost:{site_port}/about.html")  # not a page the rules name
        page.goto(f"http://localhost:{site_port}/pricing.html")  # a reload within the hour: no second view
        time.sleep(1)
        assert views(engine) == ["email.clicked", "pricing.viewed"]
    finally:
        server.should_exit = True
        web.shutdown()
        web.server_close()
        db.dispose_all()
