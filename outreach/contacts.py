"""Contacts: CSV import (streamed, validated per row, upserted in batches) and lookups."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import or_, select, update
from sqlmodel import Session, col
from sqlmodel import select as select_model

from outreach.errors import InvalidInput, NotFound
from outreach.models import Contact, table_of

COLUMNS = ("email", "phone", "first_name", "last_name", "company", "title", "timezone", "owner",
           "external_id", "consent_email", "consent_sms")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
BATCH = 1000


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"email '{value.strip()}' is not an email address")
    return email


def normalize_phone(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"phone '{value.strip()}' is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"phone '{value.strip()}' is not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_consent(value: str, column: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise InvalidInput(f"{column} '{value.strip()}' must be yes/no, true/false, 1/0 or blank")


def parse_row(row: dict[str, str], region: str) -> dict[str, Any]:
    """One CSV row -> contact fields; InvalidInput names the field that is wrong."""
    get = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
    out: dict[str, Any] = {}
    if get.get("email"):
        out["email"] = normalize_email(get["email"])
    if get.get("phone"):
        out["phone"] = normalize_phone(get["phone"], region)
    if not out:
        raise InvalidInput("no address: give an email or a phone")
    if get.get("timezone"):
        try:
            ZoneInfo(get["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"timezone '{get['timezone']}' is not a known time zone") from None
        out["timezone"] = get["timezone"]
    if get.get("owner"):
        out["owner"] = normalize_email(get["owner"])
    for name in ("first_name", "last_name", "company", "title", "external_id"):
        if get.get(name):
            out[name] = get[name]
    for name in ("consent_email", "consent_sms"):
        value = parse_consent(get.get(name, ""), name)
        if value is not None:
            out[name] = value
    attributes = {k: v for k, v in get.items() if k not in COLUMNS and v}
    if attributes:
        out["attributes"] = attributes
    return out


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    rejected_file: Path | None = None


def read_rows(path: Path, region: str) -> Iterator[tuple[int, dict[str, str], dict[str, Any] | str]]:
    """Yield (row number as a spreadsheet shows it, raw row, fields or the reason it is bad)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"email", "phone"} & {f.strip().lower() for f in reader.fieldnames}:
            raise InvalidInput(f"{path.name}:1: the header needs an email or phone column "
                               f"(columns: {', '.join(COLUMNS)})")
        for raw in reader:
            row_no = reader.line_num
            if None in raw:
                yield row_no, raw, "more values than columns in the header"
                continue
            try:
                yield row_no, raw, parse_row(raw, region)
            except InvalidInput as exc:
                yield row_no, raw, str(exc)


def import_csv(session: Session, path: Path, *, region: str, first_stage: str, now: datetime,
               strict: bool = False) -> ImportResult:
    """Stream the file, upsert good rows in batches, report bad ones (and write FILE.rejected.csv).
    With strict=True one bad row imports nothing."""
    result = ImportResult()
    rejected_rows: list[dict[str, str]] = []
    fieldnames: list[str] = []
    batch: list[dict[str, Any]] = []
    if strict:  # a first pass, so that nothing is written when any row is bad
        for row_no, _raw, parsed in read_rows(path, region):
            if isinstance(parsed, str):
                result.rejected.append((row_no, parsed))
        if result.rejected:
            return result
    for row_no, raw, parsed in read_rows(path, region):
        fieldnames = fieldnames or list(raw.keys())
        if isinstance(parsed, str):
            result.rejected.append((row_no, parsed))
            rejected_rows.append({"row": str(row_no), "error": parsed,
                                  **{k: v for k, v in raw.items() if k is not None}})
            continue
        batch.append(parsed)
        if len(batch) >= BATCH:
            _upsert(session, batch, first_stage, now, result)
            batch = []
    if batch:
        _upsert(session, batch, first_stage, now, result)
    if rejected_rows:
        out = path.with_name(path.stem + ".rejected.csv")
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["row", "error", *[f for f in fieldnames if f]],
                                    extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rejected_rows)
        result.rejected_file = out
    return result


def _upsert(session: Session, rows: list[dict[str, Any]], first_stage: str, now: datetime,
            result: ImportResult) -> None:
    """Match a batch by external_id, else email, with two queries; insert the rest in one go."""
    ext_ids = [r["external_id"] for r in rows if r.get("external_id")]
    emails = [r["email"] for r in rows if r.get("email")]
    conds = []
    if ext_ids:
        conds.append(col(Contact.external_id).in_(ext_ids))
    if emails:
        conds.append(col(Contact.email).in_(emails))
    by_ext: dict[str, int] = {}
    by_email: dict[str, int] = {}
    attrs: dict[int, dict[str, Any]] = {}
    if conds:
        for cid, ext, email, attributes in session.execute(
                select(col(Contact.id), col(Contact.external_id), col(Contact.email),
                       col(Contact.attributes)).where(or_(*conds))):
            if ext:
                by_ext[ext] = cid
            if email:
                by_email[email] = cid
            attrs[cid] = attributes or {}
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    for row in rows:
        cid = by_ext.get(row.get("external_id") or "") or by_email.get(row.get("email") or "")
        if cid is not None:
            values = updates.setdefault(cid, {"id": cid})
            values.update(row)
            if "attributes" in row:
                values["attributes"] = attrs[cid] = {**attrs.get(cid, {}), **row["attributes"]}
            result.updated += 1
        else:
            key = row.get("external_id") or row.get("email") or row.get("phone") or ""
            if key in inserts:
                inserts[key].update(row)
            else:
                inserts[key] = {**dict.fromkeys(COLUMNS), "attributes": {}, **row, "stage": first_stage,
                                "stage_entered_at": now, "stage_entry": 1, "created_at": now}
    if updates:  # ORM bulk UPDATE by primary key: an executemany per set of columns, not a query per row
        session.execute(update(Contact), list(updates.values()))
    if inserts:
        session.execute(table_of(Contact).insert(), list(inserts.values()))
        result.created += len(inserts)
    session.flush()


def find_contact(session: Session, ref: str | int) -> Contact:
    """A contact by id, email or external id; NotFound otherwise."""
    text = str(ref).strip()
    conds = [col(Contact.email) == text.lower(), col(Contact.external_id) == text]
    if text.isdigit():
        conds.append(col(Contact.id) == int(text))
    found = session.exec(select_model(Contact).where(or_(*conds))).first()
    if found is None:
        raise NotFound(f"no contact '{text}' (give an id, email or external id)")
    return found


def contact_tz(contact: Contact, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(contact.timezone or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)
