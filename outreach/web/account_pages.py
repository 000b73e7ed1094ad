"""`/accounts` and `/accounts/{id}`: buying committees as a rep sees them. A rep sees only accounts
where they own a member; the others see every account. Same read models as `outreach accounts`."""

from __future__ import annotations

from datetime import UTC, datetime
from math import ceil
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from outreach.accounts.info import account_page, list_accounts
from outreach.db import session_scope
from outreach.web.auth import owner_scope
from outreach.web.deps import EngineDep, PageUser
from outreach.web.render import render_page

router = APIRouter(include_in_schema=False)
PER_PAGE = 25


@router.get("/accounts")
def accounts_page(request: Request, user: PageUser, engine: EngineDep,
                  q: Annotated[str, Query(max_length=200)] = "", stage: Annotated[str, Query(max_length=64)] = "",
                  page: Annotated[int, Query(ge=1, le=100000)] = 1) -> Response:
    with session_scope(engine.db) as s:
        rows, total = list_accounts(s, owner=owner_scope(user), text=q or None, stage=stage or None,
                                    limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    return render_page(request, "accounts.html", {
        "accounts": rows, "total": total, "q": q, "stage": stage, "page": page,
        "pages": max(1, ceil(total / PER_PAGE)), "stages": engine.project.rules.stage_ids})


@router.get("/accounts/{account_id}")
def account_detail_page(request: Request, account_id: str, user: PageUser, engine: EngineDep) -> Response:
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        data = account_page(s, account_id, datetime.now(UTC), owner=owner_scope(user),
                            sender=engine.settings.sender.email)
    return render_page(request, "account.html", {"d": data, "stages": rules.stage_ids,
                                                 "interactions": list(rules.interactions)})
