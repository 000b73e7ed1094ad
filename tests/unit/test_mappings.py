"""Column mappings: CRM exports read as our columns (dates, opt-out flags, two phone columns), and
mapping files checked with messages that name the file and the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.errors import InvalidInput
from outreach.mappings import HUBSPOT, SALESFORCE, load_mapping

HS = ["Record ID", "Email", "Phone Number", "Mobile Phone Number", "Create Date", "Unsubscribed from all email",
      "Favourite Colour"]


@pytest.mark.parametrize(("values", "expected"), [
    (["7", "a@x.org", "", "(212) 555-0102", "2024-03-15 10:23", "false", "teal"],
     {"external_id": "7", "email": "a@x.org", "phone": "(212) 555-0102", "crm_created_at": "2024-03-15T10:23:00",
      "consent_email": "yes", "favourite colour": "teal"}),
    (["8", "b@x.org", "+1 415 555 0101", "+1 415 555 0199", "2024-03-15", "true", ""],
     {"external_id": "8", "email": "b@x.org", "phone": "+1 415 555 0101", "crm_created_at": "2024-03-15",
      "consent_email": "no", "favourite colour": ""}),
])
def test_hubspot_rows(values: list[str], expected: dict[str, str]) -> None:
    assert HUBSPOT.row(HS, dict(zip(HS, values, strict=True))) == expected


@pytest.mark.parametrize(("created", "landed"), [
    ("3/15/2024", "2024-03-15"), ("3/16/2024, 2:05 PM", "2024-03-16T14:05:00"),
    ("2024-03-16T14:05:00.000Z", "2024-03-16T14:05:00+00:00")])
def test_salesforce_dates(created: str, landed: str) -> None:
    row = SALESFORCE.row(["Created Date", "Email Opt Out"], {"Created Date": created, "Email Opt Out": "1"})
    assert row == {"crm_created_at": landed, "consent_email": "no"}


def test_a_value_that_does_not_convert_names_its_column() -> None:
    with pytest.raises(InvalidInput, match="Create Date '15/03/2024' is not a date"):
        HUBSPOT.row(["Create Date"], {"Create Date": "15/03/2024"})
    with pytest.raises(InvalidInput, match="Unsubscribed from all email 'maybe'"):
        HUBSPOT.row(["Unsubscribed from all email"], {"Unsubscribed from all email": "maybe"})


def test_a_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "pipedrive.yaml"
    path.write_text('columns:\n  "E-mail": email\n  Created: {to: crm_created_at, date: "%d.%m.%Y"}\n'
                    '  Fax: null\nothers: drop\n')
    mapping = load_mapping(str(path))
    assert mapping.header(["E-mail", "Fax", "Notes"]) == ["email", "", ""]
    assert mapping.row(["E-mail", "Created", "Fax", "Notes"], {"E-mail": "a@x.org", "Created": "15.03.2024",
                                                              "Fax": "1", "Notes": "n"}) == {
        "email": "a@x.org", "crm_created_at": "2024-03-15"}


@pytest.mark.parametrize(("text", "error"), [
    ("- a\n", "has `columns:`"),
    ("columns: {a: email}\nothers: maybe\n", "others is keep or drop"),
    ("columns: {a: email}\nextra: 1\n", "unknown key(s) extra"),
    ("columns: {a: {to: email, date: 5}}\n", "a: date is a format"),
    ("columns: {a: [email]}\n", "a: give our column's name"),
    ("columns: [\n", "not YAML"),
])
def test_bad_mapping_files(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        load_mapping(str(path))
    assert error in str(caught.value) and str(path) in str(caught.value)


def test_an_unknown_mapping() -> None:
    with pytest.raises(InvalidInput, match=r"neither a built-in mapping \(hubspot, salesforce\)"):
        load_mapping("pipedrive")
