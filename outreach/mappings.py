"""Column mappings for contact imports: a CRM's export (its column names, date formats, opt-out flags)
read as our columns. Built in: `hubspot` and `salesforce` (their contact exports, as their UIs and
Data Loader write them); any other is a YAML file:

    columns:
      "E-mail Address": email
      "Contact Owner": owner
      "Created": {to: crm_created_at, date: ["%d.%m.%Y", "%d.%m.%Y %H:%M"]}
      "Opted Out": {to: consent_email, invert: true}
      "Fax": null            # dropped
    others: keep             # keep (default: unmapped columns become attributes) or drop

A value that does not convert (a date in no listed format) rejects its row, naming the source column."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from outreach.errors import InvalidInput

_TRUE = {"yes", "y", "true", "1", "x", "checked"}
_FALSE = {"no", "n", "false", "0", ""}


@dataclass(frozen=True)
class Target:
    """Where one source column goes: a column of ours (or an attribute name), optionally read as a date
    (written back as ISO 8601) or as a yes/no flag meaning the opposite (an opt-out -> consent)."""

    to: str
    dates: tuple[str, ...] = ()
    invert: bool = False


@dataclass(frozen=True)
class ColumnMap:
    name: str
    columns: dict[str, Target | None]  # source column, lower-cased -> target (None: dropped)
    keep_others: bool = True
    notes: list[str] = field(default_factory=list)
    # what the CRM's stage values mean as the rules' stages (value, lower-cased -> stage id): the column
    # mapped to `stage` then starts each contact at that stage, its source recorded as evidence
    stages: dict[str, str] = field(default_factory=dict)
    plans: dict[tuple[str, ...], list[tuple[str, Target]]] = field(default_factory=dict, compare=False, repr=False)

    def header(self, names: list[str]) -> list[str]:
        """The source header as our column names ("" for a dropped column)."""
        out = []
        for name in names:
            key = name.strip().lower()
            if key in self.columns:
                target = self.columns[key]
                out.append(target.to if target else "")
            else:
                out.append(key if self.keep_others else "")
        return out

    def row(self, source: list[str], values: dict[str, str]) -> dict[str, str]:
        """One row keyed by our columns; InvalidInput names the source column whose value does not convert.
        Two source columns landing on one of ours: the first non-empty value wins (Phone, then Mobile)."""
        out: dict[str, str] = {}
        for name, target in self._plan(tuple(source)):
            value = (values.get(name) or "").strip()
            if target.dates and value:
                value = _date(value, target.dates, name)
            if target.invert:
                value = _flip(value, name)
            if value or target.to not in out:
                out[target.to] = out.get(target.to) or value
        return out

    def _plan(self, source: tuple[str, ...]) -> list[tuple[str, Target]]:
        """(source column, target) for a header, worked out once per file, not once per row."""
        plan = self.plans.get(source)
        if plan is None:
            plan = []
            for name in source:
                key = name.strip().lower()
                target = self.columns.get(key) if key in self.columns else (Target(key) if self.keep_others else None)
                if target is not None:
                    plan.append((name, target))
            self.plans[source] = plan
        return plan


def _date(value: str, formats: tuple[str, ...], column: str) -> str:
    if value[4:5] == "-" and value[:4].isdigit() and any(f == "iso" or f.startswith("%Y-%m-%d") for f in formats):
        try:  # the common case, without strptime's cost (a tenth of an import's time otherwise)
            return _landed(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    for fmt in formats:
        try:
            if fmt == "iso":
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            else:
                parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return _landed(parsed)
    raise InvalidInput(f"{column} '{value[:40]}' is not a date in the mapping's formats ({', '.join(formats)})")


def _landed(parsed: datetime) -> str:
    return parsed.date().isoformat() if parsed.time() == datetime.min.time() and not parsed.tzinfo \
        else parsed.isoformat()


def _flip(value: str, column: str) -> str:
    text = value.strip().lower()
    if text in _TRUE:
        return "no"
    if text in _FALSE:
        return "yes" if text else ""
    raise InvalidInput(f"{column} '{value[:40]}' is not yes/no, true/false or 1/0")


def _t(to: str, *dates: str, invert: bool = False) -> Target:
    return Target(to, tuple(dates), invert)


# HubSpot's contact export (Contacts > Export): property labels as column headers, dates as
# "2024-03-15 10:23" (the portal's time zone), booleans as true/false.
HUBSPOT = ColumnMap("hubspot", {
    "record id": _t("external_id"), "contact id": _t("external_id"),
    "email": _t("email"), "email address": _t("email"),
    "first name": _t("first_name"), "last name": _t("last_name"),
    "phone number": _t("phone"), "mobile phone number": _t("phone"),
    "company name": _t("company"), "associated company": _t("account_name"),
    "associated company id": _t("account_id"), "job title": _t("title"),
    "contact owner": _t("owner_name"), "hubspot owner": _t("owner_name"), "owner email": _t("owner"),
    "time zone": _t("hubspot_time_zone"), "lifecycle stage": _t("lifecycle_stage"),
    "lead status": _t("lead_status"), "industry": _t("industry"),
    "create date": _t("crm_created_at", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "iso"),
    "last activity date": _t("crm_last_activity", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "iso"),
    "unsubscribed from all email": _t("consent_email", invert=True),
}, notes=["HubSpot's Contact owner is a name; map `owner email` (or add a column) to set owners"])

# Salesforce contact exports: a report export's field labels ("First Name", dates as 3/15/2024 in a US
# locale) or Data Loader's API names ("FirstName", ISO 8601 datetimes).
_SF_DATES = ("%m/%d/%Y", "%m/%d/%Y %I:%M %p", "%m/%d/%Y, %I:%M %p", "%d/%m/%Y", "%Y-%m-%dT%H:%M:%S.%f%z", "iso")
SALESFORCE = ColumnMap("salesforce", {
    "contact id": _t("external_id"), "id": _t("external_id"),
    "email": _t("email"), "first name": _t("first_name"), "firstname": _t("first_name"),
    "last name": _t("last_name"), "lastname": _t("last_name"),
    "phone": _t("phone"), "mobile": _t("phone"), "mobile phone": _t("phone"), "mobilephone": _t("phone"),
    "title": _t("title"), "account name": _t("account_name"), "account.name": _t("account_name"),
    "account id": _t("account_id"), "accountid": _t("account_id"),
    "contact owner": _t("owner_name"), "owner email": _t("owner"), "owner.email": _t("owner"),
    "department": _t("department"), "lead source": _t("lead_source"), "leadsource": _t("lead_source"),
    "created date": _t("crm_created_at", *_SF_DATES), "createddate": _t("crm_created_at", *_SF_DATES),
    "email opt out": _t("consent_email", invert=True), "hasoptedoutofemail": _t("consent_email", invert=True),
    "mailing country": _t("country"), "mailingcountry": _t("country"),
}, notes=["Salesforce dates read as US month/day first, then day/month: check --dry-run on your export"])

BUILT_IN = {"hubspot": HUBSPOT, "salesforce": SALESFORCE}


def load_mapping(spec: str) -> ColumnMap:
    """`hubspot`, `salesforce`, or the path of a mapping YAML file; InvalidInput says what is wrong."""
    if spec.strip().lower() in BUILT_IN:
        return BUILT_IN[spec.strip().lower()]
    path = Path(spec)
    if not path.is_file():
        raise InvalidInput(f"--map {spec}: neither a built-in mapping ({', '.join(BUILT_IN)}) nor a file")
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: not YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise InvalidInput(f"{path}: a mapping has `columns:` (source column: our column)")
    others = data.get("others", "keep")
    if others not in ("keep", "drop"):
        raise InvalidInput(f"{path}: others is keep or drop, not '{others}'")
    unknown = set(data) - {"columns", "others", "stages"}
    if unknown:
        raise InvalidInput(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (columns, others, stages)")
    stages = data.get("stages") or {}
    if not isinstance(stages, dict) or not all(isinstance(v, str) and v.strip() for v in stages.values()):
        raise InvalidInput(f"{path}: stages maps a CRM's stage to one of the rules' stages "
                           "(\"Sales Qualified Lead\": interested)")
    columns: dict[str, Target | None] = {}
    for source, spec_ in data["columns"].items():
        columns[str(source).strip().lower()] = _target(path, str(source), spec_)
    return ColumnMap(path.stem, columns, keep_others=others == "keep",
                     stages={str(k).strip().lower(): v.strip() for k, v in stages.items()})


def _target(path: Path, source: str, spec: Any) -> Target | None:
    if spec is None:
        return None
    if isinstance(spec, str) and spec.strip():
        return Target(spec.strip().lower())
    if isinstance(spec, dict) and isinstance(spec.get("to"), str) and set(spec) <= {"to", "date", "invert"}:
        dates = spec.get("date") or []
        dates = [dates] if isinstance(dates, str) else dates
        if not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
            raise InvalidInput(f"{path}: {source}: date is a format or a list of them (\"%d.%m.%Y\", iso)")
        return Target(spec["to"].strip().lower(), tuple(dates), bool(spec.get("invert", False)))
    raise InvalidInput(f"{path}: {source}: give our column's name, or {{to: COLUMN, date: FORMAT, invert: true}}")
