"""Clicks and page views, first-party only. An email link made with `{{ links.click(URL) }}` goes
through `/c/{token}`: the click is recorded (once per link and touch, so a link scanner and the buyer
count once), then a redirect to URL with `oid=<visitor token>` added. `/t.js`, added by the marketer to
chosen pages of their site, keeps that token in the site's own localStorage (no cookies, nothing
third-party) and reports the page views `tracking.pages` names to `/t/v`; the token expires after
`tracking.visitor_expires`. A forged, expired or unknown token changes nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from outreach import tokens
from outreach.engine import Engine
from outreach.evidence import EvidenceIn

router = APIRouter(include_in_schema=False)
VISITOR_PARAM = "oid"
MAX_VIEW = 4096  # bytes of one page-view report

SCRIPT = """(function () {
  var engine = %(engine)s, key = "outreach_oid", param = %(param)s;
  try {
    var url = new URL(window.location.href), oid = url.searchParams.get(param);
    if (oid) {
      window.localStorage.setItem(key, oid);
      url.searchParams.delete(param);
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
    oid = window.localStorage.getItem(key);
    if (oid && navigator.sendBeacon) {
      navigator.sendBeacon(engine + "/t/v", JSON.stringify({t: oid, p: window.location.pathname}));
    }
  } catch (e) { /* storage refused or an old browser: no tracking, never a broken page */ }
})();
"""


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _gone() -> HTMLResponse:
    return HTMLResponse("<!doctype html><title>Link not valid</title><p>This link is not valid any more.</p>",
                        status_code=404)


def with_visitor(url: str, visitor: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != VISITOR_PARAM]
    return urlunsplit(parts._replace(query=urlencode([*query, (VISITOR_PARAM, visitor)])))


def _click(value: Any) -> tuple[int, int, str] | None:
    if (isinstance(value, list) and len(value) == 3 and isinstance(value[0], int) and isinstance(value[1], int)
            and isinstance(value[2], str) and urlsplit(value[2]).scheme in ("http", "https")):
        return value[0], value[1], value[2]
    return None


@router.get("/c/{token}")
async def click(request: Request, token: str) -> Response:
    engine = _engine(request)
    s = engine.settings
    found = _click(tokens.unsign_timed(s.server.secret_key, "click", token,
                                       int(s.tracking.link_expires.total_seconds())))
    if found is None:
        return _gone()  # never a redirect to a URL we did not sign
    touch_id, contact_id, url = found
    now = datetime.now(UTC)
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    item = EvidenceIn("email.clicked", now, "click", contact_id=contact_id, touch_id=touch_id or None,
                      dedupe_key=f"click:{touch_id}:{digest}", data={"url": url[:2000]})
    await run_in_threadpool(engine.record, [item])
    visitor = tokens.sign_timed(s.server.secret_key, "visitor", contact_id)
    return RedirectResponse(with_visitor(url, visitor), status_code=302,
                            headers={"cache-control": "no-store", "referrer-policy": "no-referrer"})


@router.get("/t.js")
def script(request: Request) -> Response:
    base = _engine(request).settings.server.public_url.rstrip("/")
    body = SCRIPT % {"engine": json.dumps(base), "param": json.dumps(VISITOR_PARAM)}
    # loaded by the marketer's pages from another origin: allow that, and cache it for an hour
    return Response(body, media_type="application/javascript",
                    headers={"cache-control": "public, max-age=3600", "cross-origin-resource-policy": "cross-origin"})


def page_event(pages: dict[str, str], path: str) -> str | None:
    """The evidence a view of `path` records, by the first pattern of `tracking.pages` it matches."""
    return next((event for pattern, event in pages.items() if fnmatchcase(path, pattern)), None)


@router.post("/t/v")
async def view(request: Request) -> Response:
    """A page view from /t.js (sendBeacon posts text/plain: no preflight). Always 204: a page learns
    nothing about whether its visitor is known."""
    engine = _engine(request)
    s = engine.settings
    body = await request.body()
    try:
        report = json.loads(body[:MAX_VIEW])
    except ValueError:
        return Response(status_code=204)
    if not isinstance(report, dict) or not isinstance(report.get("t"), str) or not isinstance(report.get("p"), str):
        return Response(status_code=204)
    cid = tokens.unsign_timed(s.server.secret_key, "visitor", report["t"],
                              int(s.tracking.visitor_expires.total_seconds()))
    path = report["p"][:500]
    event = page_event(s.tracking.pages, path)
    if not isinstance(cid, int) or isinstance(cid, bool) or event is None:
        return Response(status_code=204)
    now = datetime.now(UTC)
    # once per page per contact per hour: a reload is not a second visit
    hour = (now - timedelta(minutes=now.minute, seconds=now.second, microseconds=now.microsecond)).isoformat()
    item = EvidenceIn(event, now, "site", contact_id=cid,
                      dedupe_key=f"view:{cid}:{event}:{hashlib.sha256(path.encode()).hexdigest()[:12]}:{hour}",
                      data={"page": path})
    await run_in_threadpool(engine.record, [item])
    return Response(status_code=204)
