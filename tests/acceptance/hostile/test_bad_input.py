"""Hostile input, table by table: bad input never loses good data. Each case goes through the real
CLI (in a subprocess) or the HTTP route and then looks at what the database holds.

- CSV import: every row-level fault rejects that row (row number, reason) and the good rows import;
  cells written back to FILE.rejected.csv are escaped against formula injection.
- JSON, YAML and `--data` that are nested too deep, out of range or otherwise hostile get a 400/422
  or a FILE:LINE error naming the field, never a 500 or a traceback.
- `POST /api/evidence` deduplicates an `id` within its source, not across sources.

Later work adds its cases to these tables."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence
from tests.support.web import Seed, TestClient, bearer, client, seed

HEADER = b"email,phone,first_name,last_name,company,title,timezone,owner,external_id,consent_email,consent_sms,notes\n"


def outreach(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(project)],
                       capture_output=True, text=True, env=os.environ, timeout=120)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def row(email: str = "", first: str = "", ext: str = "", notes: str = "") -> bytes:
    return f"{email},,{first},,,,,,{ext},,,{notes}\n".encode(errors="surrogateescape")


def people(engine: Engine) -> dict[str, Contact]:
    with session_scope(engine.db) as s:
        return {c.email or "": c for c in s.execute(select(Contact)).scalars()}


# --- 1. CSV import -------------------------------------------------------------------------------


@dataclass
class CsvCase:
    id: str
    body: bytes  # the rows, after HEADER
    rejected: dict[int, str]  # row number -> a fragment of its reason
    present: dict[str, str | None]  # email -> first_name the database holds afterwards
    absent: set[str] = field(default_factory=set)
    before: bytes = b""  # rows imported first
    args: tuple[str, ...] = ()
    ext: dict[str, str] = field(default_factory=dict)  # email -> external_id afterwards


CSV_CASES = [
    CsvCase("duplicate email in the file",
            row("good@x.org", "Good") + row("a@x.org", "First", "E1") + row("A@x.org", "Second", "E2"),
            {4: "email 'a@x.org' is on row 3"}, {"good@x.org": "Good", "a@x.org": "First"},
            ext={"a@x.org": "E1"}),
    CsvCase("duplicate external id in the file",
            row("a@x.org", "A", "E1") + row("good@x.org", "Good") + row("b@x.org", "B", "E1"),
            {4: "external_id 'E1' is on row 2"}, {"a@x.org": "A", "good@x.org": "Good"}, absent={"b@x.org"}),
    CsvCase("external id of one contact, email of another",
            row("good@x.org", "Good") + row("y@x.org", "Mixed", "X1"),
            {3: "external_id 'X1' is contact"}, {"x@x.org": "X", "y@x.org": "Y", "good@x.org": "Good"},
            before=row("x@x.org", "X", "X1") + row("y@x.org", "Y", "Y1"), ext={"x@x.org": "X1", "y@x.org": "Y1"}),
    CsvCase("two rows for one existing contact",
            row("new@x.org", "New", "A1") + row("a@x.org", "Again") + row("good@x.org", "Good"),
            {3: "the same contact"}, {"new@x.org": "New", "good@x.org": "Good"}, absent={"a@x.org"},
            before=row("a@x.org", "A", "A1")),
    CsvCase("NUL byte", row("good@x.org", "Good") + row("n@x.org", "A\x00B") + row("ok@x.org", "Ok"),
            {3: "first_name contains a NUL byte"}, {"good@x.org": "Good", "ok@x.org": "Ok"}, absent={"n@x.org"}),
    CsvCase("undecodable byte", row("good@x.org", "Good") + b"m@x.org,,Jos\xe9,,,,,,,,,\n" + row("ok@x.org", "Ok"),
            {3: "first_name has the byte 0xE9, which is not utf-8"}, {"good@x.org": "Good", "ok@x.org": "Ok"},
            absent={"m@x.org"}),
    CsvCase("name over its limit", row("good@x.org", "Good") + row("long@x.org", "n" * 1001),
            {3: "first_name is 1,001 characters long (at most 1,000)"}, {"good@x.org": "Good"},
            absent={"long@x.org"}),
    CsvCase("attribute over its limit", row("good@x.org", "Good") + row("long@x.org", "L", notes="n" * 10_001),
            {3: "notes is 10,001 characters long"}, {"good@x.org": "Good"}, absent={"long@x.org"}),
    CsvCase("cell over the csv module's limit", row("good@x.org", "Good") + row("big@x.org", "B", notes="n" * 200_000)
            + row("ok@x.org", "Ok"), {3: "not a CSV row"}, {"good@x.org": "Good", "ok@x.org": "Ok"},
            absent={"big@x.org"}),
    CsvCase("external id over its limit", row("good@x.org", "Good") + row("e@x.org", "E", "e" * 256),
            {3: "external_id is 256 characters long (at most 255)"}, {"good@x.org": "Good"}, absent={"e@x.org"}),
]


@pytest.mark.parametrize("case", CSV_CASES, ids=[c.id for c in CSV_CASES])
def test_a_bad_row_is_rejected_and_the_good_rows_import(case: CsvCase, project_path: Path, engine: Engine) -> None:
    if case.before:
        (project_path / "before.csv").write_bytes(HEADER + case.before)
        assert outreach(project_path, "contacts", "import", str(project_path / "before.csv")).returncode == 0
    path = project_path / "people.csv"
    path.write_bytes(HEADER + case.body)
    p = outreach(project_path, "contacts", "import", str(path), *case.args)
    assert p.returncode == 1, p.stdout + p.stderr
    for row_no, why in case.rejected.items():
        assert f"people.csv: row {row_no}: {why}" in p.stderr, p.stderr
    rejected = list(csv.DictReader((project_path / "people.rejected.csv").open(encoding="utf-8",
                                                                             errors="replace")))
    assert [int(r["row"]) for r in rejected] == list(case.rejected)
    held = people(engine)
    assert {e: held[e].first_name for e in case.present if e in held} == case.present
    assert not case.absent & set(held)
    assert {e: held[e].external_id for e in case.ext} == case.ext


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # decoded before any database
def test_encoding_names_the_file_encoding_and_utf8_takes_a_bom(project_path: Path, engine: Engine) -> None:
    latin = project_path / "latin.csv"
    latin.write_bytes(HEADER + "jose@x.org,,José,Müller,,,,,,,,\n".encode("cp1252"))
    assert outreach(project_path, "contacts", "import", str(latin), "--encoding", "cp1252").returncode == 0
    bom = project_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + HEADER + "zoe@x.org,,Zoë,,,,,,,,,\n".encode())
    assert outreach(project_path, "contacts", "import", str(bom)).returncode == 0
    held = people(engine)
    assert (held["jose@x.org"].first_name, held["jose@x.org"].last_name) == ("José", "Müller")
    assert held["zoe@x.org"].first_name == "Zoë"
    unknown = outreach(project_path, "contacts", "import", str(latin), "--encoding", "klingon")
    assert unknown.returncode == 2 and "klingon" in unknown.stderr


def test_rejected_cells_are_escaped_against_formula_injection(project_path: Path, engine: Engine) -> None:
    path = project_path / "people.csv"
    path.write_bytes(HEADER + row("good@x.org", "Good") + row("=1+1@x", "=HYPERLINK(\"http://evil\")", "+E1",
                                                              "@SUM(A1)") + row("-bad", "\tTab"))
    assert outreach(project_path, "contacts", "import", str(path)).returncode == 1
    rejected = list(csv.DictReader((project_path / "people.rejected.csv").open(encoding="utf-8")))
    assert [r["email"] for r in rejected] == ["'=1+1@x", "'-bad"]
    assert rejected[0]["first_name"] == "'=HYPERLINK(\"http://evil\")"
    assert (rejected[0]["external_id"], rejected[0]["notes"]) == ("'+E1", "'@SUM(A1)")
    assert rejected[1]["first_name"] == "'\tTab"
    for r in rejected:
        assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in r.values())
    assert set(people(engine)) == {"good@x.org"}


# --- 2. Nested, out-of-range and hostile values: 400/422 or FILE:LINE, never a 500 ---------------

ADA = "ada@analytical.example"  # rep@example.com's contact in the seed


def evidence_count(engine: Engine) -> int:
    with session_scope(engine.db) as s:
        return int(s.execute(select(func.count()).select_from(Evidence)).scalar_one())


def _event(contact: str = f'{{"email": "{ADA}"}}', **fields: str) -> str:
    extra = "".join(f', "{k}": {v}' for k, v in fields.items())
    return f'{{"contact": {contact}, "type": "pricing.viewed"{extra}}}'


API_CASES = [  # (id, raw JSON body, the field the answer names)
    ("data nested 10,000 levels", _event(data='{"a": ' + "[" * 10_000 + "1" + "]" * 10_000 + "}"), ""),
    ("data nested 100 levels", _event(data='{"a": ' * 100 + "1" + "}" * 100), "nested more than 32"),
    ("occurred_at past year 9999", _event(occurred_at='"99999-01-01"'), "occurred_at"),
    ("occurred_at before year 1 in UTC", _event(occurred_at='"0001-01-01T00:00:00+05:00"'), "occurred_at"),
    ("occurred_at in the 19th century", _event(occurred_at='"1850-01-01T00:00:00Z"'), "occurred_at"),
    ("integer of 5,000 digits in data", _event(data='{"n": ' + "9" * 5000 + "}"), ""),
    ("integer over 64 bits in data", _event(data='{"n": ' + str(2**70) + "}"), "data.n"),
    ("NaN in data", _event(data='{"n": NaN}'), "data.n"),
    ("Infinity in data", _event(data='{"n": [1, Infinity]}'), "data.n[1]"),
    ("NaN as the contact's id", _event(contact='{"id": NaN}'), "id"),
    ("contact id over 32 bits", _event(contact='{"id": 99999999999999999999}'), "id"),
    ("NUL in the contact's email", _event(contact='{"email": "ada\\u0000@analytical.example"}'), "email"),
    ("NUL in the id", _event(id='"a\\u0000b"'), "id"),
    ("NUL in data", _event(data='{"x": "a\\u0000b"}'), "data.x"),
]


@pytest.fixture
def web(engine: Engine) -> tuple[Engine, Seed, TestClient]:
    return engine, seed(engine), client(engine)


@pytest.mark.parametrize(("body", "names"), [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_hostile_json_gets_a_4xx_and_records_nothing(body: str, names: str,
                                                     web: tuple[Engine, Seed, TestClient]) -> None:
    engine, s, c = web
    before = evidence_count(engine)
    r = c.post("/api/evidence", content=body.encode(),
               headers={**bearer(s, "admin@example.com"), "content-type": "application/json"})
    assert r.status_code in (400, 422), r.text[:300]
    assert names in json.dumps(r.json()), r.text[:300]
    assert evidence_count(engine) == before


def test_a_number_too_long_for_an_id_is_no_contact(web: tuple[Engine, Seed, TestClient]) -> None:
    _engine, s, c = web
    r = c.get("/api/contacts/99999999999999999999", headers=bearer(s, "admin@example.com"))
    assert r.status_code == 404, r.text[:300]
    assert c.get("/api/contacts/\u00b2", headers=bearer(s, "admin@example.com")).status_code == 404  # a digit, not 0-9


YAML_CASES = [  # (id, file, its text, what stderr says)
    ("rules nested 10,000 levels", "rules/deep.yaml", "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
     "rules/deep.yaml:1: YAML syntax error: nested more than 100 levels deep"),
    ("rules nested in block style", "rules/deep.yaml", "".join(f"{' ' * i}k{i}:\n" for i in range(150)),
     "rules/deep.yaml:100: YAML syntax error: nested more than 100 levels deep"),
    ("rules alias bomb", "rules/bomb.yaml", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
     + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
     "rules/bomb.yaml:"),
    ("config nested 10,000 levels", "config.yaml", None, "config.yaml:"),
    ("holiday past year 9999", "config.yaml", "policy: {holidays: ['99999-01-01']}", "config.yaml:"),
]


@pytest.mark.parametrize(("name", "text", "says"), [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_hostile_yaml_is_a_file_line_error(name: str, text: str | None, says: str, tmp_path: Path) -> None:
    from tests.support import make_project

    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'o.db'}")
    path = root / name
    if name == "config.yaml":
        config = path.read_text()
        if text is None:
            text = config + "extra: " + "[" * 10_000 + "]" * 10_000 + "\n"
        else:
            text = config.replace("  holidays: []", "  holidays: ['99999-01-01']")
    path.write_text(text)
    p = outreach(root, "check")
    assert p.returncode == 2, p.stdout + p.stderr
    assert says in p.stdout + p.stderr, p.stdout + p.stderr


DATA_CASES = [  # (id, arguments after CONTACT EVENT, what stderr says)
    ("--data nested 10,000 levels", ["--data", '{"a": ' * 10_000 + "1" + "}" * 10_000], "--data"),
    ("--data nested 100 levels", ["--data", '{"a": ' * 100 + "1" + "}" * 100], "nested more than 32"),
    ("--data NaN", ["--data", '{"n": NaN}'], "NaN"),
    ("--data integer over 64 bits", ["--data", '{"n": ' + str(2**70) + "}"], "--data.n"),
    ("--data integer of 5,000 digits", ["--data", '{"n": ' + "9" * 5000 + "}"], "--data is not JSON"),
    ("--at before year 1 in UTC", ["--at", "0001-01-01T00:00:00+05:00"], "--at is out of range"),
]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database
@pytest.mark.parametrize(("args", "says"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES])
def test_hostile_evidence_add_exits_2_and_records_nothing(args: list[str], says: str, project_path: Path,
                                                          engine: Engine) -> None:
    with session_scope(engine.db) as s:  # the buyers (the import's own path is tested above)
        import_csv(s, project_path / "contacts.csv", region="US",
                   first_stage=engine.project.rules.first_stage, now=datetime.now(UTC))
    p = outreach(project_path, "evidence", "add", ADA, "pricing.viewed", *args)
    assert p.returncode == 2 and says in p.stderr, p.stderr
    assert evidence_count(engine) == 0


# --- 3. An API id is unique within its source ----------------------------------------------------


def test_an_api_id_is_deduplicated_within_its_source_only(web: tuple[Engine, Seed, TestClient]) -> None:
    engine, s, c = web

    def post(who: str, **extra: str) -> int:
        body = {"contact": {"email": ADA}, "type": "pricing.viewed", "id": "1", **extra}
        return c.post("/api/evidence", json=body, headers=bearer(s, who)).status_code

    before = evidence_count(engine)
    assert post("admin@example.com") == 201
    assert post("rep@example.com") == 201  # another API user's id "1" is another event
    assert post("admin@example.com") == 200  # the same user's again: a duplicate
    assert post("admin@example.com", source="crm") == 201
    assert post("rep@example.com", source="crm") == 200  # one source, whoever sends it
    assert post("rep@example.com", source="shop") == 201
    assert evidence_count(engine) == before + 4
    with session_scope(engine.db) as db:
        keys = db.execute(select(col(Evidence.dedupe_key)).where(col(Evidence.dedupe_key).is_not(None))).scalars()
        assert len(set(keys)) == 4
