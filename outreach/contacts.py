"""Contacts: CSV import (streamed, validated per row, upserted in batches) and lookups.

Bad input never loses good data: every fault of a row (a value that does not parse, a NUL byte, a
byte the file's encoding cannot read, a value over its length limit, a contact given twice in the
file, an external id and an email that name two different contacts) rejects that row, with its
number and the reason, and the good rows import."""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from sqlalchemy import or_, select, update
from sqlmodel import Session, col
from sqlmodel import select as select_model

from outreach import batch_loads, tokens
from outreach.accounts.domains import account_of
from outreach.accounts.rules import DEFAULT_ROLES
from outreach.errors import InvalidInput, NotFound
from outreach.mappings import ColumnMap
from outreach.models import Account, Contact, DoNotContact, Evidence, StageChange, table_of

COLUMNS = ("email", "phone", "first_name", "last_name", "company", "title", "timezone", "owner",
           "external_id", "consent_email", "consent_sms", "account_id", "role")
# columns that describe the contact's account (SPEC section 11), not stored on the contact
ACCOUNT_COLUMNS = ("account_name", "company_domain")
# The longest value each column takes, in characters; a longer one rejects its row. Any other
# column (an attribute) takes ATTRIBUTE_LIMIT, and a column's name COLUMN_NAME_LIMIT.
LIMITS = {"email": 320, "owner": 320, "phone": 64, "first_name": 1000, "last_name": 1000, "company": 1000,
          "title": 1000, "timezone": 64, "external_id": 255, "consent_email": 16, "consent_sms": 16,
          "account_id": 255, "account_name": 1000, "company_domain": 253, "role": 64}
ATTRIBUTE_LIMIT = 10_000
COLUMN_NAME_LIMIT = 200
MAX_ID = 2**31 - 1  # contact ids are 32-bit integers in the database
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}
_FAULTY = re.compile("[\x00\udc80-\udcff]")  # a NUL, or a byte the encoding could not read (surrogateescape)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: a spreadsheet reads these as a formula
BATCH = 1000


def escape_formula(value: str) -> str:
    """A cell for a CSV a spreadsheet may open: one that starts like a formula gets a leading
    apostrophe (OWASP's rule against CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def unescape_formula(value: str) -> str:
    """What escape_formula wrote, read back: FILE.rejected.csv, fixed, imports as it was meant."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def show(value: str, width: int = 60) -> str:
    """A value quoted in a message: control characters escaped, and cut short."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()) & 0xff:02x}", value)
    return text if len(text) <= width else text[:width] + "..."


def normalize_email(value: str) -> str:
    email = value.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"email '{show(value.strip())}' is not an email address")
    return email


def normalize_phone(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"phone '{show(value.strip())}' is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"phone '{show(value.strip())}' is not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_consent(value: str, column: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise InvalidInput(f"{column} '{show(value.strip())}' must be yes/no, true/false, 1/0 or blank")


@dataclass(frozen=True)
class StageMeaning:
    """What an imported `stage` column means: the rules' stage ids (in funnel order), read as they are
    or through a CRM mapping's `stages:` table (its value, lower-cased -> our stage id)."""

    ids: tuple[str, ...]
    table: dict[str, str] = field(default_factory=dict)
    source: str = "--stage-column"  # how the meaning was given, kept on the evidence

    def stage_of(self, value: str) -> str:
        text = value.strip()
        if self.table:
            found = self.table.get(text.lower())
            if found is None:
                raise InvalidInput(f"stage '{show(text)}' is not in the mapping's stages "
                                   f"({', '.join(sorted(self.table)[:8])})")
            return found
        found = next((s for s in self.ids if s.lower() == text.lower()), None)
        if found is None:
            raise InvalidInput(f"stage '{show(text)}' is not a stage of the rules ({', '.join(self.ids)})")
        return found


NO_STAGE_MEANING = ("stage '{value}': an imported stage needs its meaning: pass --stage-column COLUMN when the "
                    "column holds the rules' stage ids, or give the mapping a `stages:` table")


def parse_row(row: dict[str, str], region: str, roles: Sequence[str] = DEFAULT_ROLES,
              stages: StageMeaning | None = None) -> dict[str, Any]:
    """One CSV row -> contact fields (and "_account": its account's id, name and domain, when the row
    names or implies one; "_stage": the starting stage and the value it came from, when `stages` says
    what a `stage` column means); InvalidInput names the field that is wrong."""
    get = {k.strip().lower(): unescape_formula((v or "").strip()) for k, v in row.items() if k is not None}
    for name, text in get.items():
        limit = LIMITS.get(name, ATTRIBUTE_LIMIT)
        if len(text) > limit:
            raise InvalidInput(f"{name} is {len(text):,} characters long (at most {limit:,})")
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
            raise InvalidInput(f"timezone '{show(get['timezone'])}' is not a known time zone") from None
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
    if get.get("role"):
        role = get["role"].lower().replace(" ", "_")
        if role not in roles:
            raise InvalidInput(f"role '{show(get['role'])}' is not a committee role (one of: {', '.join(roles)})")
        out["role"] = role
    account = account_of(account_id=get.get("account_id"), company_domain=get.get("company_domain"),
                         email=out.get("email"))
    if account is not None:
        out["account_id"] = account[0]
        out["_account"] = {"id": account[0], "domain": account[1],
                           "name": get.get("account_name") or get.get("company") or None}
    if get.get("stage"):  # never a silent attribute: a stage is a claim about the buyer, with its source
        if stages is None:
            raise InvalidInput(NO_STAGE_MEANING.format(value=show(get["stage"])))
        out["_stage"] = (stages.stage_of(get["stage"]), get["stage"])
    attributes = {k: v for k, v in get.items() if k not in COLUMNS and k not in ACCOUNT_COLUMNS and k != "stage"
                  and v}
    if attributes:
        out["attributes"] = attributes
    return out


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)
    rejected_file: Path | None = None
    account_ids: set[str] = field(default_factory=set)  # the accounts the good rows name
    owners: Counter[str | None] = field(default_factory=Counter)  # owner -> contacts written (None: no owner)


def file_encoding(encoding: str | None) -> str:
    """The codec to read a CSV with: UTF-8 (with or without a byte order mark) unless named."""
    try:
        name = codecs.lookup(encoding or "utf-8").name
    except LookupError:
        raise InvalidInput(f"--encoding '{show(encoding or '')}' is not an encoding Python knows "
                           f"(utf-8, cp1252, latin-1, utf-16, ...)") from None
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name


def _fault(name: str, value: str, encoding: str) -> str | None:
    """Why a cell cannot be stored as it is (a NUL, an unreadable byte), or None."""
    found = _FAULTY.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"{name} contains a NUL byte"
    byte = ord(found.group()) - 0xDC00
    return (f"{name} has the byte 0x{byte:02X}, which is not {encoding.removesuffix('-sig')} text "
            f"(name the file's encoding with --encoding)")


Row = tuple[int, dict[str, str], dict[str, Any] | str]


def read_rows(path: Path, region: str, encoding: str = "utf-8-sig", roles: Sequence[str] = DEFAULT_ROLES,
              mapping: ColumnMap | None = None, stages: StageMeaning | None = None,
              stage_column: str | None = None) -> Iterator[Row]:
    """Yield (row number as a spreadsheet shows it, raw row, fields or the reason it is bad). With a
    `mapping` the file's columns are read as ours (a CRM export) before the row is checked."""
    with path.open(newline="", encoding=encoding, errors="surrogateescape") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InvalidInput(f"{path.name}:1: the header is not CSV ({exc})") from None
        names = [h.strip().lower() for h in header or []]
        if mapping is not None and header:
            names = mapping.header(header)
        if not header or not {"email", "phone"} & set(names):
            hint = (f"; the {mapping.name} mapping found neither in {', '.join(header[:8])}" if mapping and header
                    else f" (columns: {', '.join(COLUMNS)}; a CRM export takes --map hubspot|salesforce|FILE)")
            raise InvalidInput(f"{path.name}:1: the header needs an email or phone column{hint}")
        wanted = (stage_column or "").strip().lower()
        if wanted and wanted not in names and wanted not in {h.strip().lower() for h in header}:
            raise InvalidInput(f"{path.name}:1: --stage-column {show(stage_column or '')}: the header has no such "
                               f"column (columns: {', '.join(header[:8])})")
        for name in header:
            why = _fault("a column name", name, encoding) or (
                f"a column name is over {COLUMN_NAME_LIMIT} characters" if len(name) > COLUMN_NAME_LIMIT else None)
            if why:
                raise InvalidInput(f"{path.name}:1: {why}")
        row_no = 1
        while True:
            row_no += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a cell over the csv module's limit, say: that row only
                yield row_no, {}, f"not a CSV row: {exc}"
                continue
            if not values:
                row_no -= 1  # a blank line is no row
                continue
            raw = dict(zip(header, values, strict=False))
            if len(values) > len(header):
                yield row_no, raw, "more values than columns in the header"
                continue
            for name in header[len(values):]:
                raw[name] = ""
            if _FAULTY.search("".join(values)):
                yield row_no, raw, next(w for w in (_fault(n, v, encoding) for n, v in raw.items()) if w)
                continue
            try:
                yield row_no, raw, parse_row(_stage_named(mapping.row(header, raw) if mapping else raw, raw, wanted),
                                             region, roles, stages)
            except InvalidInput as exc:
                yield row_no, raw, str(exc)


def _stage_named(fields: dict[str, str], raw: dict[str, str], wanted: str) -> dict[str, str]:
    """The row with the column --stage-column names (in the file, or after the mapping) as `stage`."""
    if not wanted:
        return fields
    source = next((k for k in raw if k.strip().lower() == wanted), None)
    value = raw.get(source, "") if source is not None else fields.get(wanted, "")
    return {**{k: v for k, v in fields.items() if k.strip().lower() not in (wanted, "stage")}, "stage": value}


def _once_per_file(rows: Iterable[Row]) -> Iterator[Row]:
    """Reject a row that gives an email or external id an earlier row of the file gave: which of the
    two is meant is for a person to say."""
    emails: dict[str, int] = {}
    ext_ids: dict[str, int] = {}
    for row_no, raw, parsed in rows:
        if isinstance(parsed, dict):
            for key, seen in (("email", emails), ("external_id", ext_ids)):
                value = parsed.get(key)
                if value and value in seen:
                    parsed = f"{key} '{show(value)}' is on row {seen[value]} too: one row per contact"
                    break
            if isinstance(parsed, dict):
                for key, seen in (("email", emails), ("external_id", ext_ids)):
                    if parsed.get(key):
                        seen[parsed[key]] = row_no
        yield row_no, raw, parsed


def import_csv(session: Session, path: Path, *, region: str, first_stage: str, now: datetime,
               strict: bool = False, encoding: str | None = None, roles: Sequence[str] = DEFAULT_ROLES,
               secret: str | None = None, mapping: ColumnMap | None = None,
               progress: Callable[[int], None] | None = None, stages: StageMeaning | None = None,
               stage_column: str | None = None) -> ImportResult:
    """Stream the file, upsert good rows in batches, report bad ones (and write FILE.rejected.csv,
    its cells escaped against formula injection). With `secret` (the project's key) a row whose email or
    phone is on the do-not-contact list is rejected. With strict=True one bad row imports nothing (the
    caller rolls back when `rejected` is not empty: some faults show only against the database)."""
    codec = file_encoding(encoding)
    result = ImportResult()
    rejected_rows: list[tuple[int, dict[str, str], str]] = []
    if strict:  # a first pass, so that nothing is written when any row is bad
        for row_no, _raw, parsed in _once_per_file(read_rows(path, region, codec, roles, mapping, stages,
                                                             stage_column)):
            if isinstance(parsed, str):
                result.rejected.append((row_no, parsed))
        if result.rejected:
            return result
    fieldnames: list[str] = []
    batch: list[tuple[int, dict[str, str], dict[str, Any]]] = []
    matched: dict[int, int] = {}  # contact id -> the row that updated it
    for row_no, raw, parsed in _once_per_file(read_rows(path, region, codec, roles, mapping, stages, stage_column)):
        fieldnames = fieldnames or list(raw.keys())
        if isinstance(parsed, str):
            rejected_rows.append((row_no, raw, parsed))
            continue
        batch.append((row_no, raw, parsed))
        if len(batch) >= BATCH:
            batch, refused = refuse_forgotten(session, batch, secret)
            rejected_rows += refused + _upsert(session, batch, first_stage, now, result, matched, stages, path.name)
            batch = []
            if progress:
                progress(row_no)
    if batch:
        batch, refused = refuse_forgotten(session, batch, secret)
        rejected_rows += refused + _upsert(session, batch, first_stage, now, result, matched, stages, path.name)
    if progress:
        progress(-1)  # done
    rejected_rows.sort(key=lambda r: r[0])
    result.rejected = [(row_no, why) for row_no, _raw, why in rejected_rows]
    if rejected_rows:
        out = path.with_name(path.stem + ".rejected.csv")
        out_codec = "utf-8" if codec == "utf-8-sig" else codec
        with out.open("w", newline="", encoding=out_codec, errors="surrogateescape") as fh:
            writer = csv.writer(fh)
            columns = [f for f in fieldnames if f]
            writer.writerow(["row", "error", *map(escape_formula, columns)])
            for row_no, raw, why in rejected_rows:
                writer.writerow([str(row_no), escape_formula(_encodable(why, out_codec)),
                                 *(escape_formula(raw.get(c) or "") for c in columns)])
        result.rejected_file = out
    return result


GoodRow = tuple[int, dict[str, str], dict[str, Any]]
BadRow = tuple[int, dict[str, str], str]


def refuse_forgotten(session: Session, rows: list[GoodRow], secret: str | None) -> tuple[list[GoodRow], list[BadRow]]:
    """Split a batch into the rows to write and those naming a forgotten address (with the reason)."""
    if not secret:
        return rows, []
    hits = forgotten(session, secret, [r["email"] for _n, _raw, r in rows if r.get("email")],
                     [r["phone"] for _n, _raw, r in rows if r.get("phone")])
    if not hits:
        return rows, []
    kept: list[GoodRow] = []
    refused: list[BadRow] = []
    for row_no, raw, row in rows:
        hit = next((h for h in (f"email:{row.get('email')}", f"phone:{row.get('phone')}") if h in hits), None)
        if hit is None:
            kept.append((row_no, raw, row))
        else:
            kind, value = hit.split(":", 1)
            refused.append((row_no, raw, FORGOTTEN.format(kind=kind, value=show(value))))
    return kept, refused


def _encodable(text: str, codec: str) -> str:
    return text.encode(codec, errors="replace").decode(codec)


def _upsert(session: Session, rows: list[tuple[int, dict[str, str], dict[str, Any]]], first_stage: str,
            now: datetime, result: ImportResult, matched: dict[int, int], stages: StageMeaning | None = None,
            file: str = "") -> list[tuple[int, dict[str, str], str]]:
    """Match a batch by external_id, else email, with two queries; insert the rest in one go. A row whose
    external id and email belong to two different contacts, or that names a contact an earlier row of
    the file updated, is rejected (returned with its reason)."""
    ext_ids = [r["external_id"] for _n, _raw, r in rows if r.get("external_id")]
    emails = [r["email"] for _n, _raw, r in rows if r.get("email")]
    conds = []
    if ext_ids:
        conds.append(col(Contact.external_id).in_(ext_ids))
    if emails:
        conds.append(col(Contact.email).in_(emails))
    by_ext: dict[str, int] = {}
    by_email: dict[str, int] = {}
    attrs: dict[int, dict[str, Any]] = {}
    owner_of: dict[int, str | None] = {}
    if conds:
        for cid, ext, email, attributes, owner in session.execute(
                select(col(Contact.id), col(Contact.external_id), col(Contact.email),
                       col(Contact.attributes), col(Contact.owner)).where(or_(*conds))):
            if ext:
                by_ext[ext] = cid
            if email:
                by_email[email] = cid
            attrs[cid] = attributes or {}
            owner_of[cid] = owner
    _upsert_accounts(session, [r.pop("_account") for _n, _raw, r in rows if "_account" in r], now, result)
    # (contact id, or the new contact's key) -> (row, stage, the value it came from)
    staged: dict[int | tuple[str, str], tuple[int, str, str]] = {}
    rejected: list[tuple[int, dict[str, str], str]] = []
    inserts: dict[tuple[str, str], dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    for row_no, raw, row in rows:
        ext_cid = by_ext.get(row.get("external_id") or "")
        email_cid = by_email.get(row.get("email") or "")
        if ext_cid is not None and email_cid is not None and ext_cid != email_cid:
            rejected.append((row_no, raw, f"external_id '{show(row['external_id'])}' is contact {ext_cid} but "
                                          f"email '{show(row['email'])}' is contact {email_cid}: fix one of them"))
            continue
        cid = ext_cid if ext_cid is not None else email_cid
        if cid is not None:
            if cid in matched:
                rejected.append((row_no, raw, f"the same contact ({cid}) as row {matched[cid]}: one row per contact"))
                continue
            matched[cid] = row_no
            if "_stage" in row:
                staged[cid] = (row_no, *row.pop("_stage"))
            values = updates.setdefault(cid, {"id": cid})
            values.update(row)
            if "attributes" in row:
                values["attributes"] = attrs[cid] = {**attrs.get(cid, {}), **row["attributes"]}
            result.updated += 1
            result.owners[row.get("owner") or owner_of.get(cid)] += 1
        else:
            key = (("external_id", row["external_id"]) if row.get("external_id") else
                   ("email", row["email"]) if row.get("email") else ("phone", row.get("phone") or ""))
            if "_stage" in row:
                staged[key] = (row_no, *row.pop("_stage"))
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
        result.owners.update(r["owner"] for r in inserts.values())
    session.flush()
    if staged and stages is not None:
        _start_stages(session, staged, stages, first_stage, now, file)
    return rejected


def _start_stages(session: Session, staged: dict[int | tuple[str, str], tuple[int, str, str]],
                  stages: StageMeaning, first_stage: str, now: datetime, file: str) -> None:
    """Put imported contacts at the stage their row states, its source recorded as `stage.imported`
    evidence that proves the change. Forward only: a stage the buyer proved already is never undone."""
    by_key: dict[tuple[str, str], int] = {}
    for column in ("external_id", "email", "phone"):
        values = [k[1] for k in staged if isinstance(k, tuple) and k[0] == column]
        for part in range(0, len(values), 900):
            for cid, value in session.execute(select(col(Contact.id), getattr(Contact, column)).where(
                    getattr(Contact, column).in_(values[part:part + 900]))):
                by_key[(column, value)] = cid
    wanted = {(k if isinstance(k, int) else by_key[k]): v for k, v in staged.items()
              if isinstance(k, int) or k in by_key}
    order = {s: i for i, s in enumerate(stages.ids)}
    current = {cid: (stage, entry) for cid, stage, entry in session.execute(
        select(col(Contact.id), col(Contact.stage), col(Contact.stage_entry)).where(col(Contact.id).in_(list(wanted))))}
    moves = [(cid, row, stage, value) for cid, (row, stage, value) in wanted.items()
             if order.get(stage, -1) > order.get(current[cid][0] or first_stage, -1)]
    evidence = [Evidence(contact_id=cid, type=STAGE_IMPORTED, occurred_at=now, recorded_at=now, source="import",
                         data={"file": file, "row": row, "value": value, "stage": stage, "meaning": stages.source})
                for cid, row, stage, value in moves]
    session.add_all(evidence)
    session.flush()
    session.add_all([StageChange(contact_id=cid, from_stage=current[cid][0], to_stage=stage, at=now, evidence_id=ev.id)
                     for (cid, _row, stage, _v), ev in zip(moves, evidence, strict=True)])
    if moves:
        session.execute(update(Contact), [{"id": cid, "stage": stage, "stage_entered_at": now,
                                           "stage_entry": current[cid][1] + 1}
                                          for cid, _row, stage, _v in moves])
    session.flush()


def _upsert_accounts(session: Session, accounts: list[dict[str, Any]], now: datetime, result: ImportResult) -> None:
    """Create the accounts a batch names that do not exist yet (one insert, conflicts ignored) and give
    existing ones the name and domain the file states (one executemany): never a query per row."""
    merged: dict[str, dict[str, Any]] = {}
    for acc in accounts:
        seen = merged.setdefault(acc["id"], {"id": acc["id"], "name": None, "domain": None})
        seen["name"] = acc["name"] or seen["name"]
        seen["domain"] = acc["domain"] or seen["domain"]
    if not merged:
        return
    known = list(merged)
    existing: set[str] = set()
    for i in range(0, len(known), 900):
        existing.update(session.execute(select(col(Account.id)).where(col(Account.id).in_(known[i:i + 900]))).scalars())
    fresh = [{**a, "stage": "", "stage_proof": {}, "created_at": now, "updated_at": now}
             for a in merged.values() if a["id"] not in existing]
    if fresh:
        batch_loads.insert_ignore(session, table_of(Account), fresh, ["id"])
    named = [{k: v for k, v in a.items() if v is not None} | {"updated_at": now}
             for a in merged.values() if a["id"] in existing and (a["name"] or a["domain"])]
    for keys in {tuple(sorted(a)) for a in named}:  # executemany wants one set of columns per statement
        session.execute(update(Account), [a for a in named if tuple(sorted(a)) == keys])
    result.account_ids.update(known)


def forgotten(session: Session, secret: str, emails: Iterable[str], phones: Iterable[str]) -> set[str]:
    """Which of these (normalized) addresses belong to a forgotten person, as "email:ADDR" / "phone:NUMBER":
    the do-not-contact list holds only keyed hashes, so each address is hashed and looked up."""
    wanted = {tokens.address_digest(secret, "email", e): f"email:{e}" for e in emails}
    wanted.update({tokens.address_digest(secret, "phone", p): f"phone:{p}" for p in phones})
    keys = sorted(wanted)
    found: set[str] = set()
    for part in range(0, len(keys), 500):
        found.update(wanted[d] for (d,) in session.execute(
            select(col(DoNotContact.digest)).where(col(DoNotContact.digest).in_(keys[part:part + 500]))))
    return found


STAGE_IMPORTED = "stage.imported"  # a starting stage a file stated (its row and column in the data)
FORGOTTEN = "{kind} '{value}' belongs to a person who asked to be forgotten: not imported"


def find_contact(session: Session, ref: str | int) -> Contact:
    """A contact by id, email or external id; NotFound otherwise."""
    text = str(ref).strip()
    conds = [col(Contact.email) == text.lower(), col(Contact.external_id) == text]
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:  # a longer number is no id (nor fits the column)
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


@dataclass
class Upserted:
    """What became of one item of an API batch: recorded (created or updated), or rejected and why."""

    index: int
    status: str  # recorded | rejected
    error: str | None = None


@dataclass
class Upserts:
    """One outcome per item, in order, and the accounts the recorded items name (their stages and owners
    follow their members)."""

    outcomes: list[Upserted]
    account_ids: set[str]


def upsert_contacts(session: Session, items: list[dict[str, str]], *, region: str, first_stage: str,
                    now: datetime, secret: str | None, roles: Sequence[str] = DEFAULT_ROLES) -> Upserts:
    """Upsert contacts given as column -> text (the CSV's columns; any other key is an attribute) by
    external id, then email, with the same checks as a CSV row."""
    rows: list[Row] = []
    for index, raw in enumerate(items):
        try:
            rows.append((index, raw, parse_row(raw, region, roles)))
        except InvalidInput as exc:
            rows.append((index, raw, str(exc)))
    outcome = {i: Upserted(i, "recorded") for i in range(len(items))}
    good: list[GoodRow] = []
    for index, raw, parsed in _once_per_file(rows):
        if isinstance(parsed, str):
            outcome[index] = Upserted(index, "rejected", parsed.replace(" on row ", " at index "))
        else:
            good.append((index, raw, parsed))
    good, refused = refuse_forgotten(session, good, secret)
    result = ImportResult()
    matched: dict[int, int] = {}
    for part in range(0, len(good), BATCH):
        refused += _upsert(session, good[part:part + BATCH], first_stage, now, result, matched)
    for index, _raw, why in refused:
        outcome[index] = Upserted(index, "rejected", why.replace(" as row ", " as index "))
    return Upserts([outcome[i] for i in range(len(items))], result.account_ids)


@dataclass
class Preview:
    """How one row of a file would land, without writing: its fields, and the contact it would update."""

    row: int
    fields: dict[str, Any] | None
    error: str | None = None
    updates: int | None = None  # the contact id it matches, None: a new contact


def preview(session: Session, path: Path, *, region: str, rows: int = 5, encoding: str | None = None,
            mapping: ColumnMap | None = None, secret: str | None = None, stages: StageMeaning | None = None,
            stage_column: str | None = None) -> list[Preview]:
    """The first `rows` rows of the file as they would be imported (read-only)."""
    out: list[Preview] = []
    for row_no, _raw, parsed in _once_per_file(read_rows(path, region, file_encoding(encoding), mapping=mapping,
                                                         stages=stages, stage_column=stage_column)):
        if len(out) >= rows:
            break
        if isinstance(parsed, str):
            out.append(Preview(row_no, None, parsed))
            continue
        hits = forgotten(session, secret, [parsed["email"]] if parsed.get("email") else [],
                         [parsed["phone"]] if parsed.get("phone") else []) if secret else set()
        if hits:
            kind, value = sorted(hits)[0].split(":", 1)
            out.append(Preview(row_no, parsed, FORGOTTEN.format(kind=kind, value=show(value))))
            continue
        conds = [col(Contact.external_id) == parsed["external_id"]] if parsed.get("external_id") else []
        conds += [col(Contact.email) == parsed["email"]] if parsed.get("email") else []
        found = session.execute(select(col(Contact.id)).where(or_(*conds)).order_by(
            col(Contact.external_id).is_(None)).limit(1)).scalar_one_or_none() if conds else None
        if "_stage" in parsed:
            parsed = {**{k: v for k, v in parsed.items() if k != "_stage"}, "stage": parsed["_stage"][0]}
        out.append(Preview(row_no, parsed, None, found))
    return out


def count_rows(path: Path) -> int:
    """About how many rows a file holds (its lines less the header), for a progress bar: one fast pass."""
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(0, lines - 1)
