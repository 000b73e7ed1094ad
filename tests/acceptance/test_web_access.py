"""Who may do what, checked over the whole route table: an anonymous request is refused everywhere,
and a rep who names another rep's touch or contact gets 404 and changes nothing. Plus the sign-in
machinery: session cookie flags, CSRF, the failed-sign-in limit, redirects that stay on this site."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Evidence, Preference, ReplyState, Touch
from outreach.users import add_user
from outreach.web.app import create_app
from tests.support.web import PASSWORD, Seed, TestClient, bearer, client, csrf_of, pending_by_owner, seed, sign_in

# Routes that answer anybody: sign-in, docs, health, and the provider webhooks (signed by the provider).
PUBLIC = {"/login", "/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/docs-static"}
# they check their own signatures
PUBLIC_MODULES = {"outreach.web.webhooks", "outreach.web.unsubscribe", "outreach.web.tracking"}

# A valid body per POST route, so that a refusal comes from access, not from validation. `{other}` is
# replaced by a touch of the other rep. A new POST route must be added here (the walk checks that).
BODIES: dict[str, dict[str, Any]] = {
    "/api/contacts": {"json": {"email": "alan@bletchley.example", "title": "hijacked"}},
    "/api/contacts/{contact}/forget": {"json": {}},
    "/api/contacts/{contact}/preferences": {"json": {"interaction": "routine", "channel": "sms"}},
    "/api/evidence": {"json": {"contact": {"email": "alan@bletchley.example"}, "type": "pricing.viewed"}},
    "/api/queue/approve": {"json": {"ids": ["{other}"]}},
    "/api/queue/reject": {"json": {"ids": ["{other}"], "reason": "not mine"}},
    "/api/queue/{touch_id}/edit": {"json": {"subject": "hijacked", "approve": True}},
    "/contacts/{contact_id}/preference": {"data": {"interaction": "routine", "channel": "sms"}},
    "/contacts/{contact_id}/evidence": {"data": {"type": "call.completed", "note": "x"}},
    "/contacts/{contact_id}/forget": {"data": {"confirm": "on"}},
    "/queue/{touch_id}/approve": {"data": {}},
    "/queue/{touch_id}/reject": {"data": {"reason": "not mine"}},
    "/queue/{touch_id}/snooze": {"data": {"delay": "1d"}},
    "/queue/{touch_id}/edit": {"data": {"subject": "hijacked", "then": "approve"}},
    "/queue/bulk": {"data": {"ids": ["{other}"], "action": "approve"}},
    "/queue/{touch_id}/cancel-meeting": {"data": {}},
    "/queue/{touch_id}/outcome": {"data": {"outcome": "connected", "note": "hijacked"}},
    "/profile": {"data": {"timezone": "Asia/Tokyo"}},
    "/inbox/{evidence_id}/handled": {"data": {}},
    "/inbox/{evidence_id}/snooze": {"data": {"delay": "1d"}},
    "/inbox/{evidence_id}/answer": {"data": {"subject": "Re: hi", "body": "hijacked answer"}},
    "/contacts/{contact_id}/message": {"data": {"channel": "email", "subject": "x", "body": "hijacked"}},
    "/contacts/{contact_id}/pause": {"data": {}},
    "/contacts/{contact_id}/resume": {"data": {}},
    "/contacts/{contact_id}/owner": {"data": {"owner": "rep@example.com"}},
    "/contacts/{contact_id}/claim": {"data": {}},
    "/logout": {"data": {}},
    "/login": {"data": {}},
    "/experiments/{exp_id}/stop": {"data": {"promote": ""}},
    "/dashboards": {"data": {"name": "x", "widget": "funnel"}},
    "/dashboards/{dashboard_id}": {"data": {"name": "x", "widget": "funnel"}},
    "/dashboards/{dashboard_id}/delete": {"data": {}},
    "/targets": {"data": {"metric": "expired_per_rep_week", "op": "<=", "threshold": "1"}},
    "/targets/{target_id}/delete": {"data": {}},
}
# POST routes that name no object of another rep, or refuse reps outright (stopping an experiment is
# for marketers and admins; creating and updating contacts for admins and marketers: 403): they are
# only checked for anonymous refusal.
NO_OBJECT = {"/logout", "/login", "/profile", "/experiments/{exp_id}/stop", "/api/contacts", "/dashboards", "/targets"}


def all_routes(engine: Engine) -> list[tuple[str, str, Any]]:
    """(method, path, endpoint) of every route, also inside included routers."""
    app = create_app(engine)
    try:  # newer FastAPI includes routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        found = [(rc.path, rc.methods, rc.endpoint) for rc in iter_route_contexts(app.routes)]
    except ImportError:
        found = [(r.path, r.methods, r.endpoint) for r in app.routes if isinstance(r, APIRoute)]
    return [(m, str(path), endpoint) for path, methods, endpoint in found for m in sorted(methods or ())]


def guarded_routes(engine: Engine) -> list[tuple[str, str]]:
    """Every route but the public ones; the provider webhooks and unsubscribe links verify their own
    signatures (tests/unit/test_webhook_parsing.py, tests/acceptance/test_webhook_security.py)."""
    return [(m, path) for m, path, endpoint in all_routes(engine)
            if m in ("GET", "POST") and path not in PUBLIC
            and getattr(endpoint, "__module__", "") not in PUBLIC_MODULES]


def fill(path: str, s: Seed) -> str:
    other = {"touch_id": s.other_touch(), "contact_id": s.contacts["Alan"], "contact": s.contacts["Alan"],
             "exp_id": "no-such-experiment",
             "account_id": "bletchley.example",  # Alan's account, inferred from his address: rep2's
             "evidence_id": s.extra["alan_reply"],
             # saved dashboards are shared within the project by link, targets readable by all: none exists here
             "dashboard_id": 999999, "target_id": 999999}
    return re.sub(r"\{(\w+)\}", lambda m: str(other[m.group(1)]), path)


def body_for(path: str, s: Seed, csrf: str | None) -> dict[str, Any]:
    spec = BODIES.get(path, {})
    out: dict[str, Any] = {}
    for kind, fields in spec.items():
        filled = {k: ([s.other_touch() if x == "{other}" else x for x in v] if isinstance(v, list) else v)
                  for k, v in fields.items()}
        if kind == "data" and csrf:
            filled["csrf"] = csrf
        out[kind] = filled
    return out


@pytest.fixture
def web(engine: Engine) -> tuple[Engine, Seed, TestClient]:
    data = seed(engine)
    # a reply of another rep's buyer, for the inbox's routes
    got = engine.record([EvidenceIn("email.replied", datetime.now(UTC), "cli", contact_id=data.contacts["Alan"],
                                    data={"text": "Call me"})])
    data.extra["alan_reply"] = got.recorded[0].id or 0
    data.pending = pending_by_owner(engine)
    return engine, data, client(engine)


def test_every_route_refuses_anonymous_requests(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    routes = guarded_routes(e)
    assert len(routes) >= 25, routes
    for method, path in routes:
        if method == "POST" and path not in BODIES:
            pytest.fail(f"POST {path} has no body in BODIES: add one so the access walk covers it")
        if path == "/login":
            continue
        got = c.request(method, fill(path, s), follow_redirects=False, **body_for(path, s, None))
        if path.startswith("/api/"):
            assert got.status_code == 401, (method, path, got.status_code)
        else:
            assert got.status_code == 303 and got.headers["location"].startswith("/login"), (method, path)
    assert pending_by_owner(e) == s.pending


def test_a_rep_cannot_reach_another_reps_objects(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    csrf = sign_in(c, "rep@example.com")
    checked = 0
    for method, path in guarded_routes(e):
        if ("{" not in path and path not in BODIES) or path in NO_OBJECT:
            continue
        headers = bearer(s, "rep@example.com") if path.startswith("/api/") else {}
        got = c.request(method, fill(path, s), headers=headers, follow_redirects=False, **body_for(path, s, csrf))
        assert got.status_code == 404, (method, path, got.status_code, got.text[:300])
        checked += 1
    assert checked >= 15
    # and nothing happened
    assert pending_by_owner(e) == s.pending
    with session_scope(e.db) as db:
        assert db.execute(select(func.count()).select_from(Preference)).scalar_one() == 0
        assert db.execute(select(func.count()).select_from(Evidence).where(
            col(Evidence.contact_id) == s.contacts["Alan"])).scalar_one() == 2  # the seeded click and reply only
        assert db.execute(select(func.count()).select_from(ReplyState)).scalar_one() == 0
        assert db.execute(select(func.count()).select_from(Touch).where(col(Touch.rule) == "one-off")).scalar_one() == 0
        alan = db.get(Contact, s.contacts["Alan"])
        assert alan is not None and alan.owner == "rep2@example.com" and alan.paused_until is None


def test_a_rep_sees_only_their_own_on_the_pages(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    sign_in(c, "rep@example.com")
    queue = c.get("/queue").text
    assert "Alan" not in queue and "Katherine" not in queue and "Margaret" not in queue
    assert queue.count('class="card touch"') == len(s.pending["rep@example.com"])
    assert c.get("/queue", params={"owner": "rep2@example.com"}).text.count('class="card touch"') == \
        len(s.pending["rep@example.com"])
    contacts = c.get("/contacts").text
    assert "Ada" in contacts and "Alan" not in contacts
    rules = c.get("/rules").text
    assert "alan@bletchley.example" not in rules  # dry-run examples name buyers: reps get counts only


def test_marketers_see_all_and_approve_nothing(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    csrf = sign_in(c, "marketer@example.com")
    page = c.get("/queue").text
    assert page.count('class="card touch"') == 8
    assert '/approve"' not in page and 'id="bulk"' not in page
    one = s.pending["rep@example.com"][0]
    got = c.post(f"/queue/{one}/approve", data={"csrf": csrf}, follow_redirects=False)
    assert got.status_code == 403
    assert c.post("/queue/bulk", data={"csrf": csrf, "ids": [one], "action": "approve"}).status_code == 403
    assert c.get(f"/contacts/{s.contacts['Alan']}").status_code == 200
    assert pending_by_owner(e) == s.pending


def test_session_cookie_is_signed_httponly_and_samesite(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, _s, c = web
    first = c.get("/login")
    before = first.cookies.get("outreach_session")
    token = csrf_of(first.text)
    got = c.post("/login", data={"email": "rep@example.com", "password": PASSWORD, "csrf": token},
                 follow_redirects=False)
    cookie = got.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie
    after = got.cookies.get("outreach_session")
    assert after and after != before
    # a tampered cookie is no session at all
    c.cookies.set("outreach_session", after[:-3] + ("AAA" if not after.endswith("AAA") else "BBB"))
    assert c.get("/queue", follow_redirects=False).status_code == 303


def test_forms_need_the_sessions_csrf_token(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    csrf = sign_in(c, "rep@example.com")
    one = s.pending["rep@example.com"][0]
    assert c.post(f"/queue/{one}/approve", data={}).status_code == 403
    assert c.post(f"/queue/{one}/approve", data={"csrf": "x" * 43}).status_code == 403
    cross = c.post(f"/queue/{one}/approve", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert pending_by_owner(e) == s.pending
    # the same token in a header (what app.js sends) is accepted, and the answer is JSON
    ok = c.post(f"/queue/{one}/approve", headers={"X-CSRF-Token": csrf, "X-Requested-With": "fetch"})
    assert ok.status_code == 200 and ok.json()["ok"] is True
    # a login form needs one too
    c2 = client(e)
    assert c2.post("/login", data={"email": "rep@example.com", "password": PASSWORD}).status_code == 403


def test_failed_sign_ins_are_limited(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, _s, c = web
    token = csrf_of(c.get("/login").text)
    for _ in range(5):
        got = c.post("/login", data={"email": "rep@example.com", "password": "wrong password", "csrf": token})
        assert got.status_code == 401 and "do not match" in got.text
    blocked = c.post("/login", data={"email": "rep@example.com", "password": PASSWORD, "csrf": token})
    assert blocked.status_code == 429 and "Too many" in blocked.text
    # another account from the same place is not locked out by it
    other = c.post("/login", data={"email": "rep2@example.com", "password": PASSWORD, "csrf": token},
                   follow_redirects=False)
    assert other.status_code == 303


def test_unknown_user_and_wrong_password_look_the_same(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, _s, c = web
    token = csrf_of(c.get("/login").text)
    a = c.post("/login", data={"email": "ghost@example.com", "password": "whatever1", "csrf": token})
    b = c.post("/login", data={"email": "rep@example.com", "password": "whatever1", "csrf": token})
    assert a.status_code == b.status_code == 401
    assert re.sub(r"value=\"[^\"]*\"", "", a.text) == re.sub(r"value=\"[^\"]*\"", "", b.text)


def test_a_new_password_ends_old_sessions(web: tuple[Engine, Seed, TestClient]) -> None:
    e, _s, c = web
    sign_in(c, "rep@example.com")
    assert c.get("/queue").status_code == 200
    with session_scope(e.db) as db:
        add_user(db, "rep@example.com", "rep", "a brand new secret")
    assert c.get("/queue", follow_redirects=False).status_code == 303


def test_sign_in_redirects_stay_on_this_site(web: tuple[Engine, Seed, TestClient]) -> None:
    e, _s, _c = web
    for target, lands in (("//evil.example/x", "/queue"), ("https://evil.example", "/queue"),
                          ("/\\evil.example", "/queue"), ("/contacts?q=ada", "/contacts?q=ada")):
        c = client(e)
        token = csrf_of(c.get("/login").text)
        got = c.post("/login", data={"email": "rep@example.com", "password": PASSWORD, "csrf": token, "next": target},
                     follow_redirects=False)
        assert got.headers["location"] == lands, target
    anonymous = client(e)
    assert anonymous.get("/contacts?q=ada", follow_redirects=False).headers["location"] == \
        "/login?next=/contacts%3Fq%3Dada"


def test_sign_out(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, _s, c = web
    csrf = sign_in(c, "rep@example.com")
    assert c.get("/logout").status_code == 200
    got = c.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == "/login"
    assert c.get("/queue", follow_redirects=False).status_code == 303


def test_pending_count_is_unchanged_by_reads(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    sign_in(c, "admin@example.com")
    for path in ("/queue", "/contacts", f"/contacts/{s.contacts['Ada']}", "/dashboard", "/rules",
                 f"/queue/{s.other_touch()}"):
        assert c.get(path).status_code == 200, path
    assert pending_by_owner(e) == s.pending
    assert sum(len(v) for v in s.pending.values()) == 8


def test_the_sign_in_limit_holds_across_web_hosts(web: tuple[Engine, Seed, TestClient]) -> None:
    """Two web apps on one database (two hosts behind a load balancer): failures counted on one
    refuse the sign-in on the other (issue 19: the throttle lives in the database)."""
    e, _s, _c = web
    host_a, host_b = client(e), client(e)
    token_a = csrf_of(host_a.get("/login").text)
    for _ in range(5):
        got = host_a.post("/login", data={"email": "rep@example.com", "password": "wrong guess", "csrf": token_a})
        assert got.status_code == 401
    token_b = csrf_of(host_b.get("/login").text)
    got = host_b.post("/login", data={"email": "rep@example.com", "password": PASSWORD, "csrf": token_b},
                      follow_redirects=False)
    assert got.status_code == 429 and "Too many failed sign-ins" in got.text


def test_the_sign_in_limit_forgets_after_its_window(web: tuple[Engine, Seed, TestClient]) -> None:
    from outreach.web.sessions import LoginThrottle

    clock = [0.0]
    throttle = LoginThrottle(web[0].db, per_account=5, per_address=30, window=900, clock=lambda: clock[0])
    for _ in range(5):
        throttle.failed("rep@example.com", "10.0.0.1")
    assert throttle.blocked("rep@example.com", "10.0.0.1")
    assert not throttle.blocked("rep@example.com", "10.0.0.2") and not throttle.blocked("x@example.com", "10.0.0.1")
    clock[0] = 901
    assert not throttle.blocked("rep@example.com", "10.0.0.1")
    for i in range(30):  # one address guessing many accounts
        throttle.failed(f"user{i}@example.com", "10.0.0.3")
    assert throttle.blocked("new@example.com", "10.0.0.3")
    throttle.succeeded("rep@example.com", "10.0.0.1")
    # housekeeping deletes failed sign-ins (an email, an address) a day old, and keeps today's
    from outreach.models import SignInFailure

    e = web[0]
    now = datetime.now(UTC)
    LoginThrottle(e.db).failed("rep@example.com", "10.0.0.9")
    with session_scope(e.db) as db:  # the last failure two days ago: no new one came to clear it away
        db.add(SignInFailure(email="rep@example.com", address="10.0.0.8", at=now.timestamp() - 2 * 86400))
    e.housekeeping(now)
    with session_scope(e.db) as db:
        left = db.execute(select(SignInFailure.address)).scalars().all()  # type: ignore[call-overload]
    assert left == ["10.0.0.9"]
