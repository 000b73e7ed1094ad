"""A CRM export in a legacy encoding, through a mapping: named with --encoding it imports; read as
UTF-8 the row with the unreadable byte is rejected and named, and the others import. Duplicate ids
in the export are rejected as in our own CSV."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.mappings import SALESFORCE
from outreach.models import Contact
from tests.support import at

EXPORT = ("Contact ID,First Name,Last Name,Email,Created Date\n"
          "003A,José,Müller,jose@example.es,3/15/2024\n"
          "003B,Ann,Lee,ann@example.org,3/16/2024\n"
          "003A,Dup,Licate,dup@example.org,3/17/2024\n")


def run(engine: Engine, path: Path, encoding: str | None):  # type: ignore[no-untyped-def]
    with session_scope(engine.db) as s:
        return import_csv(s, path, region="US", first_stage="aware", now=at("2026-03-02 10:00"), encoding=encoding,
                          mapping=SALESFORCE)


def test_a_cp1252_export_through_the_salesforce_mapping(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "sf.csv"
    path.write_bytes(EXPORT.encode("cp1252"))
    wrong = run(engine, path, None)  # read as UTF-8: José's row is rejected, so row 4's 003A is the first
    assert wrong.created == 2 and [r for r, _ in wrong.rejected] == [2]
    assert "First Name has the byte 0xE9" in wrong.rejected[0][1] and "--encoding" in wrong.rejected[0][1]
    right = run(engine, path, "cp1252")  # now row 2 takes 003A over, and row 4 gives it a second time
    assert (right.created, right.updated) == (0, 2) and [r for r, _ in right.rejected] == [4]
    assert "external_id '003A' is on row 2 too" in right.rejected[0][1]
    with session_scope(engine.db) as s:
        jose = s.exec(select(Contact).where(Contact.email == "jose@example.es")).one()
    assert (jose.first_name, jose.last_name, jose.external_id) == ("José", "Müller", "003A")
    assert jose.attributes == {"crm_created_at": "2024-03-15"}
