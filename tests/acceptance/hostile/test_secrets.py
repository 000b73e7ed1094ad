"""Secrets stay secret, sessions end when they should: hostile cases through the real routes and
commands (HTTP through the app or a live `outreach run`, the CLI in a subprocess)."""

from __future__ import annotations

import http.client
import logging
import os
import resource
import select as io_select
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach import db
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.errors import ConfigError
from outreach.messages import build_message
from outreach.models import Contact, Touch, User
from outreach.project import Project
from outreach.users import add_user
from outreach.web import page_data
from tests.support import make_project
from tests.support.serving import ANY_PORT, start_run
from tests.support.web import PASSWORD, bearer, client, csrf_of, seed, sign_in

SECRET_FILE = ".outreach-secret"
CHECK_IN = "interested/check-in.email.j2"


def cli(root: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OUTREACH_PASSWORD"}
    return subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def user_row(engine: Engine, email: str) -> User | None:
    with session_scope(engine.db) as s:
        return s.execute(select(User).where(col(User.email) == email)).scalar_one_or_none()


# --- 1, 2: templates read nothing outside content/, and cannot run away --------------------------------

def _plant_leak(content: Path) -> None:
    (content / "_leak.j2").symlink_to(content.parent / SECRET_FILE)


LEAK = '{% include "_leak.j2" %}'
DIR_LEAK = '{% include "up/.outreach-secret" %}'
HOSTILE: list[tuple[str, str, str]] = [
    # (name, what the text block holds, what `check` says about it)
    ("symlink-include", LEAK, "content/_leak.j2:1: resolves outside content/"),
    ("symlinked-folder", DIR_LEAK, "'up/.outreach-secret' resolves outside content/"),
]


@pytest.mark.parametrize(("case", "text", "said"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_templates_read_nothing_outside_content(sqlite_engine: Engine, case: str, text: str, said: str) -> None:
    root = sqlite_engine.project.path
    content = sqlite_engine.project.content_dir
    secret = (root / SECRET_FILE).read_text().strip()
    assert secret
    _plant_leak(content)
    (content / "up").symlink_to(root, target_is_directory=True)
    template = content / CHECK_IN
    template.write_text(template.read_text().replace("{{ rep.name }}", "{{ rep.name }}\n" + text))

    p = cli(root, "check")  # `check` refuses it, FILE:LINE
    assert p.returncode == 2, p.stdout + p.stderr
    assert said in p.stdout + p.stderr
    assert secret not in p.stdout + p.stderr

    sd = seed(sqlite_engine)  # the loader refuses it at render time: the rep's preview, the email
    c = client(sqlite_engine)
    sign_in(c, "rep@example.com")
    touch_id = sd.pending["rep@example.com"][0]
    page = c.get(f"/queue/{touch_id}")
    assert page.status_code == 200
    assert secret not in page.text
    with session_scope(sqlite_engine.db) as s:
        t = s.get(Touch, touch_id)
        contact = s.get(Contact, t.contact_id) if t else None
        assert t is not None and contact is not None
        with pytest.raises(Exception) as refused:
            build_message(sqlite_engine.settings, content, t, contact, sqlite_engine.project.rules)
    assert secret not in str(refused.value) and "not found" in str(refused.value)


RUNAWAY = [
    ("huge-range", "{% for i in range(10**9) %}x{% endfor %}"),
    ("nested-loops", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
    ("empty-loops-over-a-string", "{% set s = 'x' * 999999 %}{% for a in s %}{% for b in s %}{% endfor %}"
                                  "{% endfor %}"),
    ("huge-output", "{% for i in range(100000) %}{{ 'y' * 999 }}{% endfor %}"),
    ("huge-string", "{{ 'x' * 10**10 }}"),
    ("huge-power", "{% set n = 10 ** 100 %}{{ ((n ** 100) ** 100) ** 100 }}"),
    ("squaring", "{% set ns = namespace(x=10 ** 100) %}{% for i in range(40) %}{% set ns.x = ns.x * ns.x %}"
                 "{% endfor %}{{ ns.x > 1 }}"),
]


@pytest.mark.parametrize(("case", "text"), RUNAWAY, ids=[r[0] for r in RUNAWAY])
def test_a_template_cannot_run_away(sqlite_engine: Engine, case: str, text: str) -> None:
    root = sqlite_engine.project.path
    template = sqlite_engine.project.content_dir / CHECK_IN
    template.write_text(template.read_text().replace("{{ rep.name }}", "{{ rep.name }}\n" + text))
    sd = seed(sqlite_engine)
    c = client(sqlite_engine)
    sign_in(c, "admin@example.com")
    # CPU seconds, not the wall clock: a loaded machine must not fail this, a runaway render must
    started = time.process_time()
    page = c.get(f"/queue/{sd.pending['rep@example.com'][0]}")  # the preview renders it
    assert page.status_code == 200 and "check-in.email.j2" in page.text
    rules = c.get("/rules")  # the rules page checks the project, sample rendering included
    assert rules.status_code == 200
    assert time.process_time() - started < 15, "rendering a hostile template must fail fast"
    if case == "nested-loops":  # and `outreach check` itself, once: a subprocess costs seconds
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = cli(root, "check", timeout=60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime < 10
        assert "Traceback" not in p.stderr


def test_a_runaway_template_is_rendered_once_per_queue_page(sqlite_engine: Engine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    template = sqlite_engine.project.content_dir / CHECK_IN
    runaway = dict(RUNAWAY)["nested-loops"]
    template.write_text(template.read_text().replace("{{ rep.name }}", "{{ rep.name }}\n" + runaway))
    seed(sqlite_engine)
    c = client(sqlite_engine)
    sign_in(c, "admin@example.com")
    rendered: list[str | None] = []
    real = page_data.render_touch

    def counted(*args: Any, **kwargs: Any) -> Any:
        rendered.append(args[2].content)
        return real(*args, **kwargs)

    monkeypatch.setattr(page_data, "render_touch", counted)
    page = c.get("/queue")
    assert page.status_code == 200
    # every check-in card says why it cannot be sent; the template ran (and ran out of time) once
    assert page.text.count("took too long to render") >= 2
    assert rendered.count("interested/check-in") == 1


# --- 3: the HTML part escapes contact data -------------------------------------------------------------

def test_the_html_part_escapes_contact_data_and_the_text_part_stays_plain(sqlite_engine: Engine) -> None:
    content = sqlite_engine.project.content_dir
    template = content / CHECK_IN
    template.write_text(template.read_text() + "{% block html %}<p>Hi {{ contact.first_name }},</p>"
                        "{% include '_sig.j2' %}{% endblock %}\n")
    (content / "_sig.j2").write_text("<p>{{ contact.company }}</p>")
    sd = seed(sqlite_engine)
    evil = '<script>alert("x")</script>'
    with session_scope(sqlite_engine.db) as s:
        t = s.get(Touch, sd.pending["rep@example.com"][0])
        assert t is not None
        contact = s.get(Contact, t.contact_id)
        assert contact is not None
        contact.first_name, contact.company = evil, "<b>&Co</b>"
        s.add(contact)
        s.flush()
        msg = build_message(sqlite_engine.settings, content, t, contact, sqlite_engine.project.rules)
    assert msg.html is not None
    assert "<script>" not in msg.html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in msg.html
    assert "&lt;b&gt;&amp;Co&lt;/b&gt;" in msg.html  # in an included partial too
    assert evil in msg.text and evil in (msg.subject or "")  # plain text stays as written


# --- 4: sessions can be revoked ------------------------------------------------------------------------

def test_signing_out_ends_the_session_on_the_server(sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    c = client(sqlite_engine)
    token = sign_in(c, "rep@example.com")
    stolen = dict(c.cookies)
    before = user_row(sqlite_engine, "rep@example.com")
    assert before is not None
    assert c.post("/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
    after = user_row(sqlite_engine, "rep@example.com")
    assert after is not None and after.session_version == before.session_version + 1
    replay = client(sqlite_engine)
    replay.cookies.update(stolen)  # the cookie as it was before signing out
    answer = replay.get("/queue", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


REVOKE: list[tuple[str, Any]] = [
    ("password-removed", lambda u: setattr(u, "password_hash", None)),
    ("disabled", lambda u: setattr(u, "disabled_at", u.created_at)),
    ("version-bumped", lambda u: setattr(u, "session_version", u.session_version + 1)),
]


@pytest.mark.parametrize(("case", "change"), REVOKE, ids=[r[0] for r in REVOKE])
def test_a_session_dies_with_what_it_was_bound_to(sqlite_engine: Engine, case: str, change: Any) -> None:
    seed(sqlite_engine)
    c = client(sqlite_engine)
    sign_in(c, "rep@example.com")
    assert c.get("/queue", follow_redirects=False).status_code == 200
    with session_scope(sqlite_engine.db) as s:
        u = s.execute(select(User).where(col(User.email) == "rep@example.com")).scalar_one()
        change(u)
        s.add(u)
    assert c.get("/queue", follow_redirects=False).status_code == 303


def _login(c: Any, email: str, password: str = PASSWORD) -> int:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"email": email, "password": password, "csrf": token}, follow_redirects=False)
    return int(r.status_code)


def test_no_password_or_disabled_means_no_sign_in_and_no_token(sqlite_engine: Engine, tmp_path: Path) -> None:
    sd = seed(sqlite_engine)
    root = sqlite_engine.project.path
    p = cli(root, "users", "disable", "rep@example.com")
    assert p.returncode == 0, p.stderr
    u = user_row(sqlite_engine, "rep@example.com")
    assert u is not None and u.disabled_at is not None
    c = client(sqlite_engine)
    assert _login(c, "rep@example.com") == 401
    assert c.get("/api/contacts", headers=bearer(sd, "rep@example.com")).status_code == 401
    with session_scope(sqlite_engine.db) as s:
        add_user(s, "apionly@example.com", "rep", None)
    assert _login(c, "apionly@example.com", "") == 401
    assert _login(c, "apionly@example.com", "anything at all") == 401
    p = cli(root, "users", "remove", "rep2@example.com")
    assert p.returncode == 0, p.stderr
    assert user_row(sqlite_engine, "rep2@example.com") is None
    assert c.get("/api/contacts", headers=bearer(sd, "rep2@example.com")).status_code == 401
    assert cli(root, "users", "remove", "nobody@example.com").returncode == 2


def test_users_add_reads_the_password_from_stdin_and_refuses_a_silent_passwordless_user(
        sqlite_engine: Engine) -> None:
    root = sqlite_engine.project.path
    p = cli(root, "users", "add", "piped@example.com", "--role", "rep", stdin="a piped password\n")
    assert p.returncode == 2 and "--password-stdin" in p.stderr
    assert user_row(sqlite_engine, "piped@example.com") is None
    p = cli(root, "users", "add", "rita@example.com", "--role", "rep", "--name", "Rita Reyes", "--timezone",
            "America/New_York", "--password-stdin", stdin="correct horse battery 9\nsecond line\n")
    assert p.returncode == 0, p.stderr
    u = user_row(sqlite_engine, "rita@example.com")
    assert u is not None and u.name == "Rita Reyes" and u.timezone == "America/New_York"
    c = client(sqlite_engine)
    assert _login(c, "rita@example.com", "correct horse battery 9") == 303
    p = cli(root, "users", "add", "api@example.com", "--role", "marketer", "--no-password")
    assert p.returncode == 0 and "API only" in p.stdout
    assert cli(root, "users", "add", "tz@example.com", "--role", "rep", "--timezone", "Mars/Base",
               "--no-password").returncode == 2


# --- 5: the secret key ---------------------------------------------------------------------------------

WEAK_KEYS = [("short", "abc123"), ("placeholder", "change-me-to-a-long-random-secret-value-please"),
             ("low-entropy", "a" * 64), ("two-letters", "ab" * 32)]


@pytest.mark.parametrize(("case", "key"), WEAK_KEYS, ids=[k[0] for k in WEAK_KEYS])
def test_a_weak_secret_key_is_refused_on_a_public_address(tmp_path: Path, case: str, key: str) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'o.db'}",
                       **{"server.public_url": "https://crm.example.com", "server.secret_key": key})
    with pytest.raises(ConfigError) as refused:
        Project.open(root)
    text = str(refused.value)
    assert "config.yaml:" in text and "server.secret_key" in text
    p = cli(root, "check")
    assert p.returncode == 2 and "server.secret_key" in p.stdout + p.stderr
    local = make_project(tmp_path / "local", f"sqlite:///{tmp_path / 'l.db'}", **{"server.secret_key": key})
    Project.open(local)  # on this machine only, any key will do
    db.dispose_all()


def test_the_generated_key_and_the_sqlite_file_are_private(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "sqlite:///outreach.db")
    old = os.umask(0o022)
    try:
        assert cli(root, "check").returncode in (0, 1)
        assert cli(root, "users", "add", "api@example.com", "--role", "rep", "--no-password").returncode == 0
    finally:
        os.umask(old)
    for path in (root / SECRET_FILE, root / "outreach.db"):
        assert path.exists(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path.name}: {oct(path.stat().st_mode)}"


# --- 6, 7: a live server: tokens out of the access log, bodies limited before anything else ------------

@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """One `outreach run` for the module's live tests (none changes what another checks: the bodies
    are refused before the app, and only the sign-in test signs in)."""
    tmp_path = tmp_path_factory.mktemp("live")
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'live.db'}", **ANY_PORT, **{
        "server.trusted_proxies": ["127.0.0.1"], "dispatch.poll_every": "1d", "dispatch.plan_every": "1d"})
    log = tmp_path / "run.log"
    server, base = start_run(root, log)
    try:
        yield base, root, log
    finally:
        server.terminate()
        server.wait(timeout=30)
        db.dispose_all()


def test_tokens_never_reach_the_access_log(live: tuple[str, Path, Path]) -> None:
    base, _, log = live
    inbound_token, unsubscribe_token = "InboundTok3n-s3cr3t", "UnsubTok3n.s3cr3t-sig"
    httpx.post(f"{base}/webhooks/sendgrid/inbound?token={inbound_token}", data={"x": "1"})
    httpx.get(f"{base}/unsubscribe/{unsubscribe_token}")
    httpx.get(f"{base}/healthz?a=1&token={inbound_token}")
    time.sleep(0.5)
    text = log.read_text()
    assert "/webhooks/sendgrid/inbound?token=[redacted]" in text and "/unsubscribe/[redacted]" in text
    assert inbound_token not in text and unsubscribe_token not in text


def _raw_post(base: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, float]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    started = time.monotonic()
    conn.putrequest("POST", path)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    try:
        conn.send(body)
    except OSError:
        pass
    status = conn.getresponse().status
    conn.close()
    return status, time.monotonic() - started


BODIES = [
    ("api-stated", "/api/evidence", {"Content-Length": str(400 * 1024 * 1024), "Content-Type": "application/json"}),
    ("login-stated", "/login", {"Content-Length": str(300 * 1024 * 1024),
                                "Content-Type": "application/x-www-form-urlencoded"}),
    ("webhook-stated", "/webhooks/twilio/sms", {"Content-Length": str(100 * 1024 * 1024)}),
]


@pytest.mark.parametrize(("case", "path", "headers"), BODIES, ids=[b[0] for b in BODIES])
def test_a_body_over_the_limit_is_refused_before_auth(live: tuple[str, Path, Path], case: str, path: str,
                                                      headers: dict[str, str]) -> None:
    base, _, _ = live
    status, took = _raw_post(base, path, headers, b"{" + b" " * 1024)  # the rest never comes
    assert status == 413 and took < 10


def test_a_chunked_body_is_counted_as_it_streams(live: tuple[str, Path, Path]) -> None:
    """A chunked body (no Content-Length) is answered 413 while it is still streaming, unauthenticated."""
    base, _, _ = live
    host, port = base.removeprefix("http://").split(":")
    chunk = b" " * (1024 * 1024)
    answer = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /api/evidence HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent < 400:  # 400 MB, if the server kept reading before answering
            sent += 1
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                break
            if io_select.select([sock], [], [], 0.01)[0]:
                break
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert sent < 50


def test_sign_in_throttling_counts_the_real_client_and_the_account(live: tuple[str, Path, Path]) -> None:
    base, root, _ = live
    engine = Engine(Project.open(root))
    seed(engine)
    c = httpx.Client(base_url=base)

    def attempt(email: str, forwarded: str | None) -> int:
        token = csrf_of(c.get("/login").text)
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        return c.post("/login", data={"email": email, "password": "wrong password", "csrf": token},
                      headers=headers).status_code

    # 127.0.0.1 is a trusted proxy here: each forwarded address is its own client, the account is one
    codes = [attempt("rep@example.com", f"203.0.113.{i}") for i in range(25)]
    assert codes[:20] == [401] * 20 and codes[-1] == 429
    # a forged hop further left of the proxy's word changes nothing: the proxy's own entry counts
    codes = [attempt("admin@example.com", f"198.51.100.{i}, 192.0.2.7") for i in range(6)]
    assert codes[-1] == 429


# --- 8: security headers on every response -------------------------------------------------------------

@pytest.mark.parametrize("https", [False, True])
def test_every_response_carries_the_security_headers(tmp_path: Path, https: bool) -> None:
    url = "https://crm.example.com" if https else "http://127.0.0.1:8000"
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'h.db'}", **{"server.public_url": url})
    engine = Engine(Project.open(root))
    c = client(engine)
    for answer in (c.get("/healthz"), c.get("/api/contacts"), c.get("/static/app.css"),
                   c.post("/webhooks/twilio/sms", data={"x": "1"}), c.get("/openapi.json"), c.get("/login"),
                   c.get("/unsubscribe/not-a-token")):
        h = answer.headers
        assert h.get("x-content-type-options") == "nosniff", answer.url
        assert h.get("x-frame-options") == "DENY" and "frame-ancestors 'none'" in h.get("content-security-policy", "")
        assert h.get("referrer-policy") == "same-origin"
        assert ("strict-transport-security" in h) == https
    db.dispose_all()


def test_the_access_log_filter_is_installed_by_run() -> None:
    from outreach.server import RedactTokens, install_log_redaction

    install_log_redaction()
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.access").filters)
