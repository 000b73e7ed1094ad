"""The rep as sender, through the sandbox with the real SendGrid SDK: a touch to a contact owned by a
user goes out from the rep's address and name with their signature, and Reply-To lists both the
engine's reply address and the rep's inbox; a rep off the sending domain sends from the project address
under their own name; unowned contacts (and owners who are no user) get the project sender. SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from channels.sendgrid_inbound import parse_inbound
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.inbound import inbound_evidence
from outreach.models import Contact
from outreach.project import Project
from outreach.queue import list_touches, touch_json
from outreach.sandbox.server import Sandbox
from outreach.senders import from_emails
from outreach.users import add_user
from tests.support import ALWAYS, at, make_project

MONDAY = at("2026-03-02 15:00")
CSV = """email,first_name,owner
ann@acme.example,Ann,rita@example.com
bob@beta.example,Bob,otto@partner.example
cy@cyan.example,Cy,
dee@delta.example,Dee,ghost@example.com
"""
SIGNATURE = """{% block text %}{{ rep.name }} | Account Executive | {{ rep.email }}{% endblock %}
{% block html %}<p><b>{{ rep.name }}</b><br>Account Executive</p>{% endblock %}"""


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_touches_go_out_as_the_owning_rep(tmp_path: Path, database: str, sandbox: Sandbox) -> None:
    root = make_project(tmp_path / "proj", database, **{
        "providers.email": "sendgrid", "sendgrid.api_base": sandbox.url, "sendgrid.api_key": "SG.test-key",
        "sendgrid.webhook_public_key": sandbox.public_key,
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    (root / "content" / "signatures").mkdir()
    (root / "content" / "signatures" / "_rita-example-com.j2").write_text(SIGNATURE)
    (tmp_path / "people.csv").write_text(CSV)
    engine = Engine(Project.open(root))
    with session_scope(engine.db) as s:
        add_user(s, "rita@example.com", "rep", None, name="Rita Reyes")
        add_user(s, "otto@partner.example", "rep", None, name="Otto Ortiz")
        import_csv(s, tmp_path / "people.csv", region="US", first_stage="aware", now=MONDAY)
    engine.plan(MONDAY)
    assert engine.dispatch(MONDAY).sent == 4
    got = {m["to"]: m for m in sandbox.messages("email")}

    ann = got["ann@acme.example"]
    assert (ann["from"], ann["from_name"]) == ("rita@example.com", "Rita Reyes")
    assert ann["request"]["reply_to_list"][0]["email"].startswith("reply+")
    assert ann["request"]["reply_to_list"][1] == {"email": "rita@example.com", "name": "Rita Reyes"}
    assert "reply_to" not in ann["request"]
    assert ann["text"].endswith("-- \nRita Reyes | Account Executive | rita@example.com")
    assert "<b>Rita Reyes</b>" in ann["html"] and "Rita Reyes" in ann["text"].split("-- ")[0]  # rep.name too

    bob = got["bob@beta.example"]  # partner.example is not the domain SendGrid sends for here
    assert (bob["from"], bob["from_name"]) == ("sales@example.com", "Otto Ortiz (Example Sales)")
    assert bob["request"]["reply_to_list"][1]["email"] == "otto@partner.example"
    assert "-- \n" not in bob["text"]  # no signature of Otto's, and no default one

    for unowned in ("cy@cyan.example", "dee@delta.example"):
        m = got[unowned]
        assert (m["from"], m["from_name"]) == ("sales@example.com", "Example Sales")
        assert m["request"]["reply_to"]["email"].startswith("reply+") and "reply_to_list" not in m["request"]

    # the buyer answers all of Reply-To (the engine and the rep): the engine still takes it as the reply
    to = ", ".join(a["email"] for a in ann["request"]["reply_to_list"])
    mail = parse_inbound({"headers": f"From: Ann <ann@acme.example>\nTo: {to}\nSubject: Re: hi\n".encode(),
                          "from": b"Ann <ann@acme.example>", "to": to.encode(), "subject": b"Re: hi",
                          "text": b"Yes, let's talk.", "SPF": b"pass", "dkim": b"{@acme.example : pass}"})
    engine.record(inbound_evidence(engine.settings, mail, MONDAY), MONDAY)
    with session_scope(engine.db) as s:
        assert s.exec(select(Contact.stage).where(Contact.email == "ann@acme.example")).one() == "interested"

    with session_scope(engine.db) as s:
        pairs = list_touches(s)
        senders = from_emails(s, engine.settings, (c.owner for _t, c in pairs))
        rows = {c.email: touch_json(t, c, senders[c.owner])["from_email"] for t, c in pairs}
    assert rows == {"ann@acme.example": "rita@example.com", "bob@beta.example": "sales@example.com",
                    "cy@cyan.example": "sales@example.com", "dee@delta.example": "sales@example.com"}
