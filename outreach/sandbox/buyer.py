"""A scripted buyer for the sandbox: rules that answer the messages the sandbox receives, some
seconds after each arrives, through the same emissions as `/sandbox/emit/*` (`outreach.sandbox.emit`).

A script is YAML (or JSON): a list of rules, or `{rules: [...]}`.

    - match: {to: ada@analytical.example}     # who the message went to (a glob: "*@bletchley.example")
      on: email                               # email | invite | sms (default: from `do`)
      after: 2s                               # 500ms, 2s, 1.5s, 1m or a number of seconds (default 1s)
      do: click                               # what the buyer does
      url: https://example.com/pricing        # click: the link (default https://example.com/)
    - match: {to: "+44*", text: webinar}      # match also takes `subject` and `text` (substrings, any case)
      on: sms
      do: stop
    - match: {to: grace@cobol.example}
      do: accept                              # the invite's RSVP: accept | decline | tentative
      comment: See you then
      once: true                              # only the first matching message (default: every one)

Actions: on email (and invites) delivered, open, click, bounce, spamreport, unsubscribe, dropped,
deferred, processed (SendGrid events), reply and auto_reply (Inbound Parse, `text:` the words);
on invites also accept, decline, tentative; on sms reply (`text:`), stop, start, help (the keyword
texted back) and delivered, failed, undelivered (status callbacks). Every rule that matches a
message fires, each once for it. Load a script with `outreach sandbox --script FILE` or
`POST /sandbox/script` (the YAML as the body); `GET /sandbox/script` shows it, `DELETE` drops it."""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

import yaml
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from outreach.sandbox.emit import EmitError, Emitter

log = logging.getLogger(__name__)

EMAIL_EVENTS = ("delivered", "open", "click", "bounce", "spamreport", "unsubscribe", "dropped", "deferred",
                "processed")
RSVP = {"accept": "ACCEPTED", "decline": "DECLINED", "tentative": "TENTATIVE"}
SMS_KEYWORDS = {"stop": "STOP", "start": "START", "help": "HELP"}
SMS_STATUSES = ("delivered", "failed", "undelivered")
ACTIONS: dict[str, tuple[str, ...]] = {
    "email": (*EMAIL_EVENTS, "reply", "auto_reply"),
    "invite": (*EMAIL_EVENTS, "reply", "auto_reply", *RSVP),
    "sms": ("reply", *SMS_KEYWORDS, *SMS_STATUSES),
}
DEFAULT_TEXT = {"reply": "Thanks, this looks relevant. Could you tell me more?",
                "auto_reply": "I am out of the office this week with limited access to email.",
                "sms": "Sounds good, thanks."}
_KEYS = {"match", "on", "after", "do", "text", "url", "comment", "once"}
_AFTER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


@dataclass(frozen=True)
class Rule:
    on: str  # email | invite | sms
    do: str
    after: float = 1.0  # seconds
    to: str | None = None
    subject: str | None = None
    text_contains: str | None = None
    text: str | None = None
    url: str | None = None
    comment: str | None = None
    once: bool = False

    def matches(self, message: dict[str, Any]) -> bool:
        kind = message.get("kind")
        if (self.on == "sms") != (kind == "sms") or (self.on == "invite" and not message.get("calendar")):
            return False
        if self.do in RSVP and not message.get("calendar"):
            return False  # an RSVP answers an invite only
        if self.to and not fnmatch.fnmatchcase(str(message.get("to", "")).lower(), self.to.lower()):
            return False
        if self.subject and self.subject.lower() not in str(message.get("subject") or "").lower():
            return False
        body = message.get("body") if kind == "sms" else message.get("text")
        return not self.text_contains or self.text_contains.lower() in str(body or "").lower()


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _AFTER.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{where}: after '{value}' is not a delay (write 500ms, 2s, 1.5s, 1m or seconds)")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number


def parse_script(data: Any) -> list[Rule]:
    """Rules from a decoded script; raises ValueError naming the rule and what is wrong with it."""
    if isinstance(data, dict) and set(data) == {"rules"}:
        data = data["rules"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError("a buyer script is a list of rules (or {rules: [...]})")
    rules = []
    for n, raw in enumerate(data, 1):
        where = f"rule {n}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: a rule is a mapping with match, on, after, do")
        if unknown := set(raw) - _KEYS:
            raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        do = str(raw.get("do", "")).strip().lower()
        if not do:
            raise ValueError(f"{where}: say what the buyer does (do: click, reply, stop, accept, ...)")
        on = str(raw.get("on") or ("invite" if do in RSVP else "sms" if do in SMS_KEYWORDS else "email")).lower()
        if on not in ACTIONS:
            raise ValueError(f"{where}: on '{on}' is not one of email, invite, sms")
        if do not in ACTIONS[on]:
            raise ValueError(f"{where}: '{do}' is not something a buyer does on {on}: one of {', '.join(ACTIONS[on])}")
        match = raw.get("match") or {}
        if not isinstance(match, dict) or set(match) - {"to", "subject", "text"}:
            raise ValueError(f"{where}: match takes to, subject and text")
        rules.append(Rule(on=on, do=do, after=_seconds(raw.get("after", 1.0), where),
                          to=_opt(match.get("to")), subject=_opt(match.get("subject")),
                          text_contains=_opt(match.get("text")), text=_opt(raw.get("text")), url=_opt(raw.get("url")),
                          comment=_opt(raw.get("comment")), once=bool(raw.get("once", False))))
    return rules


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: `on: sms` is a key named on and `text: yes` the word yes, where YAML 1.1
    (PyYAML's default) would read both as true."""


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
                                   for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_script(text: str) -> list[Rule]:
    """Rules from a script's YAML (or JSON) text."""
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ValueError(f"the buyer script is not YAML: {exc}") from None
    return parse_script(data)


class Buyer:
    """Runs a script: each message the sandbox records is checked against the rules, and every match
    is acted on `after` seconds later by one worker thread, in time order."""

    # SendGrid posts an Event Webhook batch again while it gets no 2xx, for up to a day; so does the
    # buyer's Event Webhook, sooner (from 1 s, doubling, at most 5 minutes apart) so rehearsals finish.
    # Inbound Parse posts and Twilio's webhooks are not retried, as the providers do not retry them.
    retry_for = 24 * 3600.0
    retry_base = 1.0

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self._rules: list[Rule] = []
        self._spent: set[int] = set()  # indexes of `once` rules that fired
        # (due, order, script generation, rule, message, attempts so far, first attempt's time)
        self._queue: list[tuple[float, int, int, Rule, dict[str, Any], int, float]] = []
        self._seq = itertools.count()
        self._generation = 0  # a new script drops what the old one planned
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def load(self, rules: list[Rule]) -> None:
        with self._cond:
            self._rules = list(rules)
            self._spent.clear()
            self._queue.clear()
            self._generation += 1
            self._cond.notify_all()

    def rules(self) -> list[dict[str, Any]]:
        with self._cond:
            return [asdict(r) for r in self._rules]

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def saw(self, message: dict[str, Any]) -> None:
        """A message arrived at the sandbox: plan what the script's buyer does about it."""
        with self._cond:
            if self._closed:
                return
            for index, rule in enumerate(self._rules):
                if index in self._spent or not rule.matches(message):
                    continue
                if rule.once:
                    self._spent.add(index)
                due = time.monotonic() + rule.after
                heapq.heappush(self._queue, (due, next(self._seq), self._generation, rule, message, 0, due))
            if self._queue and self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="sandbox-buyer")
                self._thread.start()
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is planned or running; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.pending()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._queue or self._queue[0][0] > time.monotonic()):
                    self._cond.wait(timeout=self._queue[0][0] - time.monotonic() if self._queue else None)
                if self._closed:
                    return
                _due, _seq, generation, rule, message, attempts, first = heapq.heappop(self._queue)
                if generation != self._generation:
                    continue
                self._busy = True
            try:
                self.act(rule, message)
            except EmitError as exc:  # recorded in the emission log when it got as far as a post
                if self._retries(rule, message) and time.monotonic() - first < self.retry_for:
                    delay = min(self.retry_base * 2 ** attempts, 300.0)
                    log.warning("sandbox buyer: %s to %s not taken (%s): posting again in %.0f s", rule.do,
                                message.get("to"), exc, delay)
                    with self._cond:
                        heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), generation, rule,
                                                     message, attempts + 1, first))
                else:
                    log.warning("sandbox buyer: %s on %s to %s failed: %s", rule.do, rule.on, message.get("to"),
                                exc)
            except Exception:  # the worker must outlive one bad message
                log.exception("sandbox buyer: %s on %s to %s failed", rule.do, rule.on, message.get("to"))
            finally:
                with self._cond:
                    self._busy = False

    @staticmethod
    def _retries(rule: Rule, message: dict[str, Any]) -> bool:
        """Whether the provider behind this action posts again after a failure: the Event Webhook does."""
        return message.get("kind") != "sms" and rule.do not in RSVP and rule.do not in ("reply", "auto_reply")

    def act(self, rule: Rule, message: dict[str, Any]) -> None:
        """Do what `rule` says about `message` now."""
        e, by = self.emitter, "script"
        if message.get("kind") == "sms":
            if rule.do in SMS_STATUSES:
                e.sms_status(message, rule.do, by=by)
            else:
                body = rule.text or SMS_KEYWORDS.get(rule.do) or DEFAULT_TEXT["sms"]
                e.sms(message["to"], body, to=message.get("from"), by=by)
        elif rule.do in RSVP:
            e.rsvp(message, RSVP[rule.do], comment=rule.comment, by=by)
        elif rule.do in ("reply", "auto_reply"):
            e.reply(message, rule.text or DEFAULT_TEXT[rule.do], auto_reply=rule.do == "auto_reply", by=by)
        else:
            emission = e.sendgrid_event(message, rule.do, by=by,
                                        fields={"url": rule.url} if rule.url and rule.do == "click" else None)
            if emission.status is None or not 200 <= emission.status < 300:
                raise EmitError(502, f"the engine answered {emission.status}")


def install(app: FastAPI, buyer: Buyer) -> None:
    """Add /sandbox/script (GET, POST a YAML or JSON script, DELETE) to the sandbox's app."""

    @app.get("/sandbox/script")
    async def show() -> dict[str, Any]:
        return {"rules": buyer.rules(), "pending": buyer.pending()}

    @app.post("/sandbox/script")
    async def load(request: Request) -> Response:
        try:
            rules = load_script((await request.body()).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        buyer.load(rules)
        return JSONResponse({"rules": len(rules)})

    @app.delete("/sandbox/script", status_code=204)
    async def drop() -> None:
        buyer.load([])
