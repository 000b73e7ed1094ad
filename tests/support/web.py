"""What the web tests share: a project with buyers, reps and pending touches, and a test client.

The example contacts: ada (1), grace (2) and linus (5) belong to rep@example.com, alan (3) and
katherine (4) to rep2@example.com, margaret (6) to nobody. Everybody clicked two days ago (stage
`interested`, so the rep-approved check-in is pending) and ada and grace viewed pricing just now
(a pending pricing-follow-up meeting)."""

from __future__ import annotations

import functools
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlmodel import col

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Touch, TouchStatus
from outreach.users import add_user

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 and warns once, on import, when only httpx is installed
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery"
USERS = {"admin@example.com": "admin", "marketer@example.com": "marketer", "rep@example.com": "rep",
         "rep2@example.com": "rep"}


@dataclass
class Seed:
    tokens: dict[str, str]
    contacts: dict[str, int]  # first name -> id
    pending: dict[str | None, list[int]] = field(default_factory=dict)  # owner -> pending touch ids
    extra: dict[str, int] = field(default_factory=dict)  # other ids a test adds (a reply's evidence)

    def other_touch(self) -> int:
        """A touch rep@example.com must not see."""
        return self.pending["rep2@example.com"][0]


@functools.cache
def password_hash() -> str:
    # argon2 takes ~0.2 s a hash on purpose: hash the test password once, not four times a test
    return PasswordHasher().hash(PASSWORD)


def seed(engine: Engine) -> Seed:
    now = datetime.now(UTC)
    root = engine.project.path
    with session_scope(engine.db) as s:
        import_csv(s, root / "contacts.csv", region="US", first_stage=engine.project.rules.first_stage,
                   now=now - timedelta(days=3))
        tokens = {}
        for email, role in USERS.items():
            user, tokens[email] = add_user(s, email, role, None)
            user.password_hash = password_hash()
            s.add(user)
    with session_scope(engine.db) as s:
        contacts = {c.first_name: c.id for c in s.execute(select(Contact)).scalars()}
    clicked = now - timedelta(days=2)
    engine.record([EvidenceIn("email.clicked", clicked, "cli", contact_id=i) for i in contacts.values()],
                  now=clicked)
    engine.record([EvidenceIn("pricing.viewed", now - timedelta(minutes=5), "cli", contact_id=contacts[n])
                   for n in ("Ada", "Grace")], now=now)
    engine.plan(now)
    return Seed(tokens, contacts, pending_by_owner(engine))  # type: ignore[arg-type]


def pending_by_owner(engine: Engine) -> dict[str | None, list[int]]:
    out: dict[str | None, list[int]] = {}
    with session_scope(engine.db) as s:
        rows = s.execute(select(col(Touch.id), col(Contact.owner))
                         .join(Contact, col(Contact.id) == col(Touch.contact_id))
                         .where(col(Touch.status) == TouchStatus.PENDING).order_by(col(Touch.due_at), col(Touch.id)))
        for tid, owner in rows:
            out.setdefault(owner, []).append(tid)
    return out


def touch(engine: Engine, touch_id: int) -> Touch:
    with session_scope(engine.db) as s:
        t = s.get(Touch, touch_id)
        assert t is not None
        return t


def client(engine: Engine) -> TestClient:
    from outreach.web.app import create_app

    return TestClient(create_app(engine), base_url="http://testserver")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html) or re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(c: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; return the session's CSRF token for later posts."""
    token = csrf_of(c.get("/login").text)
    answer = c.post("/login", data={"email": email, "password": password, "csrf": token, "next": "/queue"},
                    follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return csrf_of(c.get("/queue").text)


def bearer(seed: Seed, email: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {seed.tokens[email]}"}


def wait_for_charts(page: Any, count: int, seconds: float = 15.0) -> None:
    """Wait until the page has drawn `count` charts. Playwright's wait_for_function polls a string by
    `eval` in the page, which our Content-Security-Policy refuses (it passes only when the charts are
    already there at its first look): poll from here with evaluate, which the policy does not cover."""
    deadline = time.monotonic() + seconds
    drawn = -1
    while time.monotonic() < deadline:
        try:
            drawn = page.evaluate("() => (window.outreachCharts || []).length")
        except Exception:
            drawn = -1
        if drawn == count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{drawn} chart(s) drawn, expected {count}")
