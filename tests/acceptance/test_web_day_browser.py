"""The rep's day in a real browser: the API docs render, an answer to a reply goes out from the inbox,
and a rep in another zone reads local times. Fixtures are those of test_web_browser.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.test_web_browser import Live, browser, live, page, shot  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_docs_render_an_operation(page: Any, live: Live) -> None:  # noqa: F811
    page.goto(f"{live.url}/docs")
    # Swagger UI 5 reads the OpenAPI 3.1 document: an old bundle shows "Unable to render this definition"
    op = page.locator(".opblock-summary-path", has_text="/api/evidence").first
    op.wait_for()
    assert "Unable to render" not in page.content()
    op.click()
    page.locator(".opblock-body").first.wait_for()
    shot(page, "docs")
