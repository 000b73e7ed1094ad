"""CSV import: good rows land, bad rows are reported by row number and written aside."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlmodel import select

from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact
from tests.support import at

HEADER = ("email,phone,first_name,last_name,company,title,timezone,owner,external_id,consent_email,consent_sms,"
          "industry\n")


def run_import(engine: Engine, path: Path, strict: bool = False):  # type: ignore[no-untyped-def]
    with session_scope(engine.db) as s:
        result = import_csv(s, path, region="US", first_stage="aware", now=at("2026-03-02 10:00"), strict=strict)
        if strict and result.rejected:
            s.rollback()
    return result


def contacts(engine: Engine) -> dict[str, Contact]:
    with session_scope(engine.db) as s:
        return {c.email or c.phone or "": c for c in s.exec(select(Contact)).all()}


def test_good_rows_import_and_bad_rows_are_reported(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(HEADER +
                    "Ada@Example.org,(415) 555-0123,Ada,King,Analytical,CTO,Europe/London,rep@x.io,E1,yes,1,software\n"
                    "not-an-email,,Bad,Email,,,,,E2,,,\n"
                    ",,No,Address,,,,,E3,,,\n"
                    "tz@example.org,,Bad,Zone,,,Mars/Olympus,,E4,,,\n"
                    "phone@example.org,12,Bad,Phone,,,,,E5,,,\n"
                    "consent@example.org,,Bad,Consent,,,,,E6,maybe,,\n"
                    "grace@example.org,+44 20 7946 0958,Grace,Hopper,,,,,,no,,finance\n")
    result = run_import(engine, path)
    assert (result.created, result.updated) == (2, 0)
    assert [row for row, _ in result.rejected] == [3, 4, 5, 6, 7]
    reasons = dict(result.rejected)
    assert "email 'not-an-email'" in reasons[3]
    assert "no address" in reasons[4]
    assert "Mars/Olympus" in reasons[5]
    assert "phone '12'" in reasons[6]
    assert "consent_email 'maybe'" in reasons[7]
    rejected = list(csv.DictReader((tmp_path / "people.rejected.csv").open()))
    assert [r["row"] for r in rejected] == ["3", "4", "5", "6", "7"] and rejected[0]["external_id"] == "E2"
    people = contacts(engine)
    ada = people["ada@example.org"]
    assert ada.phone == "+14155550123" and ada.consent_sms is True and ada.attributes == {"industry": "software"}
    assert ada.stage == "aware" and ada.owner == "rep@x.io"
    assert people["grace@example.org"].phone == "+442079460958"
    assert people["grace@example.org"].consent_email is False


def test_upsert_by_external_id_then_email(engine: Engine, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "ada@example.org,,Ada,King,,,,,E1,,,software\nbob@example.org,,Bob,,,,,,,,,\n")
    run_import(engine, first)
    second = tmp_path / "b.csv"
    second.write_text(HEADER + "ada.new@example.org,,Ada,Lovelace,,CTO,,,E1,,yes,\nbob@example.org,,Robert,,,,,,,,,\n")
    result = run_import(engine, second)
    assert (result.created, result.updated) == (0, 2)
    people = contacts(engine)
    assert set(people) == {"ada.new@example.org", "bob@example.org"}
    ada = people["ada.new@example.org"]
    assert ada.last_name == "Lovelace" and ada.title == "CTO" and ada.attributes == {"industry": "software"}
    assert people["bob@example.org"].first_name == "Robert"


def test_strict_imports_nothing_when_a_row_is_bad(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "ok@example.org,,,,,,,,,,,\nbad,,,,,,,,,,,\n")
    result = run_import(engine, path, strict=True)
    assert [r for r, _ in result.rejected] == [3]
    assert contacts(engine) == {}
