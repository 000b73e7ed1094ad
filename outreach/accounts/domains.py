"""Which account an imported contact belongs to: the `account_id` column, else the company domain, else
the domain of the email address unless it is a free-mail one (a gmail address names no company)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from outreach.errors import InvalidInput

_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
ACCOUNT_ID_LIMIT = 255


@cache
def freemail() -> frozenset[str]:
    """The free-mail domains of freemail.txt (shipped with the package)."""
    text = (Path(__file__).with_name("freemail.txt")).read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def normalize_domain(value: str) -> str:
    """`https://www.Acme.com/about` -> `acme.com`; InvalidInput names the column when it is no domain."""
    text = value.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).split("/", 1)[0].removeprefix("www.")
    if not _DOMAIN.match(text):
        raise InvalidInput(f"company_domain '{value.strip()[:60]}' is not a domain (like acme.com)")
    return text


def account_of(*, account_id: str | None, company_domain: str | None, email: str | None
               ) -> tuple[str, str | None] | None:
    """(account id, domain) for a contact, or None when nothing names a company."""
    domain = normalize_domain(company_domain) if company_domain else None
    if account_id:
        return account_id.strip(), domain
    if domain:
        return domain, domain
    if email and "@" in email:
        mail_domain = email.rsplit("@", 1)[1].lower()
        if mail_domain not in freemail():
            return mail_domain, mail_domain
    return None
