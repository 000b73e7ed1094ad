"""A saved dashboard in a real browser: an admin builds one (picks, orders, filters), saves it, and a
rep opens it by its shared link and sees its charts over their own contacts. Fixtures are those of
test_web_browser.py (REP owns Ada, Grace and Linus, all interested)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.test_web_browser import REP, Live, browser, live, page, shot, sign_in  # noqa: F401  (fixtures)
from tests.support.web import wait_for_charts

pytestmark = pytest.mark.browser


def test_build_save_and_open_a_shared_dashboard(page: Any, browser: Any, live: Live) -> None:  # noqa: F811
    sign_in(page, live, email="admin@example.com")
    page.get_by_role("link", name="My dashboards").click()
    page.locator("#new-dashboard").click()
    page.fill("input[name=name]", "Interested, by week")
    for widget in ("conversion", "history", "velocity", "channels", "steps", "deliverability"):
        page.uncheck(f"#pick-{widget}")
    page.fill("input[name=order_queue]", "1")  # the queue first, the funnel after it
    page.fill("input[name=order_funnel]", "2")
    page.select_option("select[name=stage]", "interested")
    shot(page, "dashboard-build")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/dashboards/*")
    link = page.locator("#share-link").inner_text()
    assert link.startswith(live.url + "/dashboards/")
    assert [page.locator("section.widget").nth(i).get_attribute("id") for i in range(2)] == ["w-queue", "w-funnel"]
    wait_for_charts(page, 1)  # the funnel's chart
    # the rep opens the link in their own session: the same widgets, their own contacts
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    rep = other.new_page()
    sign_in(rep, live)
    rep.goto(link)
    assert "the figures of your own contacts" in rep.locator(".page-head").inner_text()
    assert rep.locator("#w-funnel tbody tr", has_text="interested").locator("td").nth(1).inner_text() == "3"
    assert rep.locator("#edit-dashboard").count() == 0  # only its maker changes it
    wait_for_charts(rep, 1)
    shot(rep, "dashboard-shared")
    other.close()


def test_a_target_is_drawn_against_its_threshold_week_by_week(page: Any, live: Live) -> None:  # noqa: F811
    sign_in(page, live, email="admin@example.com")
    page.goto(f"{live.url}/targets")
    page.select_option("select[name=metric]", "expired_per_rep_week")
    page.select_option("select[name=op]", "<=")
    page.fill("input[name=threshold]", "3")
    page.locator("#target-form").get_by_role("button", name="Set").click()
    wait_for_charts(page, 1)
    # one point per week (8), and the threshold as a second line at 3 on every week
    drawn = page.evaluate("(() => { const c = window.outreachCharts[0].data; return [c.labels.length, "
                          "c.datasets[0].data.length, c.datasets[1].data]; })()")
    assert drawn == [8, 8, [3] * 8]
    shot(page, "targets-chart")
