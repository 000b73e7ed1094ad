"""Who a touch goes out from: the owning rep, when the contact's owner is an enabled user, or the project
sender. A rep sends from their own address when it is on the sending domain the provider is set up for
(`sender.domain`, or a subdomain of it); otherwise from the project address under the rep's name. Either
way the buyer's reply reaches both the engine and the rep (Reply-To lists both)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from outreach.config import Settings
from outreach.models import User


@dataclass(frozen=True)
class Sender:
    email: str
    name: str
    rep: str | None = None  # the owning user's address when the touch goes out as them
    rep_name: str | None = None

    @property
    def signature_names(self) -> list[str]:
        """The signature partials to try, the rep's own first: signatures/_jane-example-com.j2."""
        if self.rep is None:
            return []
        return [f"signatures/_{re.sub(r'[^a-z0-9]+', '-', self.rep.lower()).strip('-')}.j2", "signatures/_default.j2"]


def on_domain(address: str, domain: str) -> bool:
    host = address.rsplit("@", 1)[-1].lower()
    domain = domain.lower().strip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def sender_for(settings: Settings, owner: str | None, reps: Mapping[str, str | None]) -> Sender:
    """Pure: the Sender of a touch to a contact owned by `owner`; `reps` maps enabled users' addresses to
    their names."""
    s = settings.sender
    if not owner or owner.lower() not in reps:
        return Sender(s.email, s.name)
    rep = owner.lower()
    name = reps[rep] or rep.split("@")[0].replace(".", " ").title()
    if on_domain(rep, s.domain):
        return Sender(rep, name, rep, name)
    return Sender(s.email, f"{name} ({s.name})", rep, name)  # the provider may not send for their domain


def load_reps(session: Session, emails: Iterable[str] | None = None) -> dict[str, str | None]:
    """Enabled users (all, or those of `emails`) -> their names."""
    q = select(col(User.email), col(User.name)).where(col(User.disabled_at).is_(None))
    if emails is not None:
        q = q.where(col(User.email).in_(sorted({e.lower() for e in emails if e})))
    return {email: name for email, name in session.execute(q)}


def from_emails(session: Session, settings: Settings, owners: Iterable[str | None]) -> dict[str | None, str]:
    """owner -> the address their contacts' touches go out from (the touch JSON's `from_email`)."""
    wanted = {o.lower() for o in owners if o}
    reps = load_reps(session, wanted) if wanted else {}
    return {None: settings.sender.email, **{o: sender_for(settings, o, reps).email for o in wanted}}


class RepCache:
    """The enabled users, reloaded at most every `ttl` seconds: the dispatcher builds messages one by one,
    and a query per message would cost more than the send."""

    def __init__(self, engine: Engine, ttl: float = 30.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._at = -ttl
        self._reps: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, str | None]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl:
                with Session(self.engine) as s:
                    self._reps = load_reps(s)
                self._at = time.monotonic()
            return self._reps
